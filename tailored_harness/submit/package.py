"""``tailored export-submission``: lm-eval output folders of one model into a submission package.

Layout of a package::

    README.md                 model card (huggingface_hub metadata with model-index, and the recipe)
    manifest.json             sha256 and size of every file below and of every artifact scored
    results/<model>/          lm-eval's results_<timestamp>.json and samples_<task>_<timestamp>.jsonl, unchanged
    requests/<org>/<model>_eval_request_False_<precision>_<weight_type>.json
    artifacts/<kind>/<fingerprint>/   with --include-weights: the pruned checkpoint, adapters, merged folders

The package is built in a temporary sibling folder and renamed into place, so an interrupted export
leaves nothing that looks finished.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import shutil
from pathlib import Path

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import atomic_dir, write_text_atomic
from tailored_harness.submit import card, manifest
from tailored_harness.submit.runs import ScoredRun, check_one_model, read_run

logger = logging.getLogger(__name__)

RESULTS_DIR = "results"
REQUESTS_DIR = "requests"
CARD = "README.md"


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """What the user states about the package; ``None`` fields are found from the runs."""

    model_name: str | None = None
    base_model: str | None = None
    license: str | None = None
    model_type: str | None = None
    include_weights: bool = False
    overwrite: bool = False


def _copy_results(run: ScoredRun, root: Path) -> None:
    """lm-eval's files of ``run``, byte for byte, under ``results/<the folder lm-eval named after the model>/``."""
    name = run.results_file.parent.name if run.results_file.parent != run.folder else run.results.get(
        "model_name_sanitized", "model")
    target = root / RESULTS_DIR / name
    target.mkdir(parents=True, exist_ok=True)
    for source in [run.results_file, *sorted(run.samples.values())]:
        if (target / source.name).exists():
            raise TailoredError(f"two runs hold {source.name}; export them as separate packages")
        shutil.copy2(source, target / source.name)


def _check_artifacts(artifacts: list[manifest.Artifact]) -> None:
    for artifact in artifacts:
        if not artifact.folder.is_dir():
            what = f"{artifact.kind} {artifact.fingerprint}" + (f" of {artifact.task}" if artifact.task else "")
            raise TailoredError(f"{what} was scored from {artifact.folder}, which no longer exists; rerun the "
                                f"lm_eval command (it rebuilds the cache entry) and export again")


def export(folders: list[str | Path], out: str | Path, spec: ExportSpec = ExportSpec()) -> Path:
    """Build the package of the runs in ``folders`` at ``out``; returns ``out``.

    Raises :class:`TailoredError` for a folder without a ``--model tailored`` run, runs of different
    models, an artifact no longer in the cache, or an existing non-empty ``out`` without ``overwrite``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not spec.overwrite:
        raise TailoredError(f"--out {out} exists and is not empty; choose a new folder or pass --overwrite")
    runs = [read_run(folder) for folder in folders]
    check_one_model(runs)
    artifacts = manifest.artifacts_of(runs)
    _check_artifacts(artifacts)
    who = card.identity(runs, spec.model_name, spec.base_model, spec.license, spec.model_type)
    submitted = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with atomic_dir(out) as tmp:
        for run in runs:
            _copy_results(run, tmp)
        entry = card.request_entry(runs, who, artifacts, submitted)
        write_text_atomic(tmp / REQUESTS_DIR / card.request_path(entry), card.dumps(entry))
        if spec.include_weights:
            for artifact in artifacts:
                logger.info("copying %s %s into the package", artifact.kind, artifact.fingerprint)
                shutil.copytree(artifact.folder, tmp / artifact.packaged_path)
        write_text_atomic(tmp / CARD, str(card.model_card(runs, who, artifacts, spec.include_weights)))
        logger.info("hashing the package and %d artifacts", len(artifacts))
        record = manifest.build(tmp, artifacts, spec.include_weights)
        write_text_atomic(tmp / manifest.MANIFEST, json.dumps(record, indent=2) + "\n")
    logger.info("wrote %s: %d files, %d artifacts (%s)", out, len(record["files"]), len(artifacts),
                "included" if spec.include_weights else "in the cache")
    return out
