"""The pruning pipeline end to end: score, select, apply, finalize, save (see the package docstring).

:func:`prune_model` works on a loaded model, :func:`prune_loaded` is the lm-eval path (cache by
fingerprint, prune the model lm-eval's backend loads only on a miss, save) and :func:`prune_pretrained` the CLI path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from tailored_harness.core.cache import building
from tailored_harness.models.modeling_tailored import register as register_tailored_models
from tailored_harness.prune import calibration, checkpoint
from tailored_harness.prune.importance import score_units
from tailored_harness.prune.plan import PrunePlan, apply, finalize, select
from tailored_harness.prune.spec import PruneSpec, selected_layers
from tailored_harness.prune.units import ATTENTION, parameter_counts

logger = logging.getLogger(__name__)

register_tailored_models()  # pruned checkpoints of per-layer widths load through the Auto classes


def prune_model(model, spec: PruneSpec, batch: calibration.Batch | None = None,
                progress: bool = True) -> tuple[Any, PrunePlan, dict]:
    """Score, select and cut ``model`` (of a supported family); returns ``(pruned, plan, counts)``.

    ``model`` is modified in place and must not be used afterwards: ``pruned`` is it, or a
    ``tailored_<family>`` model holding the same tensors. ``counts`` has the parameter counts before
    and after (total and per layer). ``batch`` (calibration tokens and labels) is needed by the
    gradient criteria only.
    """
    before = parameter_counts(model)
    layers = selected_layers(spec.layers, len(model.model.layers))
    _warn_single_kv_heads(spec, [before["layers"][i] for i in layers])
    ids, labels = (batch.input_ids, batch.labels) if batch is not None else (None, None)
    scores = score_units(model, spec.importance, layers, input_ids=ids, labels=labels, seed=spec.seed, progress=progress,
                         kinds=spec.kinds, reduction=spec.group_reduction)
    plan = select(scores, spec)
    apply(model, plan)
    pruned = finalize(model)
    return pruned, plan, {"before": before, "after": parameter_counts(pruned)}


def _warn_single_kv_heads(spec: PruneSpec, layers: list[dict]) -> None:
    """Say so when KV groups are the attention unit and no pruned layer has a second one to lose
    (Gemma 3 270M has one KV head per layer): attention then stays whole, only MLP channels go."""
    if ATTENTION in spec.kinds and spec.ratio > 0 and layers and all(layer[ATTENTION] == 1 for layer in layers):
        logger.warning("attention_unit=kv_group prunes no attention here: every pruned layer has a single KV head, "
                       "which cannot go, so only MLP channels are pruned; attention_unit=query_head prunes query heads")


def _report(spec: PruneSpec, plan: PrunePlan, counts: dict, key: str, base: dict, calib: str | None, model) -> dict:
    return {
        "fingerprint": key,
        "spec": spec.to_dict(),
        "base_model": base,
        "calibration_sha256": calib,
        "model_type": model.config.model_type,
        "parameters": counts,
        "plan": plan.to_dict(),
    }


def _prune_cached(load_model: Callable[[], Any], tokenizer, spec: PruneSpec, base: dict, tasks, out,
                  progress: bool) -> tuple[Path, bool, dict]:
    """Find the checkpoint of (base, spec, calibration tokens) or build it: the path both callers share.

    ``load_model`` is called only on a cache miss (the CLI loads weights only then).
    """
    batch = calibration.calibration_batch(spec, tokenizer, tasks)
    calib = calibration.digest(batch)
    key = checkpoint.fingerprint(base, spec.to_dict(), calib)
    folder = checkpoint.require_safe_out(out) if out else checkpoint.pruned_dir(key)
    with building(folder, lambda: checkpoint.is_complete(folder, key), "pruned checkpoint") as done:
        if done:
            return folder, True, checkpoint.read_report(folder)
        pruned, plan, counts = prune_model(load_model(), spec, batch, progress=progress)
        report = _report(spec, plan, counts, key, base, calib, pruned)
        checkpoint.save(pruned, tokenizer, folder, report)
    return folder, False, report


def prune_loaded(load_model: Callable[[], Any], tokenizer, spec: PruneSpec, base: dict, tasks: dict | None = None,
                 progress: bool = True) -> tuple[Path, bool, dict]:
    """Prune the model ``load_model()`` returns into the cache, or find it there without calling
    ``load_model`` (the fingerprint needs ``base``'s identity, the spec and the calibration tokens,
    not the weights); returns ``(folder, reused, report)``.

    On a cache miss the model is pruned in place (so no second copy of the weights is made) and must
    be dropped by the caller, who then loads the saved folder.
    """
    return _prune_cached(load_model, tokenizer, spec, base, tasks, None, progress)


def prune_pretrained(pretrained: str, spec: PruneSpec, *, out: str | None = None, tokenizer: str | None = None,
                     tasks: dict | None = None, revision: str = "main", dtype: str = "auto", device: str = "cpu",
                     trust_remote_code: bool = False, progress: bool = True) -> tuple[Path, bool, dict]:
    """Load ``pretrained``, prune it with ``spec`` and save the checkpoint (cached unless ``out``)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tailored_harness.taskio.task_format import load_tokenizer

    tok = load_tokenizer(tokenizer or pretrained, revision, trust_remote_code)

    def load_model():
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        return AutoModelForCausalLM.from_pretrained(pretrained, revision=revision, dtype=torch_dtype,
                                                    trust_remote_code=trust_remote_code).to(device)

    base = checkpoint.base_identity(pretrained, revision)
    return _prune_cached(load_model, tok, spec, base, tasks, out, progress)
