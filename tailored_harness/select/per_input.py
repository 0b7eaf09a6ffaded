"""Per-input prompt selection (PILLOW) for one task: pool, embeddings, selector, the picks per document.

:func:`select_for_task` runs once per task before scoring, on the model that scores the task with
its adapter active (frozen). It builds the task's pool (:mod:`.prompt_pool`), embeds the pool
entries and the documents about to be scored (:func:`embed`), trains the matcher when the selector
learns (REINFORCE on the adapter's training shots only; the reward is the LLM scoring each shot
behind its picks, :func:`tailored_harness.taskio.scoring.reward`), and picks ``m`` entries for
every scored document. The evaluated split is read only as the documents the run scores, never to
train. :func:`apply` then puts each request's picks before its context: every request of one
document gets the same picks, so its choices are compared under the same context.

A trained matcher is cached by fingerprint (model, adapter, pool, task configuration, shots, spec,
versions) as ``$TAILORED_HARNESS_CACHE/matchers/<key>/`` (``matcher.safetensors`` and
``matcher.json`` with the training curve), written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from tailored_harness.adapt import shots as shots_mod
from tailored_harness.adapt import store
from tailored_harness.adapt.spec import AdaptSpec
from tailored_harness.core import artifacts
from tailored_harness.core.cache import building
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import atomic_dir, cache_dir, is_finished, read_json
from tailored_harness.select import prompt_pool, selectors
from tailored_harness.select.spec import SelectSpec
from tailored_harness.taskio.scoring import document_results, reward
from tailored_harness.taskio.task_format import rewrite_plain_contexts, zero_shot_context

logger = logging.getLogger(__name__)

MATCH_VERSION = 1  # bump when the matcher or its training changes what a spec learns
RECORD = "matcher.json"
WEIGHTS = "matcher.safetensors"


@dataclasses.dataclass
class TaskSelection:
    """The picks of one task: ``picks[doc_id]`` are pool entry indices, in the order they precede the context."""

    task: str
    scored: Any  # the task object the requests are written in (a prompt=best variant, or the task)
    pool: prompt_pool.Pool
    picks: dict[int, tuple[int, ...]]
    record: dict[str, Any]

    def labels(self, doc_id: int) -> list[str]:
        names = self.pool.labels()
        return [names[i] for i in self.picks[doc_id]]

    def info(self) -> dict[str, Any]:
        """What ``config.tailored.prompt_select.<task>`` shows: the spec, the pool, how often each entry
        was picked, and the matcher with its training curve."""
        counts = Counter(label for doc_id in self.picks for label in self.labels(doc_id))
        return {**self.record, "picked": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}


def embed(model, tokenizer, texts: Sequence[str], max_len: int):
    """Frozen embeddings (N, D), float32: the mean of the model's last hidden states (after its final
    norm) over the last ``max_len`` tokens of each text, special tokens included. The end of a
    context is kept because that is where a document's question and answer cue are."""
    import torch

    rows = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text)["input_ids"][-max_len:]
            out = model(input_ids=torch.tensor([ids], device=device), output_hidden_states=True)
            rows.append(out.hidden_states[-1][0].float().mean(dim=0).cpu())
    return torch.stack(rows)


def matcher_dir(key: str) -> Path:
    return cache_dir() / "matchers" / key


def _fingerprint(bench: "Workbench", pool, shots: list, spec: SelectSpec, adapt: AdaptSpec) -> str:
    """The matcher's name: the scored model and adapter, the task, its pool and shots, the tokenizer, the specs."""
    recipe = {"model": bench.identity, "adapter": bench.adapter, "task": bench.name,
              "config": store.task_config_hash(bench.task), "pool": pool.digest(), "shots": store.examples_digest(shots),
              "select": spec.to_dict(), "adapt": adapt.to_dict(), "tokenizer": artifacts.tokenizer_digest(bench.tokenizer)}
    return artifacts.fingerprint("matchers", MATCH_VERSION, recipe, ("torch",))


def _pool_for(name: str, spec: SelectSpec, indices: list[int], pairs: list) -> prompt_pool.Pool:
    path = prompt_pool.find_pool_file(name, spec.pool)
    if path is None:
        logger.warning("task %s has no instruction pool in prompts/*%s; its pool holds %d demonstrations only",
                       name, prompt_pool.POOL_SUFFIX, min(spec.demos, len(pairs)))
    content = prompt_pool.read_pool_file(path) if path is not None else None
    return prompt_pool.build_pool(name, content, list(zip(indices, pairs))[:spec.demos])


def _allowed(pool: prompt_pool.Pool, sources: Sequence[int | None], m: int):
    """(N, P) bool: the entries each document may receive (never the demonstration made from itself)."""
    import torch

    allowed = torch.ones(len(sources), len(pool), dtype=torch.bool)
    for row, source in enumerate(sources):
        allowed[row, pool.excluded(source)] = False
    if int(allowed.sum(dim=1).min()) < m:
        raise TailoredError(f"task {pool.task!r}: prompt_m={m} needs at least {m} pool entries a document may "
                            f"receive; its pool has {len(pool)}")
    return allowed


@dataclasses.dataclass(frozen=True)
class Workbench:
    """What one task's selection runs on: ``lm`` (an lm-eval ``LM``) scores with the task's adapter
    active, ``model`` is the same transformers model (for embeddings); ``task`` is the task as its
    requests are written (a ``prompt=best`` variant, or the task), requested as ``name``.
    ``identity`` and ``adapter`` (the adapter's fingerprint) name the scored model in the cache."""

    lm: Any
    model: Any
    tokenizer: Any
    task: Any
    name: str
    identity: dict[str, Any]
    adapter: str | None

    def embed(self, texts: Sequence[str], max_len: int):
        return embed(self.model, self.tokenizer, texts, max_len)

    def rewards(self, docs: Sequence[dict[str, Any]], contexts: Sequence[str]) -> list[float]:
        """:func:`~tailored_harness.taskio.scoring.reward` of each document scored under its context."""
        results = document_results(self.lm, self.task, docs, contexts)
        return [reward(self.task, doc, result) for doc, result in zip(docs, results)]


@dataclasses.dataclass(frozen=True)
class Shots:
    """The task's adapter shots: ``docs[i]`` is training-split document ``indices[i]``, written ``pairs[i]``."""

    split: str
    indices: list[int]
    docs: list[dict[str, Any]]
    pairs: list[tuple[str, str]]

    @classmethod
    def of(cls, task, name: str, adapt: AdaptSpec) -> "Shots":
        """The shots the task's adapter trained on: the same split, draw and seed."""
        split, train_docs = shots_mod.training_split(task, name)
        indices, pairs = shots_mod.pick(task, train_docs, adapt.shots, adapt.seed, adapt.draw)
        return cls(split, indices, [train_docs[i] for i in indices], pairs)


def select_for_task(bench: Workbench, scored_docs: dict[int, dict[str, Any]], spec: SelectSpec, adapt: AdaptSpec,
                    progress: bool = True) -> TaskSelection:
    """Picks for every document in ``scored_docs`` (``{doc_id: doc}``, what the run scores) of ``bench``'s task."""
    shots = Shots.of(bench.task, bench.name, adapt)
    pool = _pool_for(bench.name, spec, shots.indices, shots.pairs)
    chosen = selectors.selector(spec)
    entries = bench.embed([entry.text for entry in pool.entries], spec.embed_len)
    record: dict[str, Any] = {"selector": spec.select, "m": spec.m, "spec": spec.to_dict(), "pool_file": pool.file,
                              "pool": pool.labels(), "demos_from": shots.split}
    if chosen.learns:
        record["matcher"] = _fit(chosen, bench, pool, entries, shots, spec, adapt, progress)
    ids = sorted(scored_docs)
    contexts = [zero_shot_context(bench.task, scored_docs[i]) for i in ids]
    inputs = bench.embed(contexts, spec.embed_len)
    keys = [hashlib.sha256(context.encode()).hexdigest() for context in contexts]
    picks = chosen.choose(inputs, entries, _allowed(pool, [None] * len(ids), spec.m), keys)
    logger.info("prompt_select=%s chose %d of %d pool entries for each of %d documents of %s", spec.select, spec.m,
                len(pool), len(ids), bench.name)
    return TaskSelection(bench.name, bench.task, pool, dict(zip(ids, picks)), record)


def _fit(chosen, bench: Workbench, pool: prompt_pool.Pool, entries, shots: Shots, spec: SelectSpec, adapt: AdaptSpec,
         progress: bool) -> dict[str, Any]:
    """Load the task's trained matcher from the cache, or train it on the shots and save it."""
    from safetensors.torch import load_file

    name = bench.name
    key = _fingerprint(bench, pool, shots.pairs, spec, adapt)
    folder = matcher_dir(key)
    with building(folder, lambda: is_finished(folder, RECORD, key, (WEIGHTS,), "matcher"), "matcher") as done:
        if done:
            chosen.build(entries.shape[1]).load_state_dict(load_file(str(folder / WEIGHTS)))
            logger.info("reusing cached matcher for %s: %s", name, folder)
            return {**read_json(folder / RECORD), "folder": str(folder), "reused": True}
        return _train_matcher(chosen, bench, pool, entries, shots, spec, key, folder, progress)


def _train_matcher(chosen, bench: Workbench, pool: prompt_pool.Pool, entries, shots: Shots, spec: SelectSpec, key: str,
                   folder: Path, progress: bool) -> dict[str, Any]:
    """Train the task's matcher on its shots and save it to ``folder`` (its build lock held)."""
    from safetensors.torch import save_file

    name = bench.name
    contexts = [context for context, _ in shots.pairs]
    inputs = bench.embed(contexts, spec.embed_len)  # the shots are embedded only to train
    allowed = _allowed(pool, shots.indices, spec.m)

    def reward_fn(episodes):
        return bench.rewards([shots.docs[doc] for doc, _ in episodes],
                             [pool.context(picks, contexts[doc]) for doc, picks in episodes])

    logger.info("training the prompt matcher of %s: %d steps of %d episodes on %d shots of its %s split", name,
                spec.steps, spec.batch, len(shots.docs), shots.split)
    started = time.monotonic()
    curve = chosen.fit(inputs, entries, allowed, reward_fn, progress=progress, desc=f"matcher {name}")
    record = {"fingerprint": key, "task": name, "split": shots.split, "documents": shots.indices, "curve": curve,
              "seconds": round(time.monotonic() - started, 2), "reward": _reward_name(bench.task)}
    with atomic_dir(folder, seal=True) as tmp:
        save_file({k: v.contiguous() for k, v in chosen.matcher.state_dict().items()}, str(tmp / WEIGHTS))
        (tmp / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
    logger.info("trained the prompt matcher of %s in %.1f s (mean reward %.4f -> %.4f): %s", name, record["seconds"],
                curve[0]["mean_reward"], curve[-1]["mean_reward"], folder)
    return {**record, "folder": str(folder), "reused": False}


def _reward_name(task) -> str:
    return "gold log-likelihood margin" if task.OUTPUT_TYPE == "multiple_choice" else "primary metric"


def apply(requests: Sequence[Any], selections: Mapping[str, TaskSelection]) -> None:
    """Put each request's picks before its context, in place. A request whose context is not its task's
    zero-shot context (chat template, system instruction, few-shot examples) is refused: the picks
    are chosen for the plain context, and the same document must be written the same way."""

    def picked(selection: TaskSelection, request, context: str) -> str:
        picks = selection.picks.get(request.doc_id)
        if picks is None:
            raise TailoredError(f"task {request.task_name!r} document {request.doc_id} was not among the documents "
                                f"prompts were selected for before scoring")
        return selection.pool.context(picks, context)

    rewrite_plain_contexts(requests, selections, mark="_tailored_selected", action="prompt_select cannot prefix",
                           instead="prompt_select=none", task_of=lambda selection: selection.scored,
                           new_context=picked)


def annotate(samples: dict[str, list[dict[str, Any]]], selections: Mapping[str, TaskSelection]) -> None:
    """Add ``tailored.prompt_selection`` (the picked entries' labels, in order) to each logged sample."""
    for task, rows in samples.items():
        selection = selections.get(task)
        if selection is None:
            continue
        for row in rows:
            if row.get("doc_id") in selection.picks:
                row.setdefault("tailored", {})["prompt_selection"] = selection.labels(row["doc_id"])


def scored_documents(task) -> dict[int, dict[str, Any]]:
    """``{doc_id: doc}`` of the requests lm-eval built for ``task`` in this run (empty before it built any)."""
    return {instance.doc_id: instance.doc for instance in getattr(task, "instances", []) or []}
