"""Importance criteria: the memory-light engine equals a plain autograd computation of the same formula."""

from __future__ import annotations

import pytest
import torch

from prune_helpers import calibration, tiny_llama
from tailored_harness.prune.importance import CRITERIA, score_units
from tailored_harness.prune.units import ATTENTION, MEMBERS, MLP, ROWS, Geometry, reduce_to_units, submodule


def _weight_grads(model, ids):
    """Weight gradients of the mean loss over ``ids`` the ordinary way (``.grad`` on every weight)."""
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad()
    return grads


def brute_force_scores(model, name, ids):
    """LLM-Pruner's recipe, literally: full gradients, per-sample squared gradients, then the formulas."""
    criterion = CRITERIA[name]
    batch = _weight_grads(model, ids)
    squares = {}
    if criterion.needs_second_order:
        for sample in ids:
            for n, g in _weight_grads(model, sample[None]).items():
                squares[n] = squares.get(n, 0) + g * g / len(ids)
    geometry = Geometry.of(model.config)
    scores = {}
    for i, layer in enumerate(model.model.layers):
        scores[i] = {}
        for kind, members in MEMBERS.items():
            total = 0
            for member in members:
                param = f"model.layers.{i}.{member.module}.weight"
                w = submodule(layer, member.module).weight.detach()
                sal = criterion.salience(w, batch[param], squares.get(param))
                per_index = sal.sum(1) if member.axis == ROWS else sal.sum(0)
                total = total + reduce_to_units(per_index.double(), geometry.width(member.width))
            scores[i][kind] = total.abs() if criterion.signed else total
    return scores


@pytest.mark.parametrize("shape", ["gqa", "mha"])
@pytest.mark.parametrize("name", ["vectorize", "param_first", "param_second", "param_mix", "l1", "l2"])
def test_engine_matches_brute_force(shape, name):
    model = tiny_llama(shape)
    ids = calibration()
    expected = brute_force_scores(model, name, ids)
    got = score_units(model, name, [0, 1, 2], input_ids=ids, progress=False)
    for i in range(3):
        for kind in (ATTENTION, MLP):
            torch.testing.assert_close(got[i][kind], expected[i][kind], rtol=2e-4, atol=1e-9)
    assert all(p.grad is None for p in model.parameters())  # no weight gradient was ever formed


def test_scores_have_one_value_per_unit_and_differ_between_criteria():
    model = tiny_llama("gqa")
    first = score_units(model, "param_first", [0], input_ids=calibration(), progress=False)[0]
    l2 = score_units(model, "l2", [0], progress=False)[0]
    assert first[ATTENTION].shape == (2,) and first[MLP].shape == (96,)
    assert not torch.equal(torch.argsort(first[MLP]), torch.argsort(l2[MLP]))


def test_random_scores_follow_the_seed():
    model = tiny_llama("gqa")
    a = score_units(model, "random", [0, 1], seed=1, progress=False)
    b = score_units(model, "random", [0, 1], seed=1, progress=False)
    c = score_units(model, "random", [0, 1], seed=2, progress=False)
    assert torch.equal(a[1][MLP], b[1][MLP]) and not torch.equal(a[1][MLP], c[1][MLP])


def test_gradient_criteria_need_calibration():
    with pytest.raises(ValueError, match="param_first"):
        score_units(tiny_llama("gqa"), "param_first", [0], progress=False)
