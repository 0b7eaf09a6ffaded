"""Per-document values of lm-eval runs written with ``--log_samples``, matched document by document.

:func:`load_run` reads one run folder (its newest ``results_*.json`` and the ``samples_<task>_*.jsonl``
beside it) into :class:`RunSamples`; :func:`compare_runs` pairs two of them task by task and metric
by metric and hands the aligned values to :mod:`tailored_harness.suite.paired`. Documents are matched
by ``doc_id`` (and lm-eval's ``filter``), and checked to be the same documents by lm-eval's
``doc_hash``: two runs over different documents are refused, naming the task, since a paired test
of them would be meaningless.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import paired
from tailored_harness.suite.run_files import iter_samples, latest_results_file, samples_files


@dataclasses.dataclass(frozen=True)
class TaskSamples:
    """One task of one run: ``keys`` are its documents as ``(doc_id, filter)``; ``fingerprint`` is
    :func:`documents_fingerprint` of their ``doc_hash``es; ``values`` maps ``"metric,filter"``
    (lm-eval's result key) to ``{doc_id: value}``; ``aggregations`` and ``higher_is_better`` are per
    metric name; ``hashes`` (``{(doc_id, filter): doc_hash}``) only when read from lm-eval's samples,
    to name the first document that differs."""

    keys: frozenset[tuple[int, str]]
    fingerprint: str
    values: dict[str, dict[int, Any]]
    aggregations: dict[str, str | None]
    higher_is_better: dict[str, bool]
    hashes: dict[tuple[int, str], str] | None = None


def documents_fingerprint(hashes: dict[tuple[int, str], str]) -> str:
    """sha256 over the documents in ``(doc_id, filter)`` order and their ``doc_hash``: equal for two
    runs of the same documents, whatever order they were logged in."""
    import hashlib

    digest = hashlib.sha256()
    for (doc_id, filter_key), doc_hash in sorted(hashes.items()):
        digest.update(f"{doc_id}\t{filter_key}\t{doc_hash}\n".encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class RunSamples:
    name: str
    results_file: Path
    tasks: dict[str, TaskSamples]


def _aggregation_name(metric: str, task_config: dict[str, Any]) -> str | None:
    """The registry name of the aggregation lm-eval used for ``metric``: the task's ``metric_list``
    when it names one, else lm-eval's default for the metric."""
    from lm_eval.api import registry

    for entry in task_config.get("metric_list") or []:
        if entry.get("metric") == metric and isinstance(entry.get("aggregation"), str):
            return entry["aggregation"]
    function = registry.get_metric_aggregation(metric)
    return next((name for name, f in registry.aggregation_registry.items() if f is function), None)


def _task_samples(path: Path, results: dict[str, Any], task: str) -> TaskSamples:
    docs: dict[tuple[int, str], str] = {}
    values: dict[str, dict[int, Any]] = {}
    for sample in iter_samples(path):
        doc_id, filter_key = int(sample["doc_id"]), sample.get("filter", "none")
        docs[(doc_id, filter_key)] = sample.get("doc_hash", "")
        for metric in sample.get("metrics") or []:
            values.setdefault(f"{metric},{filter_key}", {})[doc_id] = sample[metric]
    config = (results.get("configs") or {}).get(task) or {}
    names = {key.split(",")[0] for key in values}
    directions = (results.get("higher_is_better") or {}).get(task) or {}
    return TaskSamples(keys=frozenset(docs), fingerprint=documents_fingerprint(docs), values=values,
                       aggregations={m: _aggregation_name(m, config) for m in names},
                       higher_is_better={m: bool(directions.get(m, True)) for m in names}, hashes=docs)


def load_run(run_dir: str | os.PathLike, name: str | None = None) -> RunSamples:
    """The per-document values of the lm-eval run in ``run_dir`` (its ``--output_path``)."""
    results_file = latest_results_file(run_dir)
    results = json.loads(results_file.read_text())
    files = samples_files(results_file)
    if not files:
        raise TailoredError(f"{run_dir} has no samples_*.jsonl beside {results_file.name}; "
                            "rerun lm_eval with --log_samples to compare it document by document")
    tasks = {task: _task_samples(path, results, task) for task, path in sorted(files.items())}
    return RunSamples(name=name or Path(run_dir).name, results_file=results_file, tasks=tasks)


def check_same_documents(task: str, a: RunSamples, b: RunSamples) -> None:
    ta, tb = a.tasks[task], b.tasks[task]
    if ta.keys != tb.keys:
        only = sorted(ta.keys ^ tb.keys)[0]
        owner = a.name if only in ta.keys else b.name
        raise TailoredError(f"task {task!r}: {a.name} scored {len(ta.keys)} documents and {b.name} {len(tb.keys)}, "
                            f"not the same ones (doc_id {only[0]} only in {owner}); score both with the same --limit")
    if ta.fingerprint != tb.fingerprint:
        which = "some doc_id"
        if ta.hashes is not None and tb.hashes is not None:
            which = f"doc_id {next(k for k in sorted(ta.hashes) if ta.hashes[k] != tb.hashes[k])[0]}"
        raise TailoredError(f"task {task!r}: {which} is a different document in {a.name} and {b.name} "
                            "(lm-eval's doc_hash differs); compare runs of the same task version and data")


def aligned(*values: dict[int, Any]) -> list[np.ndarray]:
    """Each run's ``{doc_id: value}`` as a shape ``(n,)`` or ``(n, 2)`` array, the same document at
    each index (sorted ``doc_id``; the runs scored the same documents, :func:`check_same_documents`)."""
    ids = sorted(values[0])
    return [np.asarray([v[i] for i in ids], dtype=float) for v in values]


def paired_metrics(runs: list[RunSamples], task: str, notes: list[str]) -> Iterator[tuple[str, str, bool]]:
    """``(key, aggregation, higher_is_better)`` of each of ``task``'s metrics that every run scored
    and that has a paired statistic (read from the first run); a line in ``notes`` for each other."""
    reference = runs[0].tasks[task]
    for key in sorted(set.intersection(*(set(run.tasks[task].values) for run in runs))):
        metric = key.split(",")[0]
        aggregation = reference.aggregations.get(metric)
        if aggregation not in paired.AGGREGATIONS:
            notes.append(f"{task} {key}: no paired statistic for aggregation {aggregation!r}")
            continue
        yield key, aggregation, reference.higher_is_better[metric]


def chosen_tasks(common: list[str], tasks: list[str] | None, scorers: str) -> list[str]:
    """``common`` (the tasks every compared run scored) narrowed to ``tasks`` when given; a task not
    in ``common`` is refused naming ``scorers`` ("both A and B") and the valid ones."""
    if tasks is None:
        return common
    unknown = [t for t in tasks if t not in common]
    if unknown:
        raise TailoredError(f"task(s) {', '.join(unknown)} not scored by {scorers} (valid: {', '.join(common) or 'none'})")
    return [t for t in common if t in tasks]


def compare_runs(a: RunSamples, b: RunSamples, spec: paired.PairedSpec = paired.PairedSpec(),
                 tasks: list[str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``a`` against run ``b``, task by task (those both scored, or ``tasks``) and metric by metric.

    Returns ``(rows, notes)``: one row per task and metric (``task``, ``metric`` as lm-eval's result
    key, ``aggregation`` and the :class:`~tailored_harness.suite.paired.PairedResult` fields), and a
    line for each task or metric that could not be compared and why.
    """
    common = sorted(a.tasks.keys() & b.tasks.keys())
    notes = [f"{task}: only in {owner.name}" for owner, other in ((a, b), (b, a))
             for task in sorted(owner.tasks.keys() - other.tasks.keys()) if tasks is None or task in tasks]
    common = chosen_tasks(common, tasks, f"both {a.name} and {b.name}")
    if not common:
        raise TailoredError(f"{a.name} and {b.name} have no task in common "
                            f"({', '.join(a.tasks)} against {', '.join(b.tasks)})")
    rows = []
    for task in common:
        check_same_documents(task, a, b)
        for key, aggregation, higher_is_better in paired_metrics([a, b], task, notes):
            values_a, values_b = aligned(a.tasks[task].values[key], b.tasks[task].values[key])
            result = paired.compare_values(values_a, values_b, aggregation, higher_is_better, spec)
            rows.append({"task": task, "metric": key, "aggregation": aggregation, **result.as_dict()})
    return rows, notes


def _number(value: float | None, signed: bool = False) -> str:
    return "none" if value is None else f"{value:{'+' if signed else ''}.4f}"


def _cells(row: dict[str, Any]) -> list[Any]:
    """One compared task and metric as table cells (see :func:`format_rows`)."""
    low, high = row["interval"]
    return [row["task"], row["metric"], row["n"], _number(row["a"]), _number(row["b"]), _number(row["difference"], True),
            "none" if low is None else f"[{_number(low, True)}, {_number(high, True)}]",
            "" if row["only_a"] is None else f"{row['only_a']} / {row['only_b']}",
            "" if row["p_value"] is None else f"{row['p_value']:.3g}", _number(row["minimum_detectable"]),
            row["verdict"]]


def _headers(a: str, b: str, spec: paired.PairedSpec) -> list[str]:
    return ["task", "metric", "docs", a, b, f"{a} - {b}", f"{100 * spec.confidence:g}% paired interval",
            "flips (only a / only b)", "McNemar p", "min. detectable", f"{a} is (at {spec.level:g})"]


def format_rows(rows: list[dict[str, Any]], a: str, b: str, spec: paired.PairedSpec) -> str:
    """The comparison as a table: both values, ``a - b`` with its interval, flips, p, the minimum
    detectable difference, and the verdict of ``a`` against ``b``."""
    from tabulate import tabulate

    return tabulate([_cells(r) for r in rows], headers=_headers(a, b, spec), tablefmt="github", disable_numparse=True)


def compare_pairs(pairs: list[tuple[str, str]], run_dirs: dict[str, str | os.PathLike],
                  spec: paired.PairedSpec = paired.PairedSpec(),
                  load: Callable[[str | os.PathLike, str], RunSamples] = load_run) -> list[dict[str, Any]]:
    """Each ``(a, b)`` of ``pairs`` (configuration names of ``run_dirs``) compared as
    :func:`compare_runs` does: ``[{"a", "b", "rows", "notes"}]``. Each run is read once, by ``load``
    (a run folder's reader by default; :func:`tailored_harness.suite.digest.load` reads digests too)."""
    unknown = sorted({name for pair in pairs for name in pair} - run_dirs.keys())
    if unknown:
        raise TailoredError(f"paired comparison of unknown configuration(s) {', '.join(unknown)} "
                            f"(valid: {', '.join(run_dirs)})")
    loaded: dict[str, RunSamples] = {}
    out = []
    for a, b in pairs:
        for name in (a, b):
            if name not in loaded:
                loaded[name] = load(run_dirs[name], name)
        rows, notes = compare_runs(loaded[a], loaded[b], spec)
        out.append({"a": a, "b": b, "rows": rows, "notes": notes})
    return out


def format_pairs(comparisons: list[dict[str, Any]], spec: paired.PairedSpec) -> str:
    """All pairs in one table, a row per pair, task and metric (the columns of :func:`format_rows`)."""
    from tabulate import tabulate

    body = [[f"{item['a']} - {item['b']}", *_cells(row)] for item in comparisons for row in item["rows"]]
    return tabulate(body, headers=["comparison (a - b)", *_headers("a", "b", spec)], tablefmt="github",
                    disable_numparse=True)


def detectable_by_task(comparisons: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``task metric``: the documents and the smallest and largest minimum detectable difference
    over the compared pairs (pairs that flip more documents need a larger difference to be told
    apart), the figure by which a task's document count is judged; ``None`` where none is reachable."""
    out: dict[str, dict[str, Any]] = {}
    for item in comparisons:
        for row in item["rows"]:
            entry = out.setdefault(f"{row['task']} {row['metric']}", {"docs": row["n"], "values": []})
            entry["values"].append(row["minimum_detectable"])
    for entry in out.values():
        values = entry.pop("values")
        finite = [v for v in values if v is not None]
        entry.update(smallest=min(finite) if finite else None, largest=max(finite) if finite else None,
                     unreachable=len(values) - len(finite))
    return out
