"""Where the plugin's data folders live, in an installed wheel or in a source checkout.

The wheel ships the repository's top-level ``tasks/`` and ``prompts/`` as
``tailored_harness/tasks`` and ``tailored_harness/prompts`` (see ``pyproject.toml``), so an installed
plugin never depends on the checkout it was built from. Running from an uninstalled checkout (for
example with ``PYTHONPATH=.``) falls back to the top-level folders.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from tailored_harness.core.errors import TailoredError

logger = logging.getLogger(__name__)

CACHE_ENV = "TAILORED_HARNESS_CACHE"
VERIFY_ENV = "TAILORED_HARNESS_VERIFY"
#: The file a sealed cache entry lists its other files in, with their sizes and sha256s.
CHECKSUMS = "checksums.json"
#: Write errors that mean "this folder cannot take the entry" (rather than a bug): one line, not a traceback.
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


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
def atomic_dir(folder: str | os.PathLike, seal: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder`` to fill; on success it replaces ``folder`` in one rename.

    An exception (or Ctrl-C) inside the block removes the temporary folder and leaves ``folder`` as it
    was, so an interrupted build never leaves anything that looks finished. ``seal``: record the size
    and sha256 of every file (:data:`CHECKSUMS`) before the rename, so readers can tell a damaged
    entry from a finished one (:func:`damage`).
    """
    folder = Path(folder)
    tmp = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        yield tmp
        if seal:
            write_checksums(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as err:
        raise unwritable(folder, err) from err
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def unwritable(folder: Path, err: OSError) -> Exception:
    """The one-line error for a write that failed because ``folder`` cannot take it (full, read-only,
    not permitted); any other ``OSError`` is returned as it is, a bug to see in full."""
    if err.errno not in UNWRITABLE:
        return err
    return TailoredError(f"cannot write {folder}: {err.strerror} ({errno.errorcode[err.errno]}); nothing was "
                         f"kept. Free space there, or set {CACHE_ENV} to a writable folder with room")


def sha256_of(path: Path) -> str:
    """sha256 of a file, read in 16 MiB chunks (never memoised: checks must read the bytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path) -> dict[str, dict[str, Any]]:
    """Write ``folder/CHECKSUMS``: ``{relative path: {size, sha256}}`` of every other file in it."""
    record = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_of(p)}
              for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CHECKSUMS}
    (folder / CHECKSUMS).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def damage(folder: str | os.PathLike, deep: bool = False) -> str | None:
    """The first problem of a sealed cache entry, or ``None``: a file its :data:`CHECKSUMS` lists that is
    missing or of another size, or (``deep``: read every byte) of another sha256. Entries written
    before sealing existed have no record and pass."""
    folder = Path(folder)
    record = read_json(folder / CHECKSUMS)
    if record is None:
        return f"{folder / CHECKSUMS} unreadable" if (folder / CHECKSUMS).exists() else None
    for name, entry in record.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != entry["size"]:
            return f"{path} has {path.stat().st_size} bytes, {entry['size']} when written"
        if deep and sha256_of(path) != entry["sha256"]:
            return f"{path} has another sha256 than when written"
    return None


def deep_checks() -> bool:
    """Whether cache readers hash every file of an entry they reuse (``TAILORED_HARNESS_VERIFY=1``);
    sizes are always checked."""
    return os.environ.get(VERIFY_ENV, "").lower() in ("1", "true", "yes")


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` has, or a new file's under the process umask (``mkstemp`` gives 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary sibling of ``path`` and rename it over ``path``, with the mode
    ``path`` had (a new file: what ``open`` would give it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
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
    """True when cache entry ``folder`` was finished for fingerprint ``key`` and is intact.

    Finished means: ``report_file`` is readable JSON naming ``key`` as its ``fingerprint``, and
    every glob in ``required`` matches a file. Intact: :func:`damage` finds nothing (sizes always,
    hashes under :func:`deep_checks`). Anything else (an interrupted, foreign or damaged entry) is
    logged and will be rebuilt by the caller. A reused entry's folder time is set to now: the last
    use ``tailored cache ls`` shows.
    """
    folder = Path(folder)
    report = read_json(folder / report_file)
    if not isinstance(report, dict) or report.get("fingerprint") != key:
        if folder.exists():
            logger.warning("ignoring incomplete or foreign %s at %s (it will be rebuilt)", what, folder)
        return False
    if not all(any(folder.glob(pattern)) for pattern in required):
        return False
    problem = damage(folder, deep=deep_checks())
    if problem:
        logger.warning("damaged %s: %s; it will be rebuilt, not scored", what, problem)
        return False
    with contextlib.suppress(OSError):
        os.utime(folder)
    return True


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime): a 13 GB model is hashed once."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    memo = cache_dir() / "file-hashes" / key
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    value = sha256_of(path)
    try:
        write_text_atomic(memo, value)
    except OSError as err:  # only a shortcut for next time: an unwritable cache is reported where it matters
        logger.debug("could not memoise the sha256 of %s: %s", path, err)
    return value
