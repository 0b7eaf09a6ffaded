"""The documents two runs answer differently, readable: context, choices, gold and both answers.

A paired test counts flips; a person wants to read them. :func:`flipped_documents` reads both runs'
logged samples (``--log_samples``) for one task and returns the documents where one run is right and
the other wrong on a 0/1 metric, with what each run answered: for a multiple-choice task the choice
of highest log-likelihood (what ``acc`` scores), for a generation task the filtered text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tailored_harness.suite.run_files import gold_choice, iter_samples, latest_results_file, picked_choice, requests_of, samples_files


def _samples(run: str | os.PathLike, task: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    """``{(doc_id, filter): sample}`` of ``task`` in the run folder; ``None`` for a digest (no text)."""
    if Path(run).is_file():
        return None
    path = samples_files(latest_results_file(run)).get(task)
    if path is None:
        return None
    return {(int(sample["doc_id"]), sample.get("filter", "none")): sample for sample in iter_samples(path)}


def _answer(sample: dict[str, Any], choices: list[str]) -> str:
    """What the run answered: the most likely choice (multiple choice) or the generated text."""
    if len(choices) > 1:
        pick = picked_choice(sample)
        return "" if pick is None else choices[pick]
    responses = sample.get("filtered_resps") or []
    return str(responses[0]) if responses else ""


def _readable(sample: dict[str, Any]) -> tuple[str, list[str], str]:
    """``(context, choices, gold)`` of a logged sample: one request per choice, ``[context,
    continuation]``. Where every choice shares its continuation and differs in its context
    (WinoGrande), the contexts are the choices."""
    requests = requests_of(sample)
    context = str(requests[0][0]) if requests and requests[0] else ""
    choices = [str(r[1]) for r in requests if len(r) > 1 and isinstance(r[1], str)] if len(requests) > 1 else []
    if len(choices) > 1 and len(set(choices)) == 1:
        context, choices = f"... {choices[0]}", [str(r[0]) for r in requests]
    gold = gold_choice(sample)
    return context, choices, choices[gold] if gold is not None and gold < len(choices) else str(sample.get("target"))


def flipped_documents(run_a: str | os.PathLike, run_b: str | os.PathLike, task: str, metric_key: str,
                      limit: int = 10) -> dict[str, Any] | None:
    """The documents of ``task`` where ``metric_key`` (``"acc,none"``) is 1 in one run and 0 in the
    other: ``{"only_a": [...], "only_b": [...], "count_a", "count_b"}``, at most ``limit`` documents
    each way (in ``doc_id`` order), each ``{doc_id, context, choices, gold, answer_a, answer_b}``.
    ``None`` when either run is a digest or lacks the task's samples (no text to show)."""
    samples_a, samples_b = _samples(run_a, task), _samples(run_b, task)
    if samples_a is None or samples_b is None:
        return None
    metric, _, filter_key = metric_key.partition(",")
    out: dict[str, Any] = {"only_a": [], "only_b": [], "count_a": 0, "count_b": 0}
    for key in sorted(samples_a.keys() & samples_b.keys()):
        if key[1] != filter_key:
            continue
        one, two = samples_a[key], samples_b[key]
        if metric not in one or metric not in two or one[metric] == two[metric]:
            continue
        side = "a" if float(one[metric]) > float(two[metric]) else "b"
        out[f"count_{side}"] += 1
        if len(out[f"only_{side}"]) < limit:
            context, choices, gold = _readable(one)
            out[f"only_{side}"].append({"doc_id": key[0], "context": context, "choices": choices, "gold": gold,
                                        "answer_a": _answer(one, choices), "answer_b": _answer(two, choices)})
    return out
