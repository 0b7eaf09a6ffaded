"""Turn lm-eval result files into the suite's summary, its table and its regression check.

Pure core: :func:`rows_from_results` (one row per task, configuration and metric),
:func:`relative_to` (percentage of the dense score), :func:`check` (compare with a baseline).
The printing and file writing around them is thin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import os
from pathlib import Path
from typing import Any

STDERR_SUFFIX = "_stderr"
DENSE = "dense"


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """How much a metric may fall below its baseline before the suite fails.

    The allowance for one metric is ``max(floor, z * sqrt(se_baseline**2 + se_now**2))``: ``z``
    standard errors of the difference of two independent estimates (both stderrs from lm-eval),
    but never less than ``floor``, so a metric that happened to score with zero stderr (all right or
    all wrong) does not fail on one changed answer.
    """

    z: float = 2.0
    floor: float = 0.02

    def __post_init__(self) -> None:
        if not self.z > 0:
            raise ValueError(f"z={self.z} must be positive")
        if not 0 <= self.floor < 1:
            raise ValueError(f"floor={self.floor} must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of the run against its baseline; ``drop`` > ``allowance`` is a regression."""

    task: str
    configuration: str
    metric: str
    baseline: float
    now: float
    allowance: float

    @property
    def drop(self) -> float:
        return self.baseline - self.now

    @property
    def regressed(self) -> bool:
        return self.drop > self.allowance


def latest_results_file(run_dir: str | os.PathLike) -> Path:
    """Newest ``results_*.json`` that lm-eval's ``--output_path`` wrote under ``run_dir``."""
    files = sorted(Path(run_dir).rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no lm-eval results_*.json under {run_dir}")
    return files[-1]


def rows_from_results(results: dict[str, Any], configuration: str) -> list[dict[str, Any]]:
    """One row per (task, metric): value and stderr as lm-eval reported them."""
    rows = []
    for task, metrics in sorted(results["results"].items()):
        for key, value in sorted(metrics.items()):
            # lm-eval names metrics "<metric>,<filter>"; other keys (alias, sample_len) are bookkeeping.
            if "," not in key or not isinstance(value, (int, float)) or STDERR_SUFFIX in key:
                continue
            metric, _, filt = key.partition(",")
            stderr = metrics.get(f"{metric}{STDERR_SUFFIX},{filt}")
            rows.append(
                {
                    "task": task,
                    "configuration": configuration,
                    "metric": metric,
                    "value": float(value),
                    "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                    "n": results.get("n-samples", {}).get(task, {}).get("effective"),
                }
            )
    return rows


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["task"], row["configuration"], row["metric"]


def relative_to(rows: list[dict[str, Any]], reference: str = DENSE) -> list[dict[str, Any]]:
    """Copies of ``rows`` with ``pct_of_dense``: 100 x value / the same task and metric under ``reference``.

    ``None`` where the run has no ``reference`` configuration or its score is 0.
    """
    dense = {(r["task"], r["metric"]): r["value"] for r in rows if r["configuration"] == reference}
    out = []
    for row in rows:
        base = dense.get((row["task"], row["metric"]))
        out.append(dict(row, pct_of_dense=100.0 * row["value"] / base if base else None))
    return out


def _stderr(row: dict[str, Any]) -> float:
    se = row.get("stderr")
    return 0.0 if se is None or math.isnan(se) else float(se)


def check(rows: list[dict[str, Any]], baseline: list[dict[str, Any]], spec: CheckSpec = CheckSpec()) -> list[Comparison]:
    """Compare every metric present in both the run and the baseline (higher is better for all)."""
    now = {_key(r): r for r in rows}
    out = []
    for base in baseline:
        row = now.get(_key(base))
        if row is None:
            continue
        allowance = max(spec.floor, spec.z * math.hypot(_stderr(base), _stderr(row)))
        out.append(Comparison(*_key(base), baseline=float(base["value"]), now=float(row["value"]), allowance=allowance))
    return out


def not_compared(rows: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``(in the baseline but not run, run but not in the baseline)`` as ``task/configuration/metric``."""
    run_keys, base_keys = {_key(r) for r in rows}, {_key(r) for r in baseline}
    fmt = lambda keys: sorted("/".join(k) for k in keys)  # noqa: E731
    return fmt(base_keys - run_keys), fmt(run_keys - base_keys)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The suite's table: task, configuration, metric ± stderr, % of dense, documents scored."""
    from tabulate import tabulate

    def cell(row):
        stderr = row["stderr"]
        if stderr is None or math.isnan(stderr):
            return f"{row['value']:.4f}"
        return f"{row['value']:.4f} ± {stderr:.4f}"

    def pct(row):
        value = row.get("pct_of_dense")
        return "" if value is None else f"{value:.1f}%"

    table = [[r["task"], r["configuration"], r["metric"], cell(r), pct(r), r["n"]] for r in rows]
    headers = ["task", "configuration", "metric", "value ± stderr", "% of dense", "n"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


SEEDED = re.compile(r"^(?P<base>.+)_s(?P<seed>\d+)$")


def over_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configurations run under several seeds (named ``BASE_sN``), summarised per task and metric.

    One pruning draw can be lucky or not (the random criterion, a calibration sample), so
    criteria are compared on the mean and range over seeds. Returns rows
    ``{task, configuration: BASE, metric, mean, min, max, seeds}`` for every BASE with two or more seeds.
    """
    groups: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        match = SEEDED.match(row["configuration"])
        if match:
            groups.setdefault((row["task"], match["base"], row["metric"]), []).append(float(row["value"]))
    return [{"task": task, "configuration": base, "metric": metric, "mean": sum(v) / len(v), "min": min(v),
             "max": max(v), "seeds": len(v)}
            for (task, base, metric), v in groups.items() if len(v) > 1]


def format_over_seeds(summary: list[dict[str, Any]]) -> str:
    """Table of :func:`over_seeds`: mean and range of every seeded configuration."""
    from tabulate import tabulate

    table = [[r["task"], r["configuration"], r["metric"], f"{r['mean']:.4f}", f"{r['min']:.4f} - {r['max']:.4f}", r["seeds"]]
             for r in summary]
    headers = ["task", "configuration (over seeds)", "metric", "mean", "range", "seeds"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def recovery(rows: list[dict[str, Any]], metric: str = "acc") -> list[dict[str, Any]]:
    """Mean percentage of the dense score per configuration, over the tasks scored with ``metric``.

    With ``acc`` this is the mean classification accuracy kept, the figure the Tailored-LLaMA
    paper reports (95.68% at 20% compression and 86.54% at 50%, with 50 shots).
    """
    kept: dict[str, list[float]] = {}
    for row in rows:
        if row["metric"] == metric and row.get("pct_of_dense") is not None and row["configuration"] != DENSE:
            kept.setdefault(row["configuration"], []).append(row["pct_of_dense"])
    return [{"configuration": name, "metric": metric, "mean_pct_of_dense": sum(v) / len(v), "tasks": len(v)}
            for name, v in kept.items()]


def format_recovery(summary: list[dict[str, Any]], paper: dict[str, float]) -> str:
    """Table of :func:`recovery`, with the paper's figure next to the configurations given one."""
    from tabulate import tabulate

    table = [[r["configuration"], r["metric"], f"{r['mean_pct_of_dense']:.2f}%", r["tasks"],
              f"{paper[r['configuration']]:.2f}%" if r["configuration"] in paper else ""] for r in summary]
    headers = ["configuration", "metric", "mean % of dense", "tasks", "paper (Tailored-LLaMA)"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def format_regressions(comparisons: list[Comparison]) -> str:
    """Table of the metrics that fell by more than their allowance."""
    from tabulate import tabulate

    table = [
        [c.task, c.configuration, c.metric, f"{c.baseline:.4f}", f"{c.now:.4f}", f"{-c.drop:+.4f}", f"{c.allowance:.4f}"]
        for c in comparisons if c.regressed
    ]
    headers = ["task", "configuration", "metric", "baseline", "now", "change", "allowance"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    from tailored_harness.paths import write_text_atomic

    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
