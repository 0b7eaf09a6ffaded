"""Where the plugin's data folders live, in an installed wheel or in a source checkout.

The wheel ships the repository's top-level ``tasks/`` and ``prompts/`` as
``tailored_harness/tasks`` and ``tailored_harness/prompts`` (see ``pyproject.toml``), so an installed
plugin never depends on the checkout it was built from. Running from an uninstalled checkout (for
example with ``PYTHONPATH=.``) falls back to the top-level folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

logger = logging.getLogger(__name__)

CACHE_ENV = "TAILORED_HARNESS_CACHE"


def package_dir() -> Path:
    """The ``tailored_harness`` package folder (this module lives in its ``core/``)."""
    return Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    for candidate in (package_dir() / name, package_dir().parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"tailored-harness data folder '{name}' is missing: looked in {package_dir() / name} "
        f"and {package_dir().parent / name}; reinstall the package"
    )


def tasks_dir() -> Path:
    """Folder of the plugin's lm-eval task YAMLs (``boolq_tailored``, ...)."""
    return _data_dir("tasks")


def prompts_dir() -> Path:
    """Folder of the task-specific prompt templates (``<name>.jinja``)."""
    return _data_dir("prompts")


def cache_dir() -> Path:
    """Root of the plugin's content-addressed cache (``$TAILORED_HARNESS_CACHE`` or ~/.cache)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tailored-harness"


@contextlib.contextmanager
def atomic_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder`` to fill; on success it replaces ``folder`` in one rename.

    An exception (or Ctrl-C) inside the block removes the temporary folder and leaves ``folder`` as it
    was, so an interrupted build never leaves anything that looks finished.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary sibling of ``path`` and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_finished(folder: str | os.PathLike, report_file: str, key: str, required: tuple[str, ...], what: str) -> bool:
    """True when cache entry ``folder`` was finished for fingerprint ``key``.

    Finished means: ``report_file`` is readable JSON naming ``key`` as its ``fingerprint``, and
    every glob in ``required`` matches a file. Anything else (an interrupted or foreign entry) is
    logged as ignored and will be rebuilt by the caller.
    """
    folder = Path(folder)
    report = read_json(folder / report_file)
    if not isinstance(report, dict) or report.get("fingerprint") != key:
        if folder.exists():
            logger.warning("ignoring incomplete or foreign %s at %s (it will be rebuilt)", what, folder)
        return False
    return all(any(folder.glob(pattern)) for pattern in required)


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime): a 13 GB model is hashed once."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    memo = cache_dir() / "file-hashes" / key
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    write_text_atomic(memo, value)
    return value
