"""Turn lm-eval result files into the suite's summary, its table and its regression check.

Pure core: :func:`rows_from_results` (one row per task, configuration and metric),
:func:`relative_to` (percentage of the dense score), :func:`check` (compare with a baseline).
The printing and file writing around them is thin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from tailored_harness.lmeval.startup import MODEL_NAME
from tailored_harness.suite.run_files import latest_results_file, read_digest, task_label_baselines

STDERR_SUFFIX = "_stderr"
DENSE = "dense"


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """How much a metric may fall below its baseline before the suite fails.

    The allowance for one metric is ``max(floor, z * sqrt(se_baseline**2 + se_now**2))``: ``z``
    standard errors of the difference of two independent estimates (both stderrs from lm-eval),
    but never less than ``floor``, so a metric that happened to score with zero stderr (all right or
    all wrong) does not fail on one changed answer. A metric lower-is-better (perplexity, as lm-eval's
    ``higher_is_better`` says) is compared relative to its baseline: its drop is the relative rise,
    its stderrs are taken relative to their values, so ``floor`` 0.02 allows a 2% rise.
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
    higher_is_better: bool = True

    @property
    def drop(self) -> float:
        """How much worse ``now`` is: the fall of a higher-is-better metric, the relative rise of a
        lower-is-better one."""
        if self.higher_is_better:
            return self.baseline - self.now
        return (self.now - self.baseline) / self.baseline if self.baseline else math.inf

    @property
    def regressed(self) -> bool:
        return self.drop > self.allowance


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
            higher = results.get("higher_is_better", {}).get(task, {}).get(metric, True)
            rows.append(
                {
                    "task": task,
                    "configuration": configuration,
                    "metric": metric,
                    "value": float(value),
                    "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                    "n": results.get("n-samples", {}).get(task, {}).get("effective"),
                    "higher_is_better": bool(higher),
                }
            )
    return rows


def configuration_info(results: dict[str, Any]) -> dict[str, Any]:
    """What a configuration scored, for plots: prune ratio, parameters (scored and dense) and
    adapter shots, from ``config.tailored`` of a ``--model tailored`` run (other models: unpruned,
    unadapted, lm-eval's parameter count)."""
    config = results.get("config", {})
    tailored = config.get(MODEL_NAME) or {}
    spec, pruning = tailored.get("spec") or {}, tailored.get("pruning") or {}
    dense = pruning.get("parameters_before") or config.get("model_num_parameters")
    return {"prune_ratio": float(spec.get("prune_ratio") or 0.0) if pruning else 0.0,
            "importance": spec.get("importance") if pruning else None,
            "calibration": spec.get("calibration") if pruning else None,
            "attention_unit": spec.get("attention_unit", "kv_group") if pruning else None,
            "parameters": pruning.get("parameters_after") or dense, "parameters_dense": dense,
            "shots": int(spec.get("shots") or 0) if tailored.get("adapters") else 0}


def collect(runs: list[tuple[str, str | os.PathLike]], base: Path) -> tuple[list[dict], dict[str, str], dict[str, dict], dict[str, dict]]:
    """Rows of every ``(name, lm-eval output folder or run digest)`` run (with ``pct_of_dense``), the results file
    each came from (relative to ``base``, where the summary is written), each task's
    :func:`label_baselines` from the logged samples of the first run that has them, ``dense`` first,
    and each configuration's :func:`configuration_info`."""
    rows, sources, samples, configurations = [], {}, {}, {}
    for name, run_dir in runs:
        if Path(run_dir).is_file():  # a run digest (tailored_harness.suite.digest) in place of the folder
            path, data = Path(run_dir), read_digest(run_dir)
            results, samples[name] = data["results"], data.get("label_baselines") or {}
        else:
            path = latest_results_file(run_dir)
            results, samples[name] = json.loads(path.read_text()), path
        sources[name] = os.path.relpath(path.resolve(), base)
        rows += rows_from_results(results, name)
        configurations[name] = configuration_info(results)
    baselines = {}
    for name in sorted(samples, key=lambda n: n != DENSE):
        source = samples[name]
        found = source if isinstance(source, dict) else task_label_baselines(source)
        for task, value in found.items():
            baselines.setdefault(task, value)
    return relative_to(rows), sources, baselines, configurations


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
    """Compare every metric present in both the run and the baseline, in the direction lm-eval gives
    it (``higher_is_better`` of the run's row; a row without it is higher-is-better)."""
    now = {_key(r): r for r in rows}
    out = []
    for base in baseline:
        row = now.get(_key(base))
        if row is None:
            continue
        higher = row.get("higher_is_better", base.get("higher_is_better", True))
        was, is_ = float(base["value"]), float(row["value"])
        if higher:
            spread = math.hypot(_stderr(base), _stderr(row))
        else:  # relative, as the drop is
            spread = math.hypot(_stderr(base) / was if was else 0.0, _stderr(row) / is_ if is_ else 0.0)
        allowance = max(spec.floor, spec.z * spread)
        out.append(Comparison(*_key(base), baseline=was, now=is_, allowance=allowance, higher_is_better=higher))
    return out


def not_compared(rows: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``(in the baseline but not run, run but not in the baseline)`` as ``task/configuration/metric``."""
    run_keys, base_keys = {_key(r) for r in rows}, {_key(r) for r in baseline}
    fmt = lambda keys: sorted("/".join(k) for k in keys)  # noqa: E731
    return fmt(base_keys - run_keys), fmt(run_keys - base_keys)


def format_table(rows: list[dict[str, Any]], baselines: dict[str, dict[str, float]] | None = None) -> str:
    """The suite's table: task, configuration, metric ± stderr, % of dense, documents scored, and
    (for tasks in ``baselines``, see :func:`label_baselines`) the majority-class and chance accuracies."""
    from tabulate import tabulate

    def cell(row):
        stderr = row["stderr"]
        if stderr is None or math.isnan(stderr):
            return f"{row['value']:.4f}"
        return f"{row['value']:.4f} ± {stderr:.4f}"

    def pct(row):
        value = row.get("pct_of_dense")
        return "" if value is None else f"{value:.1f}%"

    def reference(row, key):
        known = (baselines or {}).get(row["task"])
        return f"{known[key]:.4f}" if known and known.get(key) is not None and row["metric"].startswith("acc") else ""

    table = [[r["task"], r["configuration"], r["metric"], cell(r), pct(r), r["n"]] for r in rows]
    headers = ["task", "configuration", "metric", "value ± stderr", "% of dense", "n"]
    if baselines:
        table = [line + [reference(r, "majority"), reference(r, "chance")] for line, r in zip(table, rows)]
        headers += ["majority class", "chance"]
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


def family(configuration: str) -> str:
    """The configuration a seeded run belongs to: ``p20_adapt50_s1`` -> ``p20_adapt50``; others are their own."""
    match = SEEDED.match(configuration)
    return match["base"] if match else configuration


def family_means(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], tuple[float, int]]:
    """``{(task, family): (mean value, seeds)}`` of ``metric``: seeded runs averaged, others as they are."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["metric"] == metric:
            groups.setdefault((row["task"], family(row["configuration"])), []).append(float(row["value"]))
    return {key: (sum(v) / len(v), len(v)) for key, v in groups.items()}


def recovery(rows: list[dict[str, Any]], metric: str = "acc", compare: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Mean percentage of a reference's score per configuration, over the tasks scored with ``metric``.

    Seeded configurations (``NAME_sN``) count once, as the mean over their seeds. The reference is
    ``dense``: with ``acc`` this is the mean classification accuracy kept, the figure the
    Tailored-LLaMA paper reports (95.68% at 20% compression and 86.54% at 50%, with 50 shots).
    ``compare`` maps a configuration to a second reference, e.g. ``p20_adapt50`` to
    ``dense_adapt50``: the dense model with the same adapters, the fair comparison, since an adapter
    also teaches the task's format and can lift a model above its own zero-shot score.
    """
    means, compare = family_means(rows, metric), compare or {}
    out = []
    for name in dict.fromkeys(family(r["configuration"]) for r in rows if r["metric"] == metric):
        if name == DENSE:
            continue
        tasks = [task for task, fam in means if fam == name]
        pct_of_dense, kept_tasks = _mean_kept(means, name, DENSE, tasks)
        reference = compare.get(name)
        pct_of_compared = _mean_kept(means, name, reference, tasks)[0] if reference else None
        if pct_of_dense is not None or pct_of_compared is not None:
            out.append({"configuration": name, "metric": metric, "seeds": max(means[(t, name)][1] for t in tasks),
                        "mean_pct_of_dense": pct_of_dense, "tasks": kept_tasks,
                        "mean_pct_of_compared": pct_of_compared, "compared_to": reference})
    return out


def _mean_kept(means: dict[tuple[str, str], tuple[float, int]], name: str, reference: str,
               tasks: list[str]) -> tuple[float | None, int]:
    """Mean over ``tasks`` of ``name``'s % of ``reference`` (tasks where the reference has a nonzero
    score), and how many tasks that mean covers."""
    kept = [100.0 * means[(t, name)][0] / means[(t, reference)][0] for t in tasks
            if means.get((t, reference), (0, 0))[0]]
    return (sum(kept) / len(kept) if kept else None), len(kept)


def format_recovery(summary: list[dict[str, Any]], paper: dict[str, float]) -> str:
    """Table of :func:`recovery`, with the paper's figure next to the configurations given one."""
    from tabulate import tabulate

    def pct(value):
        return "" if value is None else f"{value:.2f}%"

    table = [[r["configuration"], r["metric"], r["seeds"], r["tasks"], pct(r["mean_pct_of_dense"]),
              f"{paper[r['configuration']]:.2f}%" if r["configuration"] in paper else ""] for r in summary]
    headers = ["configuration", "metric", "seeds", "tasks", "mean % of dense", "paper (Tailored-LLaMA)"]
    if any(r["compared_to"] for r in summary):
        table = [line + [f"{pct(r['mean_pct_of_compared'])} of {r['compared_to']}" if r["compared_to"] else ""]
                 for line, r in zip(table, summary)]
        headers.append("mean % of the same adapters on dense")
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def format_regressions(comparisons: list[Comparison]) -> str:
    """Table of the metrics that fell by more than their allowance."""
    from tabulate import tabulate

    def change(c: Comparison) -> str:
        return f"{-c.drop:+.4f}" if c.higher_is_better else f"{c.drop:+.1%} (lower is better)"

    def allowed(c: Comparison) -> str:
        return f"{c.allowance:.4f}" if c.higher_is_better else f"{c.allowance:.1%}"

    table = [[c.task, c.configuration, c.metric, f"{c.baseline:.4f}", f"{c.now:.4f}", change(c), allowed(c)]
             for c in comparisons if c.regressed]
    headers = ["task", "configuration", "metric", "baseline", "now", "change", "allowance"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    from tailored_harness.core.paths import write_text_atomic

    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
