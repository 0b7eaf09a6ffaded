"""Adaptation end to end: for each task find or train its adapter, then load them all for scoring.

:func:`adapt_tasks` is the lm-eval path (and ``tailored adapt``'s): the model already in memory is
wrapped with a fresh LoRA adapter per task, trained, saved to the cache and unwrapped again, so one
copy of the weights serves every task. :func:`load_adapters` then puts every task's saved adapter
into one PEFT model; scoring switches between them by name. What is scored is what was saved.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path
from typing import Any

from tailored_harness.adapt import store
from tailored_harness.adapt.shots import require_shots
from tailored_harness.adapt.spec import AdaptSpec
from tailored_harness.core.artifacts import tokenizer_digest
from tailored_harness.core.cache import building
from tailored_harness.core.errors import TailoredError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Adapter:
    """One task's adapter: its folder, whether it came from the cache, and its ``adaptation.json``."""

    task: str
    folder: Path
    reused: bool
    report: dict[str, Any]


def model_identity(pretrained: str, revision: str = "main") -> dict[str, Any]:
    """What the adapters are trained on: a pruned checkpoint by its pruning fingerprint (the same
    whether lm-eval or ``tailored prune`` wrote it), any other model by content (or hub id)."""
    from tailored_harness.prune import checkpoint

    report = checkpoint.read_report(pretrained) if Path(pretrained).expanduser().is_dir() else None
    if report and report.get("fingerprint"):
        return {"pruned": report["fingerprint"]}
    return {"base": checkpoint.base_identity(pretrained, revision)}


@dataclasses.dataclass(frozen=True)
class Planned:
    """What names one task's adapter before anything trains: its examples and its cache key."""

    name: str
    training: Any  # tailored_harness.adapt.methods.Training
    key: str
    config_hash: str
    precision: str

    @property
    def folder(self) -> Path:
        return store.adapter_dir(self.key)


def plan_adapter(tokenizer, task, name: str, spec: AdaptSpec, model_identity: dict[str, Any], precision: str,
                 method) -> Planned:
    """The examples ``method`` trains ``name``'s adapter on and the adapter's fingerprint: (model
    identity, task, task config, examples, spec, ``precision``). Needs the tokenizer, not the weights."""
    spec = method.train_spec(spec)
    training = method.training(task, name, spec, tokenizer)
    require_shots(spec.shots, name, training.split, len(training.indices))
    # a shared adapter (general recovery) is the same for every task: its name leaves the task out
    named, config_hash = (method.name, "") if method.shared else (name, store.task_config_hash(task))
    key = store.fingerprint(model_identity, named, config_hash, store.examples_digest(training.pairs),
                            {**spec.to_dict(), "precision": precision, **training.key}, tokenizer_digest(tokenizer))
    return Planned(name, training, key, config_hash, precision)


def _reused(planned: Planned) -> Adapter:
    logger.info("reusing cached adapter for %s: %s", planned.name, planned.folder)
    return Adapter(planned.name, planned.folder, True, store.read_report(planned.folder))


def adapt_task(model, tokenizer, task, name: str, spec: AdaptSpec, model_identity: dict[str, Any],
               progress: bool = True, method=None, planned: Planned | None = None) -> tuple[Any, Adapter]:
    """Find or train ``name``'s adapter; returns ``(model, adapter)`` with ``model`` free of LoRA layers.

    ``method``: an adaptation method (:data:`tailored_harness.adapt.methods.METHODS`), SFT by default.
    ``planned``: this adapter's plan when :func:`find_adapters` made it already; used when its
    precision is the loaded model's (planned again otherwise).
    The adapter trains on the zero-shot format. With ``--num_fewshot k`` lm-eval scores k
    demonstrations before each document; writing the shots that way would draw demonstrations
    through the task's own few-shot sampler, whose seeded state also picks the evaluated
    documents' demonstrations, so training would change what lm-eval scores. A warning says so.
    """
    from tailored_harness.adapt import methods, train

    method = method or methods.SFT()
    spec = method.train_spec(spec)
    if getattr(task.config, "num_fewshot", None):
        logger.warning("task %s is scored with num_fewshot=%s; its adapter is trained on the zero-shot format "
                       "(see docs/adaptation.md)", name, task.config.num_fewshot)
    precision = train.precision(model)
    if planned is None or planned.precision != precision:
        planned = plan_adapter(tokenizer, task, name, spec, model_identity, precision, method)
    training, key, folder = planned.training, planned.key, planned.folder
    with building(folder, lambda: store.is_complete(folder, key), "adapter") as done:
        if done:
            return model, _reused(planned)
        if method.shared:
            logger.info("training the general adapter (%s, %d examples), shared by every task", method.name,
                        len(training.pairs))
        else:
            logger.info("training adapter for %s on %d shots of its %s split (%s, %d examples in all)", name,
                        len(training.indices), training.split, method.name, len(training.pairs))
        peft_model, report = _train(model, tokenizer, training, spec, method.name if method.shared else name,
                                    progress)
        report.update({"fingerprint": key, "precision": planned.precision, "model": model_identity,
                       "task_config_sha256": planned.config_hash, **_quantization(model)})
        store.save(peft_model, folder, report)
    logger.info("trained adapter for %s in %.1f s (loss %.4f -> %.4f): %s", name, report["seconds"],
                report["losses"][0], report["losses"][-1], folder)
    return peft_model.unload(), Adapter(name, folder, False, report)


def _quantization(model) -> dict[str, Any]:
    """``{"quantization": ...}`` of a 4-bit base (QLoRA: what the adapter trained on), else nothing."""
    from tailored_harness.adapt.quant import model_quantization

    quant = model_quantization(model)
    return {} if quant is None else {"quantization": quant.to_dict()}


def _train(model, tokenizer, training, spec: AdaptSpec, name: str, progress: bool) -> tuple[Any, dict[str, Any]]:
    """Train one adapter on ``training``; returns the PEFT model and its report, less what names it
    (fingerprint, precision, model, task config)."""
    from tailored_harness.adapt import train

    started = time.monotonic()
    peft_model, losses = train.train_adapter(model, tokenizer, training.pairs, spec, desc=f"adapting {name}",
                                             progress=progress)
    seconds = round(time.monotonic() - started, 2)
    general = training.record.get("general", {})
    cost = {"task_examples": len(training.task_pairs),
            "task_tokens": train.token_count(tokenizer, training.task_pairs, spec.max_len),
            "general_examples": general.get("examples", 0), "general_tokens": general.get("tokens", 0),
            "optimizer_steps": len(losses), "seconds": seconds}
    return peft_model, {"task": name, "split": training.split, "documents": training.indices, "spec": spec.to_dict(),
                        "losses": losses, "seconds": seconds, "cost": cost, **training.record}


#: why a task scored on whole documents gets no adapter (the log and ``config.tailored.unadapted`` say it)
NO_ANSWER = ("scores whole documents (loglikelihood_rolling, a perplexity task): no answer to train on, so it is "
             "scored with the model alone (pruned, if asked), no adapter")


def unadapted(tasks: dict[str, Any] | None, method=None) -> dict[str, str]:
    """``{task: why}`` for the run's tasks that get no adapter: those scoring whole documents, unless
    ``method``'s adapter is shared (the general adapter is trained without any task's answers)."""
    from tailored_harness.taskio.task_format import scores_whole_documents

    if getattr(method, "shared", False):
        return {}
    return {name: NO_ANSWER for name, task in sorted((tasks or {}).items()) if scores_whole_documents(task)}


def trainable(tasks: dict[str, Any], warn: bool = True, method=None) -> dict[str, Any]:
    """The tasks an adapter can train for, by name: not those scoring whole documents
    (``loglikelihood_rolling``), which have no answer to train on (a warning says so), unless
    ``method``'s adapter is shared among all tasks."""
    skipped = unadapted(tasks, method)
    if warn:
        for name, why in skipped.items():
            logger.warning("task %s %s", name, why)
    return {name: task for name, task in sorted(tasks.items()) if name not in skipped}


def _require_tasks(tasks: dict[str, Any] | None, spec: AdaptSpec) -> dict[str, Any]:
    if not tasks:
        raise TailoredError(f"shots={spec.shots} needs the run's tasks (run through lm_eval or "
                            f"simple_evaluate), or set shots=0 for no adaptation")
    return tasks


def adapt_tasks(model, tokenizer, tasks: dict[str, Any] | None, spec: AdaptSpec, model_identity: dict[str, Any],
                progress: bool = True, method=None,
                plans: dict[str, Planned] | None = None) -> tuple[Any, dict[str, Adapter]]:
    """Every trainable task's adapter (cached or trained now, by ``method``, SFT by default); returns
    ``(model, {task: Adapter})``. ``plans``: what :func:`find_adapters` planned, not planned again.

    Tasks whose requests have no answer to train on (``loglikelihood_rolling``) are scored without
    an adapter, with a warning. A task without a usable training split is an error.
    """
    adapters, plans = {}, plans or {}
    for name, task in trainable(_require_tasks(tasks, spec), method=method).items():
        model, adapters[name] = adapt_task(model, tokenizer, task, name, spec, model_identity, progress=progress,
                                            method=method, planned=plans.get(name))
    return model, adapters


def find_adapters(tokenizer, tasks: dict[str, Any] | None, spec: AdaptSpec, model_identity: dict[str, Any],
                  precision: str | None, method=None) -> tuple[dict[str, Adapter] | None, dict[str, Planned]]:
    """Every trainable task's adapter when the cache holds them all, found without the model's weights
    (``precision``: what :func:`tailored_harness.adapt.train.precision` will say of the model once it
    is loaded), and each task's plan. The adapters are ``None`` when one is missing or ``precision``
    is unknown, and the model must be loaded: :func:`adapt_tasks` on ``trainable(tasks, warn=False)``
    with these plans then finds what is cached and trains the rest."""
    from tailored_harness.adapt import methods

    found = trainable(_require_tasks(tasks, spec), method=method)  # the one warning about tasks without one
    if precision is None:
        return None, {}
    method = method or methods.SFT()
    plans = {name: plan_adapter(tokenizer, task, name, spec, model_identity, precision, method)
             for name, task in found.items()}
    missing = [planned for planned in plans.values() if not store.is_complete(planned.folder, planned.key)]
    if missing:
        return None, plans
    return {name: _reused(planned) for name, planned in plans.items()}, plans


def adapter_names(tasks: list[str]) -> dict[str, str]:
    """A PEFT adapter name per task: module keys cannot hold dots, and names must stay unique."""
    return {task: f"t{i}_{re.sub(r'[^0-9A-Za-z_]', '_', task)}" for i, task in enumerate(sorted(tasks))}


def load_adapters(model, adapters: dict[str, Adapter]):
    """One PEFT model over ``model`` holding every task's saved adapter; returns ``(peft_model, names)``."""
    from peft import PeftModel

    names = adapter_names(list(adapters))
    peft_model = None
    for task, adapter in sorted(adapters.items()):
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, str(adapter.folder), adapter_name=names[task])
        else:
            peft_model.load_adapter(str(adapter.folder), adapter_name=names[task])
    peft_model.eval()
    return peft_model, names
