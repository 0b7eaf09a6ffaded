"""``manifest.json``: every file of a submission package, and every artifact it scored, by sha256.

A package holds lm-eval's files, the request file and the model card (``files``), and names the
artifacts the run scored (``artifacts``: the pruned checkpoint, each task's adapter, vLLM's merged
folders, or the base model folder of an unpruned run), each with the fingerprint the plugin cached it
under, its path (inside the package with ``--include-weights``, else the cache folder it was scored
from) and the size and sha256 of every file in it. :func:`verify` rechecks all of it and names the
first file that differs.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import sha256_of
from tailored_harness.submit.runs import ScoredRun

MANIFEST = "manifest.json"
FORMAT = "tailored-harness-submission/1"
#: Where ``--include-weights`` copies artifacts inside a package: ``artifacts/<kind>/<fingerprint>``.
ARTIFACTS_DIR = "artifacts"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A folder of weights a run scored. ``kind``: ``pruned``, ``adapter``, ``merged`` or ``base``."""

    kind: str
    fingerprint: str
    folder: Path
    task: str | None = None

    @property
    def packaged_path(self) -> str:
        return f"{ARTIFACTS_DIR}/{self.kind}/{self.fingerprint}"


def artifacts_of(runs: Iterable[ScoredRun]) -> list[Artifact]:
    """The artifacts ``runs`` scored, each once, in the order pruned/base, then per task."""
    found: dict[tuple[str, str], Artifact] = {}
    for run in runs:
        pruning = run.pruning
        if pruning:
            found.setdefault(("pruned", pruning["fingerprint"]),
                             Artifact("pruned", pruning["fingerprint"], Path(pruning["checkpoint"])))
        elif Path(run.tailored["pretrained"]).is_dir():
            folder = Path(run.tailored["pretrained"])
            digest = content_digest(folder)
            found.setdefault(("base", digest), Artifact("base", digest, folder))
        for task, info in sorted(run.adapters.items()):
            found.setdefault(("adapter", info["fingerprint"]),
                             Artifact("adapter", info["fingerprint"], Path(info["folder"]), task))
            if info.get("merged"):
                merged = Path(info["merged"])
                found.setdefault(("merged", merged.name), Artifact("merged", merged.name, merged, task))
    return list(found.values())


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def file_entries(root: Path, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``[{path, size, sha256}]`` of every file under ``root`` (paths relative, POSIX), sorted."""
    if not root.is_dir():
        raise TailoredError(f"{root} is not a folder (was the cache entry removed?)")
    out = []
    for path in _files(root):
        relative = path.relative_to(root).as_posix()
        if relative not in skip:
            out.append({"path": relative, "size": path.stat().st_size, "sha256": sha256_of(path)})
    return out


def content_digest(folder: Path) -> str:
    """A 16-hex name for a folder's content: sha256 over its files' relative paths and sha256s."""
    listing = json.dumps([(e["path"], e["sha256"]) for e in file_entries(folder)])
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def build(package: Path, artifacts: list[Artifact], included: bool) -> dict[str, Any]:
    """The manifest of ``package`` (its files, ``MANIFEST`` itself excepted) and of ``artifacts``,
    found inside it when ``included``, else where the cache holds them."""
    entries = []
    for artifact in artifacts:
        location = package / artifact.packaged_path if included else artifact.folder
        entries.append({"kind": artifact.kind, "fingerprint": artifact.fingerprint, "task": artifact.task,
                        "included": included,
                        "path": artifact.packaged_path if included else str(artifact.folder.resolve()),
                        "files": file_entries(location)})
    artifact_files = {f"{a.packaged_path}/{f['path']}" for a, e in zip(artifacts, entries) for f in e["files"]}
    own = [e for e in file_entries(package, skip=(MANIFEST,)) if e["path"] not in artifact_files]
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"format": FORMAT, "created": created, "files": own, "artifacts": entries}


def _check_file(path: Path, shown: str, entry: dict[str, Any]) -> None:
    if not path.is_file():
        raise TailoredError(f"{shown}: missing (the manifest lists {entry['size']} bytes)")
    size = path.stat().st_size
    if size != entry["size"]:
        raise TailoredError(f"{shown}: {size} bytes, the manifest says {entry['size']}")
    digest = sha256_of(path)
    if digest != entry["sha256"]:
        raise TailoredError(f"{shown}: sha256 {digest}, the manifest says {entry['sha256']}")


def read(package: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((package / MANIFEST).read_text())
    except FileNotFoundError:
        raise TailoredError(f"{package / MANIFEST} not found; is {package} a package from tailored export-submission?") from None
    except ValueError as err:
        raise TailoredError(f"{package / MANIFEST} is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TailoredError(f"{package / MANIFEST} is not a {FORMAT} manifest")
    return manifest


def verify(package: str | os.PathLike) -> int:
    """Recheck every file of a package and of the artifacts it names; returns how many were checked.

    Raises :class:`TailoredError` naming the first file that is missing, of another size or of
    another sha256, or a file in the package that the manifest does not list.
    """
    package = Path(package)
    manifest = read(package)
    listed = {e["path"] for e in manifest["files"]}
    checked = 0
    for entry in manifest["files"]:
        _check_file(package / entry["path"], entry["path"], entry)
        checked += 1
    for artifact in manifest["artifacts"]:
        root = package / artifact["path"] if artifact["included"] else Path(artifact["path"])
        for entry in artifact["files"]:
            shown = f"{artifact['path']}/{entry['path']}"
            _check_file(root / entry["path"], shown, entry)
            listed.add(shown)
            checked += 1
    for path in _files(package):
        relative = path.relative_to(package).as_posix()
        if relative != MANIFEST and relative not in listed:
            raise TailoredError(f"{relative}: in the package but not in its manifest")
    return checked
