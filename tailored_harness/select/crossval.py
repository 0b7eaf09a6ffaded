"""Pure core of ``prompt=best``: cut the shots into folds, then pick the template with the best mean.

:func:`folds` assigns shots to k folds so that each gold label is spread evenly (a fold of BoolQ
shots has the yes/no proportion of all the shots); :func:`choose` reads the fold scores. No torch.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence


def folds(labels: Sequence[int | None], k: int, seed: int) -> list[list[int]]:
    """Positions ``0..len(labels)-1`` cut into ``k`` folds, each gold label dealt round-robin.

    ``labels``: one gold label per shot (``None`` everywhere for generation tasks: one stratum).
    Within a label the shots are shuffled with ``seed``; dealing continues from fold to fold across
    labels, so fold sizes differ by at most one. Every position is in exactly one fold. Needs
    ``k <= len(labels)`` so that no fold is empty.
    """
    if not 2 <= k <= len(labels):
        raise ValueError(f"{k} folds need at least {k} shots (have {len(labels)}) and k >= 2")
    rng = random.Random(seed)
    strata: dict[int | None, list[int]] = {}
    for position, label in enumerate(labels):
        strata.setdefault(label, []).append(position)
    out: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for label in sorted(strata, key=lambda value: (value is None, value)):
        members = strata[label]
        rng.shuffle(members)
        for position in members:
            out[dealt % k].append(position)
            dealt += 1
    return [sorted(fold) for fold in out]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def choose(scores: Mapping[str, Sequence[float]], order: Sequence[str]) -> str:
    """The template with the highest mean fold score; a tie goes to the one earlier in ``order``
    (the pool's order, default template first), so the default wins when nothing beats it."""
    return max(order, key=lambda name: (mean(scores[name]), -order.index(name)))
