"""Intervals for the scores lm-eval gives no stderr for (the perplexities), from the runs' documents.

lm-eval reports a stderr beside each accuracy but none beside a perplexity. The suite's page shows an
interval in every cell, so for a row without a stderr this module bootstraps the run's own aggregate
over its documents (:func:`tailored_harness.suite.paired.single_interval`), reading the run folder
or digest the row came from.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tailored_harness.suite import paired
from tailored_harness.suite.digest import load


def missing_intervals(rows: list[dict[str, Any]], run_paths: dict[str, str | os.PathLike],
                      spec: paired.PairedSpec = paired.PairedSpec(resamples=2000)) -> dict[tuple[str, str, str], tuple[float, float]]:
    """``{(configuration, task, metric): (low, high)}`` for each row without a stderr whose run has
    per-document values under an aggregation :data:`~tailored_harness.suite.paired.AGGREGATIONS` knows."""
    wanted = [r for r in rows if r.get("stderr") is None and r["configuration"] in run_paths]
    runs, out = {}, {}
    for row in wanted:
        name = row["configuration"]
        if name not in runs:
            runs[name] = load(run_paths[name], name)
        task = runs[name].tasks.get(row["task"])
        if task is None:
            continue
        key = next((k for k in sorted(task.values) if k.split(",")[0] == row["metric"]), None)
        aggregation = task.aggregations.get(row["metric"])
        if key is None or aggregation not in paired.AGGREGATIONS:
            continue
        by_doc = task.values[key]
        values = np.asarray([by_doc[i] for i in sorted(by_doc)], dtype=float)
        low, high = paired.single_interval(values, aggregation, spec)
        if not np.isnan(low):
            out[(name, row["task"], row["metric"])] = (low, high)
    return out
