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


def requests_of(sample: dict[str, Any]) -> list[list[Any]]:
    """A logged sample's requests as argument lists (``[context, continuation]`` for a choice): lm-eval
    writes them as ``{"gen_args_N": {"arg_M": ...}}`` (a list of argument lists before it sanitises them)."""
    arguments = sample.get("arguments") or []
    if isinstance(arguments, dict):
        ordered = sorted(arguments.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[-1]))
        return [[args[k] for k in sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]))] for _, args in ordered]
    return [list(a) for a in arguments]


def picked_choice(sample: dict[str, Any]) -> int | None:
    """The choice of highest log-likelihood (what ``acc`` scores) of a multiple-choice sample."""
    scores = []
    for response in sample.get("filtered_resps") or []:
        value = response[0] if isinstance(response, (list, tuple)) else response
        try:
            scores.append(float(value))
        except (TypeError, ValueError):
            return None
    return max(range(len(scores)), key=scores.__getitem__) if len(scores) > 1 else None


def gold_choice(sample: dict[str, Any]) -> int | None:
    """The index of a multiple-choice sample's gold choice. lm-eval logs the target as text: the gold
    index (BoolQ, PIQA, HellaSwag) or the gold continuation; where every choice shares one continuation
    and differs in its context (WinoGrande's partial scoring) the target names no choice, and the
    gold one is read off ``acc``: the picked choice when right, the other of two when wrong."""
    requests = requests_of(sample)
    target = str(sample.get("target"))
    continuations = [str(r[1]) if len(r) > 1 else None for r in requests]
    if target.isdigit() and int(target) < len(requests):
        return int(target)
    if target in continuations and len(set(continuations)) == len(continuations):
        return continuations.index(target)
    pick, acc = picked_choice(sample), sample.get("acc")
    if pick is None or acc not in (0, 1, 0.0, 1.0, True, False):
        return None
    if acc:
        return pick
    return 1 - pick if len(requests) == 2 else None


def label_baselines(samples: list[dict[str, Any]]) -> dict[str, float] | None:
    """Majority-class and chance accuracy of the documents a multiple-choice task scored.

    ``samples``: lm-eval's logged samples of one task (``--log_samples``), one request per choice in
    ``arguments``. Returns ``{"majority", "chance", "n"}``: the share of the most frequent gold
    choice (what always answering it scores; :func:`gold_choice`) and the mean of 1 / choices;
    ``None`` for other tasks (generation: one request per document); ``majority`` is ``None`` when
    some document's gold choice cannot be read.
    """
    if not samples or any(len(sample.get("arguments") or {}) < 2 for sample in samples):
        return None
    golds = [gold_choice(sample) for sample in samples]
    chance = sum(1 / len(sample["arguments"]) for sample in samples) / len(samples)
    counts: dict[int, int] = {}
    for gold in golds:
        counts[gold] = counts.get(gold, 0) + 1
    majority = None if None in counts else max(counts.values()) / len(golds)
    return {"majority": majority, "chance": chance, "n": len(samples)}


def iter_samples(path: str | os.PathLike):
    """The logged samples of one ``samples_<task>_<stamp>.jsonl``, one dict per line, blank lines skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def task_label_baselines(results_file: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{task: label_baselines(...)}`` of the samples beside ``results_file``, for the tasks that have them."""
    found = {task: label_baselines(list(iter_samples(path))) for task, path in samples_files(results_file).items()}
    return {task: value for task, value in found.items() if value}


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
