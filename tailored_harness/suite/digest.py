"""A run's digest: what the suite needs of an lm-eval run, small enough to commit.

An lm-eval ``--log_samples`` folder holds every document's text, prompts and responses (tens of MB
for a full split); the paired tests need only each document's metric values and identity. A digest
keeps lm-eval's results file as it is, the label baselines of its samples, and per task the
documents (``doc_id`` ranges and the fingerprint of their ``doc_hash``es) and each metric's value per
document (a string of ``0``/``1`` for 0/1 metrics), and each multiple-choice document's pick (the
choice of highest log-likelihood, a digit per document where there are at most ten). Beside the
digest, the text of each task's documents is kept once (:func:`tailored_harness.suite.documents.write_book`),
so a page built from digests shows what flipped. ``tailored compare``, ``tailored report --run``
and ``run_suite.sh --resume`` read a digest where they read a run folder, so a long measurement
committed configuration by configuration resumes on another machine and is compared there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import write_text_atomic
from tailored_harness.suite.documents import write_book
from tailored_harness.suite.run_files import (DIGEST_FORMAT, iter_samples, latest_results_file, picked_choice, read_digest,
                                              samples_files, task_label_baselines)
from tailored_harness.suite.run_samples import RunSamples, TaskSamples, load_run

NO_PICK = "-"


def _ranges(ids: list[int]) -> list[list[int]]:
    """Sorted ids as ``[first, last]`` runs of consecutive ids: ``[0..999]`` is ``[[0, 999]]``."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _expand(ranges: list[list[int]]) -> list[int]:
    return [i for first, last in ranges for i in range(first, last + 1)]


def _picks_json(path: Path) -> list[list[Any]]:
    """``[[filter, picks], ...]``: each document's picked choice in ``doc_id`` order, as a string of
    digits (``-``: none) when every pick is below 10, else a list (``None``: none); empty for a task
    that picks nothing (generation, perplexity)."""
    picks: dict[str, dict[int, int | None]] = {}
    for sample in iter_samples(path):
        picks.setdefault(sample.get("filter", "none"), {})[int(sample["doc_id"])] = picked_choice(sample)
    out = []
    for filter_key, by_doc in sorted(picks.items()):
        column = [by_doc[i] for i in sorted(by_doc)]
        if all(p is None for p in column):
            continue
        digits = all(p is None or p < 10 for p in column)
        out.append([filter_key, "".join(NO_PICK if p is None else str(p) for p in column) if digits else column])
    return out


def task_documents(data: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """A digest task's documents as :mod:`tailored_harness.suite.flips` reads them:
    ``{(doc_id, filter): {"values": {metric: value}, "pick": int | None, "text": ""}}``."""
    task = _task_from_json(data)
    out = {key: {"values": {}, "pick": None, "text": ""} for key in task.keys}
    for metric_key, by_doc in task.values.items():
        metric, _, filter_key = metric_key.partition(",")
        for doc_id, value in by_doc.items():
            out[(doc_id, filter_key)]["values"][metric] = value
    for filter_key, column in data.get("picks") or []:
        ids = sorted(doc_id for doc_id, f in task.keys if f == filter_key)
        for doc_id, pick in zip(ids, column):
            out[(doc_id, filter_key)]["pick"] = None if pick in (None, NO_PICK) else int(pick)
    return out


def _task_json(task: TaskSamples) -> dict[str, Any]:
    values = {}
    for key, by_doc in task.values.items():
        ids = sorted(by_doc)
        column = [by_doc[i] for i in ids]
        if all(v in (0, 1) and not isinstance(v, list) for v in column):
            values[key] = {"doc_ids": _ranges(ids), "bits": "".join("1" if v else "0" for v in column)}
        else:
            values[key] = {"doc_ids": _ranges(ids), "values": column}
    return {"documents": [[f, _ranges([d for d, g in task.keys if g == f])] for f in sorted({g for _, g in task.keys})],
            "fingerprint": task.fingerprint, "values": values, "aggregations": task.aggregations,
            "higher_is_better": task.higher_is_better}


def _task_from_json(data: dict[str, Any]) -> TaskSamples:
    values = {}
    for key, column in data["values"].items():
        ids = _expand(column["doc_ids"])
        cells = [float(c) for c in column["bits"]] if "bits" in column else column["values"]
        if len(cells) != len(ids):
            raise ValueError(f"{key}: {len(cells)} values for {len(ids)} documents")
        values[key] = dict(zip(ids, cells))
    keys = frozenset((doc_id, f) for f, ranges in data["documents"] for doc_id in _expand(ranges))
    return TaskSamples(keys=keys, fingerprint=data["fingerprint"], values=values, aggregations=data["aggregations"],
                       higher_is_better=data["higher_is_better"])


def write_digest(run_dir: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Digest the lm-eval run in ``run_dir`` (written with ``--log_samples``) into ``path``, atomically,
    and keep the text of its tasks' documents beside it (once per task and documents)."""
    run = load_run(run_dir)
    results_file = latest_results_file(run_dir)
    files = samples_files(results_file)
    tasks = {task: {**_task_json(t), "picks": _picks_json(files[task])} for task, t in run.tasks.items()}
    for task, t in run.tasks.items():
        if tasks[task]["picks"]:  # the text is for reading flips of multiple-choice tasks, not of perplexity pages
            write_book(files[task], task, t.fingerprint, Path(path).parent)
    payload = {"format": DIGEST_FORMAT, "results": json.loads(results_file.read_text()),
               "label_baselines": task_label_baselines(results_file), "tasks": tasks}
    return write_text_atomic(path, json.dumps(payload, sort_keys=True) + "\n")


def load_digest(path: str | os.PathLike, name: str | None = None) -> RunSamples:
    """The :class:`RunSamples` of a digest, as :func:`load_run` gives them of the folder it came from."""
    data = read_digest(path)
    try:
        tasks = {task: _task_from_json(t) for task, t in data["tasks"].items()}
    except (KeyError, TypeError, ValueError) as err:
        raise TailoredError(f"{path} is a damaged run digest ({err!r})") from None
    return RunSamples(name=name or Path(path).stem, results_file=Path(path), tasks=tasks)


def load(path: str | os.PathLike, name: str | None = None) -> RunSamples:
    """A run folder or a digest file, whichever ``path`` is."""
    return load_digest(path, name) if Path(path).is_file() else load_run(path, name)
