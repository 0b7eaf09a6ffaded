"""Which documents a task's adapter trains on: ``shots`` of its training split, never the evaluated one.

Pure core: :func:`stratified` picks indices from gold labels and a seed. :func:`training_split`
decides where the shots come from (the training split, else the few-shot split when that is not the
split being evaluated, else a clear error), and :func:`examples` writes them as the task scores them
(:func:`tailored_harness.task_format.scored_pair`). Light module: no torch.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from tailored_harness.errors import TailoredError
from tailored_harness.task_format import gold_label, scored_pair


def evaluated_split(task) -> str | None:
    """The split lm-eval scores: the test split when the task has one, else the validation split."""
    config = task.config
    return config.test_split if task.has_test_docs() else config.validation_split


def _fewshot_split(task) -> str | None:
    cfg = getattr(task, "fewshot_cfg", None)
    return getattr(cfg, "split", None) or getattr(task.config, "fewshot_split", None)


def training_split(task, name: str) -> tuple[str, list[dict[str, Any]]]:
    """``(split name, documents)`` the shots of ``task`` come from.

    The training split when there is one; otherwise the few-shot split, if it is not the evaluated
    split. A task whose only labelled split is the one being evaluated cannot be adapted without
    training on its own test set, so that is an error naming the splits and the way out (``shots=0``).
    """
    scored = evaluated_split(task)
    if task.has_training_docs():
        split, docs = task.config.training_split, task.training_docs()
    elif (split := _fewshot_split(task)) is not None and split != scored:
        docs = task.fewshot_docs()
    else:
        fewshot = _fewshot_split(task)
        raise TailoredError(
            f"task {name!r} has no training split to draw shots from (training_split=None, fewshot_split={fewshot!r}, "
            f"evaluated split={scored!r}); training on the evaluated split would leak the answers. "
            f"Use a task with a training split, or shots=0 for no adaptation")
    if split == scored:
        raise TailoredError(f"task {name!r} trains and evaluates on the same split {split!r}; "
                            f"adaptation would see the answers it is scored on. Use shots=0 for this task")
    return split, list(docs)


def stratified(labels: Sequence[int | None], shots: int, seed: int) -> list[int]:
    """Indices of ``shots`` documents, drawn with ``seed``, balanced across gold labels.

    ``labels``: one gold label per document, or ``None`` everywhere (no strata). Labels take turns
    in a seeded order, each giving its next seeded-shuffled document, until ``shots`` are taken or
    every stratum is empty. Returns indices in draw order; all of them if ``shots`` >= len(labels).
    """
    rng = random.Random(seed)
    strata: dict[int | None, list[int]] = {}
    for index, label in enumerate(labels):
        strata.setdefault(label, []).append(index)
    for members in strata.values():
        rng.shuffle(members)
    order = sorted(strata, key=lambda label: (label is None, label))
    rng.shuffle(order)
    chosen: list[int] = []
    while len(chosen) < shots and any(strata[label] for label in order):
        for label in order:
            if strata[label] and len(chosen) < shots:
                chosen.append(strata[label].pop())
    return chosen


def examples(task, name: str, shots: int, seed: int) -> tuple[str, list[int], list[tuple[str, str]]]:
    """``(split, document indices in it, (context, continuation) pairs)`` of the shots ``task`` trains on."""
    split, docs = training_split(task, name)
    picked = stratified([gold_label(task, doc) for doc in docs], shots, seed)
    return split, picked, [scored_pair(task, docs[i]) for i in picked]
