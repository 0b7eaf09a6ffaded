"""Turn lm-eval result files into the suite's summary JSON and a printed table."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

STDERR_SUFFIX = "_stderr"


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


def format_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def cell(row):
        stderr = row["stderr"]
        if stderr is None or math.isnan(stderr):
            return f"{row['value']:.4f}"
        return f"{row['value']:.4f} ± {stderr:.4f}"

    table = [[r["task"], r["configuration"], r["metric"], cell(r), r["n"]] for r in rows]
    return tabulate(table, headers=["task", "configuration", "metric", "value ± stderr", "n"], tablefmt="github")


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
