"""The documents two runs answer differently, readable: context, choices, gold and both answers.

A paired test counts flips; a person wants to read them. :func:`flipped_documents` reads both runs'
logged samples (``--log_samples``) for one task and returns the documents where one run is right and
the other wrong on a 0/1 metric, with what each run answered: for a multiple-choice task the choice
of highest log-likelihood (what ``acc`` scores), for a generation task the filtered text.

A run digest keeps no text but each multiple-choice document's pick (see
:mod:`tailored_harness.suite.digest`); the text comes from the documents' book beside it
(:mod:`tailored_harness.suite.documents`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tailored_harness.suite.digest import task_documents
from tailored_harness.suite.documents import read_book, readable
from tailored_harness.suite.run_files import iter_samples, latest_results_file, picked_choice, read_digest, samples_files


def _from_folder(run: str | os.PathLike, task: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    path = samples_files(latest_results_file(run)).get(task)
    if path is None:
        return None
    out = {}
    for sample in iter_samples(path):
        responses = sample.get("filtered_resps") or []
        out[(int(sample["doc_id"]), sample.get("filter", "none"))] = {
            "values": sample, "pick": picked_choice(sample), "text": str(responses[0]) if responses else "",
            "readable": (lambda sample=sample: readable(sample))}
    return out


def _from_digest(path: Path, task: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    """A digest's documents with their values and picks, read as text from the book beside it;
    ``None`` without the book (a digest written before books were kept) or without the task."""
    data = read_digest(path).get("tasks", {}).get(task)
    docs = read_book(path.parent, task, data["fingerprint"]) if data else None
    if docs is None:
        return None
    return {key: {**record, "readable": (lambda doc_id=key[0]: tuple(docs[str(doc_id)]))}
            for key, record in task_documents(data).items()}


def _documents(run: str | os.PathLike, task: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    """``{(doc_id, filter): {"values": {metric key or name: value}, "pick", "text", "readable"}}`` of a
    run folder or digest; ``None`` where there is no text to show."""
    return _from_digest(Path(run), task) if Path(run).is_file() else _from_folder(run, task)


def _answer(record: dict[str, Any], choices: list[str], gold: str, right: bool) -> str:
    """What the run answered: the gold choice where the metric says right; else the most likely
    choice (multiple choice; the other one of two where the pick is not kept, as in digests written
    before picks were), or the generated text."""
    if len(choices) > 1:
        if right:
            return gold
        pick = record["pick"]
        if pick is not None and pick < len(choices) and choices[pick] != gold:
            return choices[pick]
        others = [choice for choice in choices if choice != gold]
        return others[0] if len(others) == 1 else "(another choice)"
    return record["text"]


def flipped_documents(run_a: str | os.PathLike, run_b: str | os.PathLike, task: str, metric_key: str,
                      limit: int = 10) -> dict[str, Any] | None:
    """The documents of ``task`` where ``metric_key`` (``"acc,none"``) is 1 in one run and 0 in the
    other: ``{"only_a": [...], "only_b": [...], "count_a", "count_b"}``, at most ``limit`` documents
    each way (in ``doc_id`` order), each ``{doc_id, context, choices, gold, answer_a, answer_b}``.
    ``None`` when either run lacks the task's samples, or is a digest without its documents' book
    (no text to show)."""
    docs_a, docs_b = _documents(run_a, task), _documents(run_b, task)
    if docs_a is None or docs_b is None:
        return None
    metric, _, filter_key = metric_key.partition(",")
    out: dict[str, Any] = {"only_a": [], "only_b": [], "count_a": 0, "count_b": 0}
    for key in sorted(docs_a.keys() & docs_b.keys()):
        if key[1] != filter_key:
            continue
        one, two = docs_a[key]["values"].get(metric), docs_b[key]["values"].get(metric)
        if one is None or two is None or one == two:
            continue
        side = "a" if float(one) > float(two) else "b"
        out[f"count_{side}"] += 1
        if len(out[f"only_{side}"]) < limit:
            context, choices, gold = docs_a[key]["readable"]()
            out[f"only_{side}"].append({"doc_id": key[0], "context": context, "choices": list(choices), "gold": gold,
                                        "answer_a": _answer(docs_a[key], choices, gold, side == "a"),
                                        "answer_b": _answer(docs_b[key], choices, gold, side == "b")})
    return out
