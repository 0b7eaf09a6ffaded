"""lm-eval's output folders as files: the newest results file, the samples beside it, and run digests.

lm-eval's ``--output_path`` holds ``<model>/results_<stamp>.json`` and, with ``--log_samples``,
``samples_<task>_<stamp>.jsonl`` beside it. The suite's modules read them through here, and read a run
digest (:mod:`tailored_harness.suite.digest`) through :func:`read_digest`, so that the modules that
read runs do not depend on the ones that summarise them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError

DIGEST_FORMAT = "tailored-run-digest/1"


def latest_results_file(run_dir: str | os.PathLike) -> Path:
    """Newest ``results_*.json`` that lm-eval's ``--output_path`` wrote under ``run_dir``."""
    files = sorted(Path(run_dir).rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no lm-eval results_*.json under {run_dir}")
    return files[-1]


def label_baselines(samples: list[dict[str, Any]]) -> dict[str, float] | None:
    """Majority-class and chance accuracy of the documents a multiple-choice task scored.

    ``samples``: lm-eval's logged samples of one task (``--log_samples``), each with its gold
    ``target`` (the choice, which lm-eval writes as text) and one request per choice in
    ``arguments``. Returns ``{"majority", "chance", "n"}``: the share of the most frequent gold
    choice (what always answering it scores) and the mean of 1 / choices; ``None`` for other tasks
    (generation: one request per document).
    """
    if not samples:
        return None
    targets, choices = [], []
    for sample in samples:
        arguments = sample.get("arguments") or {}
        if "target" not in sample or len(arguments) < 2:
            return None
        targets.append(str(sample["target"]))
        choices.append(len(arguments))
    counts: dict[str, int] = {}
    for target in targets:
        counts[target] = counts.get(target, 0) + 1
    return {"majority": max(counts.values()) / len(targets), "chance": sum(1 / c for c in choices) / len(choices),
            "n": len(targets)}


def samples_files(results_file: str | os.PathLike) -> dict[str, Path]:
    """``{task: samples_<task>_<timestamp>.jsonl}`` written beside lm-eval's ``results_<timestamp>.json``."""
    path = Path(results_file)
    stamp = path.stem.removeprefix("results_")
    return {p.name[len("samples_"):-len(f"_{stamp}.jsonl")]: p for p in path.parent.glob(f"samples_*_{stamp}.jsonl")}


def read_digest(path: str | os.PathLike) -> dict[str, Any]:
    """A run digest's JSON, checked to be one (one error line naming the file otherwise)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise TailoredError(f"{path} is not a run digest ({err})") from None
    if not isinstance(data, dict) or data.get("format") != DIGEST_FORMAT:
        raise TailoredError(f"{path} is not a run digest (no \"format\": \"{DIGEST_FORMAT}\"); give an lm-eval "
                            "--output_path folder or a digest that tailored report --digests wrote")
    return data
