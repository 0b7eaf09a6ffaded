"""Which documents a task's adapter trains on: ``shots`` of its training split, never the evaluated one.

Pure core: a shot draw (a strategy in :data:`DRAWS`, chosen with ``shot_draw``) picks indices from
the gold labels and a seed: :func:`stratified` (equal shots per gold choice) or :func:`proportional`
(shots per gold choice in the training split's own proportions). :func:`training_split` decides
where the shots come from (the training split, else the few-shot split when that is not the split
being evaluated, else a clear error), and :func:`examples` writes them as the task scores them
(:func:`tailored_harness.taskio.task_format.scored_pair`). Light module: no torch.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from tailored_harness.core.errors import TailoredError
from tailored_harness.taskio.task_format import gold_label, scored_pair, scores_whole_documents


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
    strata = _strata(labels, rng)
    order = sorted(strata, key=lambda label: (label is None, label))
    rng.shuffle(order)
    chosen: list[int] = []
    while len(chosen) < shots and any(strata[label] for label in order):
        for label in order:
            if strata[label] and len(chosen) < shots:
                chosen.append(strata[label].pop())
    return chosen


def _strata(labels: Sequence[int | None], rng: random.Random) -> dict[int | None, list[int]]:
    """Document indices per gold label, each list in a seeded order (drawn from the end)."""
    strata: dict[int | None, list[int]] = {}
    for index, label in enumerate(labels):
        strata.setdefault(label, []).append(index)
    for members in strata.values():
        rng.shuffle(members)
    return strata


def proportional(labels: Sequence[int | None], shots: int, seed: int) -> list[int]:
    """Indices of ``shots`` documents, drawn with ``seed``, with each gold label in the proportion it
    has among ``labels`` (largest remainders round the counts, ties to the larger stratum).

    Unlike a plain random draw, the label counts do not vary with the seed: with BoolQ's 59.6% "yes"
    in its training split, 50 shots are always 30 "yes" and 20 "no". Returns indices in draw order.
    """
    rng = random.Random(seed)
    strata = _strata(labels, rng)
    total = len(labels)
    shots = min(shots, total)
    exact = {label: shots * len(members) / total for label, members in strata.items()}
    counts = {label: int(value) for label, value in exact.items()}
    by_remainder = sorted(strata, key=lambda label: (-(exact[label] - counts[label]), -len(strata[label]),
                                                     label is None, label))
    for label in by_remainder[:shots - sum(counts.values())]:
        counts[label] += 1
    order = sorted(strata, key=lambda label: (label is None, label))
    rng.shuffle(order)
    chosen = [strata[label].pop() for label in order for _ in range(counts[label])]
    rng.shuffle(chosen)
    return chosen


#: name -> ``draw(labels, shots, seed) -> indices``: how a task's shots are chosen (``shot_draw``).
DRAWS: dict[str, Callable[[Sequence[int | None], int, int], list[int]]] = {
    "stratified": stratified,
    "proportional": proportional,
}


def pick(task, docs: Sequence[dict[str, Any]], shots: int, seed: int,
         draw: str) -> tuple[list[int], list[tuple[str, str]]]:
    """``(indices into docs, (context, continuation) pairs)`` of ``shots`` documents drawn from ``docs``
    with the strategy ``draw`` (a name in :data:`DRAWS`), written as ``task`` scores them."""
    picked = DRAWS[draw]([gold_label(task, doc) for doc in docs], shots, seed)
    return picked, [scored_pair(task, docs[i]) for i in picked]


def examples(task, name: str, shots: int, seed: int, draw: str) -> tuple[str, list[int], list[tuple[str, str]]]:
    """``(split, document indices in it, (context, continuation) pairs)`` of the shots ``task`` trains on:
    :func:`pick` over its :func:`training_split`."""
    split, docs = training_split(task, name)
    return (split, *pick(task, docs, shots, seed, draw))


def check_tasks(tasks: dict[str, Any] | None, shots: int) -> None:
    """Refuse, before anything is pruned or trained, a run whose tasks cannot give ``shots`` shots each:
    a task without a usable training split, or whose split holds fewer documents than ``shots``.
    Tasks scored on whole documents (``loglikelihood_rolling``) train no adapter and are skipped."""
    for name, task in sorted((tasks or {}).items()):
        if scores_whole_documents(task):
            continue
        split, docs = training_split(task, name)
        require_shots(shots, name, split, len(docs))


def require_shots(shots: int, name: str, split: str, available: int) -> None:
    """Refuse ``shots`` beyond the ``available`` documents of task ``name``'s ``split``, in one line."""
    if shots > available:
        raise TailoredError(f"shots={shots} is more than task {name!r}'s {split} split holds ({available} "
                            f"documents); valid: shots=1..{available}, or shots=0 for no adaptation")
