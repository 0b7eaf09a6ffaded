"""Float comparisons that hold on every CPU.

Two float32 computations of the same quantity in a different order (another SIMD width, another
thread count, a fused kernel) differ by rounding: a few units of float32's epsilon (1.2e-7) times
the size of the terms summed, not times the result. A sum with cancellation (a signed Taylor score,
a logit near zero) can be tiny while its terms are not, so an element-wise relative tolerance fails
on it for no reason, on one CPU and not another. These helpers compare against the scale of the
whole tensor instead: ``|got - expected| <= rel * max|expected|`` everywhere. A wrong formula still
fails: it moves the values by a fraction of that scale, orders of magnitude above ``rel``.
"""

from __future__ import annotations

import torch

#: float32 work against a float64 reference: epsilon (1.2e-7) grown by sums of a few thousand terms
#: and a backward pass through a few layers stays within 1e-5 of the scale; 1e-4 leaves a margin of ten.
FLOAT32_REL = 1e-4


def assert_close_to_scale(got: torch.Tensor, expected: torch.Tensor, rel: float = FLOAT32_REL, what: str = "") -> None:
    """``got`` equals ``expected`` up to ``rel`` times the largest magnitude in ``expected``."""
    got, expected = got.double(), expected.double()
    assert got.shape == expected.shape, f"{what}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    assert scale > 0, f"{what}: the reference is all zeros, so the comparison proves nothing"
    assert error <= rel * scale, f"{what}: max error {error:.3g} > {rel:g} x scale {scale:.3g}"
