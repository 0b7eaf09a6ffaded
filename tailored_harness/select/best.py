"""``prompt=best``: choose each task's template by k-fold cross-validation on its training shots.

For a requested task with a pool (:mod:`.pools`), the task's ``shots`` are drawn from its training
split exactly as its adapter's are (same draw, same seed), then cut into ``prompt_folds`` folds
(:func:`tailored_harness.select.crossval.folds`). Every template of the pool trains one adapter per
fold on the other folds, written in that template, and scores the fold it left out with the task's
own metric (:mod:`tailored_harness.taskio.scoring`). The template with the best mean wins (ties to
the default); the task's adapter is then trained on all its shots in that template, and its
evaluated requests are rewritten into it before scoring (:func:`rewrite`). The evaluated split is
never read: only the training split's shots are trained on or scored.

The choice is cached by fingerprint under ``$TAILORED_HARNESS_CACHE/prompt-choices/<key>.json``
(model, task and template configurations, the shots' text in every template, the adaptation and
prompt specs, library versions), written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tailored_harness.adapt import shots as shots_mod
from tailored_harness.adapt import store
from tailored_harness.adapt.spec import AdaptSpec
from tailored_harness.core import artifacts
from tailored_harness.core.cache import building
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import cache_dir, read_json, write_text_atomic
from tailored_harness.select import crossval, pools
from tailored_harness.select.spec import PromptSpec
from tailored_harness.taskio.scoring import primary_metric
from tailored_harness.taskio.task_format import gold_label, rewrite_plain_contexts, scored_pair, zero_shot_context

logger = logging.getLogger(__name__)

SELECT_VERSION = 1  # bump when the choosing code changes what a spec chooses

#: ``scorer(peft_model, task, docs) -> one metric value per document``: how a fold's adapter is scored.
Scorer = Callable[[Any, Any, Sequence[dict[str, Any]]], list[float]]


@dataclasses.dataclass(frozen=True)
class Choice:
    """A task's chosen template: the task as that template (``variant``), and the cached record."""

    task: str
    variant: Any
    record: dict[str, Any]
    path: Path
    reused: bool

    @property
    def chosen(self) -> str:
        return self.record["chosen"]

    def info(self) -> dict[str, Any]:
        """What ``config.tailored.prompt`` shows for this task."""
        keys = ("chosen", "templates", "metric", "folds", "scores", "means", "split", "seconds")
        return {**{key: self.record[key] for key in keys}, "record": str(self.path), "reused": self.reused}


def choice_path(key: str) -> Path:
    return cache_dir() / "prompt-choices" / f"{key}.json"


def _fingerprint(identity: dict[str, Any], name: str, variants: list, pairs: dict[str, list], adapt: AdaptSpec,
                 prompt: PromptSpec, precision: str, tokenizer) -> str:
    """The choice's name: the model, the task's template variants and their shots, the tokenizer, the specs."""
    recipe = {"model": identity, "task": name, "configs": [store.task_config_hash(v) for v in variants],
              "examples": store.examples_digest([pair for member in pairs for pair in pairs[member]]),
              "adapt": adapt.to_dict(), "precision": precision, "prompt": prompt.to_dict(),
              "tokenizer": artifacts.tokenizer_digest(tokenizer)}
    return artifacts.fingerprint("prompt-choices", SELECT_VERSION, recipe, ("peft", "torch", "transformers"))


def _check_same_answers(name: str, pairs: dict[str, list[tuple[str, str]]]) -> None:
    """Templates of one pool may change the context only: the scored answers must be the same."""
    answers = {member: [continuation for _, continuation in rows] for member, rows in pairs.items()}
    first, *rest = answers
    for member in rest:
        if answers[member] != answers[first]:
            raise TailoredError(f"task {name!r}: template {member!r} scores other answers than {first!r}; "
                                f"templates of a pool may change doc_to_text only")


def choose_template(model, tokenizer, task, name: str, adapt: AdaptSpec, prompt: PromptSpec,
                    identity: dict[str, Any], scorer: Scorer, progress: bool = True) -> tuple[Any, Choice | None]:
    """``(model, Choice)`` for ``task`` (requested as ``name``), from the cache or cross-validated now;
    ``(model, None)`` when the task has no pool. ``model`` comes back free of LoRA layers."""
    from tailored_harness.adapt import train

    pool = pools.pools().get(name)
    if pool is None:
        return model, None
    if getattr(task.config, "num_fewshot", None):
        raise TailoredError(f"prompt=best scores task {name!r} zero-shot in the chosen template; it was asked "
                            f"for num_fewshot={task.config.num_fewshot}. Drop --num_fewshot or use prompt=default")
    split, docs = shots_mod.training_split(task, name)
    labels = [gold_label(task, doc) for doc in docs]
    picked = shots_mod.DRAWS[adapt.draw](labels, adapt.shots, adapt.seed)  # the draw the adapter's shots use
    if len(picked) < prompt.folds:
        raise TailoredError(f"prompt_folds={prompt.folds} needs at least {prompt.folds} shots; task {name!r} "
                            f"has {len(picked)} (shots={adapt.shots})")
    variants = {member: pools.in_template(task, member) for member in pool}
    pairs = {member: [scored_pair(variant, docs[i]) for i in picked] for member, variant in variants.items()}
    _check_same_answers(name, pairs)
    key = _fingerprint(identity, name, list(variants.values()), pairs, adapt, prompt, train.precision(model), tokenizer)
    path = choice_path(key)

    found: dict[str, Any] = {}

    def finished() -> bool:  # keeps what it read, so a reused choice is read once
        found["record"] = read_json(path)
        return isinstance(found["record"], dict) and found["record"].get("fingerprint") == key

    with building(path, finished, "template choice") as done:  # one process cross-validates, the others wait
        if done:
            record = found["record"]
            logger.info("reusing cached template choice for %s: %s (%s)", name, record["chosen"], path)
            return model, Choice(name, variants[record["chosen"]], record, path, True)
        started = time.monotonic()
        folds = crossval.folds([labels[i] for i in picked], prompt.folds, adapt.seed)
        model, scores = _cross_validate(model, tokenizer, name, variants, pairs, [docs[i] for i in picked], folds,
                                        adapt, scorer, progress)
        chosen = crossval.choose(scores, list(pool))
        record = {"fingerprint": key, "task": name, "split": split, "documents": picked,
                  "folds": [[picked[j] for j in fold] for fold in folds], "metric": primary_metric(task),
                  "templates": list(pool), "scores": scores,
                  "means": {member: crossval.mean(values) for member, values in scores.items()}, "chosen": chosen,
                  "spec": {"adapt": adapt.to_dict(), "prompt": prompt.to_dict()}, "model": identity,
                  "seconds": round(time.monotonic() - started, 2)}
        write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True))
    logger.info("chose template %s for %s (mean %s %.4f): %s", chosen, name, record["metric"],
                record["means"][chosen], path)
    return model, Choice(name, variants[chosen], record, path, False)


def _cross_validate(model, tokenizer, name: str, variants: dict[str, Any], pairs: dict[str, list], shot_docs: list,
                    folds: list[list[int]], adapt: AdaptSpec, scorer: Scorer, progress: bool):
    """``(model, scores)``: each template's k fold scores (an adapter trained on the other folds' shots,
    scored on the fold left out); ``model`` comes back free of LoRA layers."""
    from tailored_harness.adapt import train

    logger.info("choosing the template of %s among %d by %d-fold cross-validation on %d shots (%d adapter trainings)",
                name, len(variants), len(folds), len(shot_docs), len(variants) * len(folds))
    scores: dict[str, list[float]] = {}
    for member, variant in variants.items():
        scores[member] = []
        for index, held_out in enumerate(folds):
            held = set(held_out)
            rest = [pairs[member][j] for j in range(len(shot_docs)) if j not in held]
            peft_model, _ = train.train_adapter(model, tokenizer, rest, adapt, progress=progress,
                                                desc=f"{name}: {member} fold {index + 1}/{len(folds)}")
            values = scorer(peft_model, variant, [shot_docs[j] for j in held_out])
            model = peft_model.unload()
            scores[member].append(crossval.mean(values))
        logger.info("%s in template %s: fold scores %s", name, member, [round(s, 4) for s in scores[member]])
    return model, scores


def choose_templates(model, tokenizer, tasks: dict[str, Any], adapt: AdaptSpec, prompt: PromptSpec,
                     identity: dict[str, Any], scorer: Scorer, progress: bool = True) -> tuple[Any, dict[str, Choice]]:
    """A :class:`Choice` for every requested task with a pool; tasks without one keep their own
    template, with a warning naming the tasks that have pools."""
    choices = {}
    for name, task in sorted(tasks.items()):
        model, choice = choose_template(model, tokenizer, task, name, adapt, prompt, identity, scorer, progress)
        if choice is None:
            logger.warning("prompt=best: task %s has no template pool, so it is scored in its own template "
                           "(tasks with pools: %s)", name, ", ".join(sorted(pools.pools())))
        else:
            choices[name] = choice
    return model, choices


def rewrite(requests: Sequence[Any], variants: dict[str, Any]) -> None:
    """Put each request of a task in ``variants`` into that task's chosen template, in place.

    Only a request whose context is the task's own zero-shot context is rewritten; anything else
    (``--apply_chat_template``, a system instruction, few-shot demonstrations) is an error, since the
    chosen template would silently drop it.
    """
    rewrite_plain_contexts(requests, variants, mark="_tailored_rewritten", action="prompt=best cannot rewrite",
                           instead="prompt=default",
                           task_of=lambda variant: getattr(variant, "_tailored_origin", variant),
                           new_context=lambda variant, request, context: zero_shot_context(variant, request.doc))
