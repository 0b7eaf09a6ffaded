"""The per-input prompt selectors, by name (``prompt_select=``): each picks ``m`` pool entries per document.

Every selector answers :meth:`Selector.choose` for documents given by their frozen embeddings
``inputs`` (N, D), the entries' embeddings ``entries`` (P, D), a mask ``allowed`` (N, P) of the
entries each document may receive, and a stable key per document (what ``random`` seeds on, so that
every request of one document, and every run, gets the same draw). Only ``match`` learns
(:meth:`Selector.fit`); its network and training are :mod:`tailored_harness.select.matcher`.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import torch

from tailored_harness.select import matcher as matcher_mod
from tailored_harness.select.spec import SelectSpec


class Selector:
    """Base class: no training; subclasses implement :meth:`choose`."""

    name = "base"
    learns = False

    def __init__(self, spec: SelectSpec) -> None:
        self.spec = spec

    def choose(self, inputs: torch.Tensor, entries: torch.Tensor, allowed: torch.Tensor,
               keys: Sequence[str]) -> list[tuple[int, ...]]:
        raise NotImplementedError


class NoSelection(Selector):
    """``none``: no entry; the task is scored exactly as without this stage."""

    name = "none"

    def choose(self, inputs, entries, allowed, keys):
        return [() for _ in keys]


class RandomSelection(Selector):
    """``random``: ``m`` distinct allowed entries drawn uniformly, seeded by (``prompt_seed``, document key)."""

    name = "random"

    def choose(self, inputs, entries, allowed, keys):
        out = []
        for row, key in zip(allowed, keys):
            rng = random.Random(f"{self.spec.seed}|{key}")
            out.append(tuple(rng.sample([int(i) for i in torch.nonzero(row).flatten()], self.spec.m)))
        return out


class NearestSelection(Selector):
    """``knn``: the ``m`` allowed entries of highest cosine similarity to the document, nearest first."""

    name = "knn"

    def choose(self, inputs, entries, allowed, keys):
        similarity = _unit(inputs) @ _unit(entries).T
        similarity = similarity.masked_fill(~allowed, float("-inf"))
        top = similarity.topk(self.spec.m, dim=-1).indices
        return [tuple(int(i) for i in row) for row in top]


class LearnedSelection(Selector):
    """``match``: PILLOW's matcher, trained by REINFORCE on training documents, then greedy."""

    name = "match"
    learns = True

    def __init__(self, spec: SelectSpec) -> None:
        super().__init__(spec)
        self.matcher: matcher_mod.Matcher | None = None

    def build(self, dim: int) -> matcher_mod.Matcher:
        self.matcher = matcher_mod.Matcher(dim, self.spec.hidden, self.spec.seed)
        return self.matcher

    def fit(self, inputs, entries, allowed, reward_fn, progress: bool = True, desc: str = "matcher") -> list[dict[str, Any]]:
        """Train a fresh matcher on training documents ``inputs`` (N, D); returns the training curve."""
        spec = self.spec
        matcher = self.build(inputs.shape[1])
        return matcher_mod.train(matcher, inputs, entries, allowed, spec.m, reward_fn, spec.steps, spec.batch,
                                 spec.learning_rate, spec.seed, progress=progress, desc=desc)

    def choose(self, inputs, entries, allowed, keys):
        if self.matcher is None:
            raise RuntimeError("the matcher is used before it was trained or loaded")
        return matcher_mod.choose(self.matcher, inputs, entries, allowed, self.spec.m)


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)


#: ``prompt_select`` name -> selector class.
SELECTORS: dict[str, type[Selector]] = {cls.name: cls for cls in
                                        (NoSelection, RandomSelection, NearestSelection, LearnedSelection)}


def selector(spec: SelectSpec) -> Selector:
    return SELECTORS[spec.select](spec)
