"""Structured pruning of LLaMA-family models: LLM-Pruner's method, aware of grouped-query attention.

Stages, each in its own module:

* :mod:`~tailored_harness.prune.spec`: :class:`PruneSpec`, validated;
* :mod:`~tailored_harness.prune.units`: the coupled weight groups (KV groups, MLP channels);
* :mod:`~tailored_harness.prune.calibration`: N x L calibration tokens from a file or the tasks;
* :mod:`~tailored_harness.prune.importance`: criteria and the memory-light scoring engine;
* :mod:`~tailored_harness.prune.plan`: ``plan = select(scores, spec)``; ``apply(model, plan)``;
* :mod:`~tailored_harness.prune.checkpoint`: fingerprints, cache and atomic checkpoint folders.

* :mod:`~tailored_harness.prune.pipeline`: all of it end to end (:func:`prune_model` on a loaded
  model, :func:`prune_loaded` for lm-eval, :func:`prune_pretrained` for ``tailored prune``).

Importing this package is cheap (no torch); the heavy modules load on first use.
"""

from __future__ import annotations

from tailored_harness.prune.spec import PruneSpec

__all__ = ["PruneSpec", "prune_model", "prune_loaded", "prune_pretrained", "CRITERIA"]


def __getattr__(name: str):
    if name in ("prune_model", "prune_loaded", "prune_pretrained"):
        from tailored_harness.prune import pipeline

        return getattr(pipeline, name)
    if name == "CRITERIA":
        from tailored_harness.prune.importance import CRITERIA

        return CRITERIA
    if name in ("checkpoint", "calibration", "plan", "units", "importance", "pipeline"):
        import importlib

        return importlib.import_module(f"tailored_harness.prune.{name}")
    raise AttributeError(name)
