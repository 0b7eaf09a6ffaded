"""lm-eval output folders of ``--model tailored`` runs, read as what they scored.

``lm_eval --output_path DIR`` writes ``DIR/<model>/results_<timestamp>.json`` and, with
``--log_samples``, ``samples_<task>_<timestamp>.jsonl`` beside it. The plugin's own record of a run
(the spec, the pruned checkpoint, each task's adapter) is the results' ``config.tailored``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError
from tailored_harness.lmeval.startup import MODEL_NAME
from tailored_harness.suite.run_files import latest_results_file, samples_files

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScoredRun:
    """One run: its results file, its samples files (``{task: path}``, empty without
    ``--log_samples``) and the parsed results."""

    folder: Path
    results_file: Path
    samples: dict[str, Path]
    results: dict[str, Any]

    @property
    def tailored(self) -> dict[str, Any]:
        return self.results["config"][MODEL_NAME]

    @property
    def spec(self) -> dict[str, Any]:
        return self.tailored["spec"]

    @property
    def tasks(self) -> list[str]:
        return sorted(self.results["results"])

    @property
    def pruning(self) -> dict[str, Any] | None:
        return self.tailored.get("pruning")

    @property
    def adapters(self) -> dict[str, dict[str, Any]]:
        return self.tailored.get("adapters") or {}

    @property
    def model_identity(self) -> tuple[str, str, str | None]:
        """What decides the scored weights apart from the adapters: the base, its revision and the
        pruned checkpoint (``None`` when unpruned)."""
        pruning = self.pruning
        return self.tailored["pretrained"], self.spec.get("revision", "main"), pruning["fingerprint"] if pruning else None

    @property
    def precision(self) -> str:
        """The dtype weights were scored in, as leaderboards name it (``float32``, ``bfloat16``)."""
        dtype = str(self.results["config"].get("model_dtype") or self.spec.get("dtype") or "unknown")
        return dtype.removeprefix("torch.")


def read_run(folder: str | Path) -> ScoredRun:
    """The newest results file under ``folder`` (an lm-eval ``--output_path``) with its samples.

    Raises :class:`TailoredError` when there is none, or when it was not scored by ``--model tailored``.
    """
    folder = Path(folder)
    try:
        path = latest_results_file(folder)
    except FileNotFoundError as err:
        raise TailoredError(f"{err}; pass the --output_path folder of an lm_eval --model {MODEL_NAME} run") from None
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TailoredError(f"{path} is not readable JSON ({err})") from None
    config = results.get("config") or {}
    if not isinstance(config.get(MODEL_NAME), dict):
        raise TailoredError(f"{path} was scored by --model {config.get('model')!r}, not --model {MODEL_NAME}; "
                            f"only {MODEL_NAME} runs record the artifacts a submission names")
    samples = samples_files(path)
    missing = [task for task in results.get("results", {}) if task not in samples]
    if missing:
        logger.info("%s has no logged samples for %s (run lm_eval with --log_samples to include them)",
                    path, ", ".join(sorted(missing)))
    return ScoredRun(folder, path, samples, results)


def check_one_model(runs: list[ScoredRun]) -> None:
    """A package describes one model: every run scored the same base and pruned checkpoint, and no
    task is scored twice (two scores of one task would leave the card's result ambiguous)."""
    if not runs:
        raise TailoredError("no runs given; pass one or more lm-eval --output_path folders")
    first = runs[0]
    scored_by: dict[str, Path] = {}
    for run in runs:
        if run.model_identity != first.model_identity:
            raise TailoredError(f"{run.folder} scored {_describe(run)} but {first.folder} scored {_describe(first)}; "
                                f"export one model per package")
        for task in run.tasks:
            if task in scored_by:
                raise TailoredError(f"task {task} is scored by both {scored_by[task]} and {run.folder}; "
                                    f"export them as separate packages")
            scored_by[task] = run.folder


def _describe(run: ScoredRun) -> str:
    pretrained, revision, pruned = run.model_identity
    return f"{pretrained}@{revision}" + (f" pruned to checkpoint {pruned}" if pruned else " unpruned")


def metrics(run: ScoredRun) -> list[tuple[str, str, float, float | None]]:
    """``(task, metric, value, stderr)`` of every numeric metric of a run (filter ``none`` dropped)."""
    out = []
    for task, values in sorted(run.results["results"].items()):
        for key, value in sorted(values.items()):
            name, sep, filt = key.partition(",")
            if not sep or "_stderr" in name or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            stderr = values.get(f"{name}_stderr,{filt}")
            label = name if filt == "none" else f"{name} ({filt})"
            out.append((task, label, float(value), stderr if isinstance(stderr, (int, float)) else None))
    return out


def scored_split(config: dict[str, Any]) -> str | None:
    """The split lm-eval scored a task on: its test split when it has one, else its validation split."""
    return config.get("test_split") or config.get("validation_split")
