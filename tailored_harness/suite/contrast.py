"""Contrasts of two paired effects on the same documents: does one change cost more than another?

An *effect* is run A against run B on the same documents (pruned against dense, adapted against
pruned); a *contrast* is one effect minus another, all four runs scored on the same documents: does
pruning at 0.2 cost Gemma 3 more than SmolLM2, does an adapter recover more at 0.5 than at 0.2? Two
effects each with its own paired interval say nothing about their difference when the intervals
overlap; the contrast's own interval does. Each bootstrap resample draws one set of documents and
takes it from all four runs, so what they share (an easy document, a mislabeled one) cancels out.

Scales: ``difference`` (an effect is ``agg(a) - agg(b)``, in the metric's units) or ``ratio``
(``agg(a) / agg(b)``: the share of B's score that A keeps, the papers' "% of dense" per task, which
compares models whose dense scores differ).

Pure core over per-document values (the shapes of :mod:`tailored_harness.suite.paired`); the runs'
layer (:func:`contrast_runs`) reads lm-eval runs or digests.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import paired
from tailored_harness.suite.run_samples import RunSamples, aligned, check_same_documents, chosen_tasks, paired_metrics

SCALES = ("difference", "ratio")


@dataclasses.dataclass(frozen=True)
class ContrastResult:
    """Effect 1 (``a1`` against ``b1``) minus effect 2 (``a2`` against ``b2``) on ``n`` shared documents.

    ``first``, ``second``: the two effects on ``scale``; ``contrast``: ``first - second`` and
    ``interval`` its bootstrap interval; ``verdict``: effect 1 is ``better`` or ``worse`` than effect
    2 after the metric's direction (a smaller loss is better), or ``undecided`` when the interval holds
    0; ``minimum_detectable``: half the interval's width.
    """

    first: float
    second: float
    contrast: float
    interval: tuple[float, float]
    n: int
    higher_is_better: bool
    verdict: str
    minimum_detectable: float
    scale: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: an undefined interval or minimum is ``None``."""
        out = dataclasses.asdict(self)
        out["interval"] = [None if math.isnan(x) else x for x in self.interval]
        if not math.isfinite(self.minimum_detectable):
            out["minimum_detectable"] = None
        return out


def _effect(scale: str, a, b):
    if scale == "difference":
        return a - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def contrast_values(a1: Sequence, b1: Sequence, a2: Sequence, b2: Sequence, aggregation: str,
                    higher_is_better: bool, spec: paired.PairedSpec = paired.PairedSpec(),
                    scale: str = "difference") -> ContrastResult:
    """``effect(a1, b1) - effect(a2, b2)`` with its paired bootstrap interval and verdict.

    ``a1``, ``b1``, ``a2``, ``b2``: per-document values of one task and metric, shape ``(n,)`` or
    ``(n, 2)`` (``(loglikelihood, weight)`` pairs), aligned by document (index ``i`` is the same
    document in all four); ``aggregation``: a key of :data:`paired.AGGREGATIONS`.
    """
    if aggregation not in paired.AGGREGATIONS:
        raise ValueError(f"aggregation {aggregation!r} has no paired statistic (valid: {', '.join(paired.AGGREGATIONS)})")
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not a scale (valid: {', '.join(SCALES)})")
    runs = [np.asarray(v, dtype=float) for v in (a1, b1, a2, b2)]
    if len({r.shape for r in runs}) != 1 or not len(runs[0]):
        raise ValueError(f"contrasted values must have one shape and at least one document (got "
                         f"{', '.join(str(r.shape) for r in runs)})")
    single, width = paired.AGGREGATIONS[aggregation]
    values = [paired.aggregate(r, aggregation) for r in runs]
    first, second = _effect(scale, values[0], values[1]), _effect(scale, values[2], values[3])
    data = tuple(c for r in runs for c in paired.columns(r, aggregation))

    def statistic(*data, axis=-1):
        agg = [single(*data[i * width:(i + 1) * width], axis=axis) for i in range(4)]
        return _effect(scale, agg[0], agg[1]) - _effect(scale, agg[2], agg[3])

    if np.array_equal(runs[0], runs[2]) and np.array_equal(runs[1], runs[3]):
        interval = (0.0, 0.0)  # the same effect twice: every resample's contrast is 0
    elif len(runs[0]) < 2:
        interval = (math.nan, math.nan)
    else:
        interval = paired.resampled_interval(data, statistic, spec)
    contrast = float(first - second)
    verdict = paired.verdict(contrast, paired.excludes_zero(interval), higher_is_better)
    detectable = (interval[1] - interval[0]) / 2 if interval != (0.0, 0.0) else math.nan
    return ContrastResult(first=float(first), second=float(second), contrast=contrast, interval=interval,
                          n=len(runs[0]), higher_is_better=higher_is_better, verdict=verdict,
                          minimum_detectable=detectable, scale=scale)


def contrast_runs(first: tuple[RunSamples, RunSamples], second: tuple[RunSamples, RunSamples],
                  spec: paired.PairedSpec = paired.PairedSpec(), tasks: list[str] | None = None,
                  scale: str = "difference") -> tuple[list[dict[str, Any]], list[str]]:
    """``first`` (run a1 against b1) minus ``second`` (a2 against b2), task by task (those all four
    scored, or ``tasks``) and metric by metric; the four must have scored the same documents.

    Returns ``(rows, notes)``: a row per task and metric (``task``, ``metric``, ``aggregation`` and the
    :class:`ContrastResult` fields) and a line for each metric that has no paired statistic.
    """
    runs = [*first, *second]
    common = sorted(set.intersection(*(set(run.tasks) for run in runs)))
    names = ", ".join(run.name for run in runs)
    common = chosen_tasks(common, tasks, f"all of {names}")
    if not common:
        raise TailoredError(f"{names} have no task in common")
    rows, notes = [], []
    for task in common:
        for other in runs[1:]:
            check_same_documents(task, runs[0], other)
        for key, aggregation, higher_is_better in paired_metrics(runs, task, notes):
            values = aligned(*(run.tasks[task].values[key] for run in runs))
            result = contrast_values(*values, aggregation, higher_is_better, spec, scale)
            rows.append({"task": task, "metric": key, "aggregation": aggregation, **result.as_dict()})
    return rows, notes


def format_rows(rows: list[dict[str, Any]], first: str, second: str, spec: paired.PairedSpec) -> str:
    """The contrasts as a table: both effects, their difference with its interval, half the
    interval's width and the verdict of the first effect against the second."""
    from tabulate import tabulate

    def number(value, signed=True):
        return "none" if value is None else f"{value:{'+' if signed else ''}.4f}"

    body = [[r["task"], r["metric"], r["n"], number(r["first"], r["scale"] == "difference"),
             number(r["second"], r["scale"] == "difference"), number(r["contrast"]),
             "none" if r["interval"][0] is None else f"[{number(r['interval'][0])}, {number(r['interval'][1])}]",
             number(r["minimum_detectable"], signed=False), r["verdict"]] for r in rows]
    headers = ["task", "metric", "docs", first, second, "first - second",
               f"{100 * spec.confidence:g}% paired interval", "min. detectable", f"first is (at {spec.level:g})"]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
