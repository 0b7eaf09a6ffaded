"""The cache as something several processes share: one builder per entry, and a view of what is there.

Every cache entry of :data:`KINDS` (a pruned checkpoint, an adapter, a merged or converted model, a
matcher, a template choice, ...) is named by a fingerprint (:mod:`tailored_harness.core.artifacts`);
a folder entry is written to a temporary sibling and renamed, and sealed with the sizes and sha256s
of its files (:func:`tailored_harness.core.paths.atomic_dir`). :func:`building` adds the
rule that only one process builds an entry: two ``lm_eval`` runs side by side, the ranks of a
data-parallel run or CI jobs on one machine each ask for the entry; the first takes its lock
(``locks/<hash of its path>.lock`` in the cache, a ``filelock`` OS lock that the kernel releases when its holder dies,
so a killed builder never blocks the next one), the others wait and then reuse what it wrote.

:func:`entries`, :func:`verify` and :func:`remove` are ``tailored cache ls|verify|rm``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import CHECKSUMS, cache_dir, damage, read_json, unwritable

logger = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of cache entry: the cache folder that holds them, what one is (for messages), and the
    record that describes an entry (``None``: none). ``pattern`` makes the entries files matching it
    rather than folders."""

    label: str
    record: str | None = None
    pattern: str | None = None


#: Every kind of entry the plugin writes under the cache root, by folder (``tailored cache ls|verify|rm``).
KINDS: dict[str, Kind] = {
    "pruned": Kind("pruned checkpoint", "pruning.json"),
    "adapters": Kind("adapter", "adaptation.json"),
    "merged": Kind("merged model", "merged.json"),
    "dequantized": Kind("dequantized 4-bit model", "dequantized.json"),
    "gguf": Kind("converted GGUF model", "gguf.json"),
    "matchers": Kind("prompt matcher", "matcher.json"),
    "prompt-choices": Kind("template choice", pattern="*.json"),
    "reference": Kind("reference model", "tailored_tiny.json"),
    "worlds": Kind("synthetic world", "world.json"),
    "real-models": Kind("real model file"),
    "wheels": Kind("downloaded wheel", pattern="*.whl"),
    "file-hashes": Kind("file hash memo", pattern="*"),
}


LOCKS = "locks"
#: How often a follower rank looks for the entry rank 0 is building (its lock may be free between builds).
FOLLOWER_POLL_SECONDS = 1.0


def lock_path(folder: Path) -> Path:
    """The lock file of entry ``folder``: in the cache's ``locks/``, named by the folder's absolute path,
    so that entries (and folders given with ``--out``) hold nothing but their content."""
    name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:24]
    return cache_dir() / LOCKS / f"{name}.lock"


@contextlib.contextmanager
def entry_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the build lock of cache entry ``folder``, waiting (with a log line) while another process has it."""
    from filelock import FileLock, Timeout

    folder, path = Path(folder), lock_path(Path(folder))
    lock = FileLock(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:  # a TimeoutError, so an OSError: caught first
        logger.info("another process is building the %s %s; waiting for it", what, folder)
        started = time.monotonic()
        lock.acquire()
        logger.info("waited %.1f s for the %s %s", time.monotonic() - started, what, folder)
    except OSError as err:
        raise unwritable(path.parent, err) from err
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def building(folder: str | os.PathLike, is_done: Callable[[], bool], what: str) -> Iterator[bool]:
    """Yield ``True`` when the entry is finished (reuse it), else ``False`` with its lock held (build it).

    The check runs again once the lock is held, so a process that waited for another's build reuses
    it instead of building the same entry a second time.
    """
    if is_done():
        yield True
        return
    if _follower_rank():
        _wait_for_rank_zero(folder, is_done, what)
        yield True
        return
    with entry_lock(folder, what):
        if is_done():
            logger.info("reusing the %s another process built: %s", what, folder)
            yield True
        else:
            _clear_leftovers(Path(folder))
            yield False


def _follower_rank() -> bool:
    """True in a process group (``torch.distributed`` initialized) on a rank other than 0: transformers
    writes checkpoints from rank 0 only, so the other ranks must never be the builder."""
    dist = sys.modules.get("torch.distributed")  # loaded by whoever started a group; core never imports torch
    return bool(dist is not None and dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def _wait_for_rank_zero(folder: str | os.PathLike, is_done: Callable[[], bool], what: str) -> None:
    logger.info("waiting for rank 0 to build the %s %s", what, folder)
    while True:
        with entry_lock(folder, what):  # rank 0 holds it while it builds
            if is_done():
                logger.info("reusing the %s another process built: %s", what, folder)
                return
        time.sleep(FOLLOWER_POLL_SECONDS)


def _clear_leftovers(folder: Path) -> None:
    """Remove the temporary folders of builds of ``folder`` that died before renaming (a killed process
    cannot clean up); holding the entry's lock, no live builder owns one."""
    for leftover in folder.parent.glob(f".{folder.name}.*"):
        if leftover.is_dir():
            logger.info("removing %s, left by an interrupted build", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str
    folder: Path
    size: int
    last_used: float
    sealed: bool
    describe: str


def _describe(kind: str, record: dict) -> str:
    if kind == "adapters":
        return f"{record.get('task')}: {len(record.get('documents', []))} shots of {record.get('split')}, " \
               f"{record.get('method', 'sft')}"
    if kind == "pruned":
        spec = record.get("spec", {})
        unit = spec.get("attention_unit", "kv_group")  # absent: pruned before the field existed (kv_group)
        extra = "".join(f", {spec[key]} {key.replace('_', ' ')}" for key in ("ranking", "group_reduction") if key in spec)
        return f"ratio {spec.get('ratio')} {spec.get('importance')}, layers {spec.get('layers')}, {unit} units{extra}"
    if kind == "merged":
        return f"{record.get('task')}: adapter {Path(str(record.get('adapter'))).name} merged"
    if kind == "dequantized":
        quant = record.get("quant", {})
        return f"{Path(str(record.get('base'))).name} as {quant.get('scheme')}, {record.get('layers')} layers"
    if kind == "gguf":
        return f"from {Path(str(record.get('source'))).name}"
    if kind == "prompt-choices":
        return f"{record.get('task')}: chose {record.get('chosen')} of {len(record.get('templates', []))} templates"
    return ", ".join(f"{k}={v}" for k, v in list(record.items())[:3] if isinstance(v, (str, int, float)))


def _entry(kind: str, path: Path) -> Entry:
    """The entry at ``path`` (a folder, or a file for kinds with a ``pattern``)."""
    spec = KINDS[kind]
    if path.is_file():
        size, sealed = path.stat().st_size, False
        record = read_json(path) if path.suffix == ".json" else {}
        describe = _describe(kind, record) if isinstance(record, dict) and record else spec.label
    else:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        sealed = (path / CHECKSUMS).is_file()
        if spec.record is None:
            describe = ", ".join(sorted(p.name for p in path.iterdir())) or "(empty)"
        else:
            record = read_json(path / spec.record)
            describe = _describe(kind, record) if isinstance(record, dict) else "(no record: unfinished?)"
    return Entry(kind, path, size, path.stat().st_mtime, sealed, describe)


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of every kind under the cache root, oldest use first (temporary ``.name.*`` folders
    of builds in progress are not entries)."""
    root = root or cache_dir()
    found = []
    for kind, spec in KINDS.items():
        base = root / kind
        if not base.is_dir():
            continue
        paths = base.glob(spec.pattern) if spec.pattern else base.iterdir()
        for path in sorted(p for p in paths if not p.name.startswith(".")
                           and (p.is_file() if spec.pattern else p.is_dir())):
            found.append(_entry(kind, path))
    return sorted(found, key=lambda e: e.last_used)


def verify(selected: list[Entry]) -> list[tuple[Entry, str]]:
    """``(entry, problem)`` for every selected entry whose files differ from its checksums (every byte read)."""
    problems = []
    for entry in selected:
        problem = damage(entry.folder, deep=True)
        if problem:
            problems.append((entry, problem))
    return problems


def select(all_entries: list[Entry], names: list[str], kind: str | None, older_than_days: float | None) -> list[Entry]:
    """Entries named (folder name, or a unique prefix of it), of a kind, or unused for some days."""
    if kind is not None and kind not in KINDS:
        raise TailoredError(f"--kind {kind!r} is not a cache kind; valid: {', '.join(KINDS)}")
    chosen = [e for e in all_entries if kind is None or e.kind == kind]
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * 86400
        chosen = [e for e in chosen if e.last_used < cutoff]
    if names:
        picked = []
        for name in names:
            matches = [e for e in chosen if e.folder.name.startswith(name)]
            if len(matches) != 1:
                raise TailoredError(f"{name!r} names {len(matches)} cache entries; give a unique prefix of one of: "
                                    f"{', '.join(e.folder.name for e in chosen) or '(none)'}")
            picked += matches
        chosen = picked
    return chosen


def remove(selected: list[Entry]) -> int:
    """Delete the selected entries, each under its build lock (never one being written); returns bytes freed."""
    freed = 0
    for entry in selected:
        with entry_lock(entry.folder, KINDS[entry.kind].label):
            if entry.folder.is_dir():
                shutil.rmtree(entry.folder)
            elif entry.folder.exists():
                entry.folder.unlink()
            else:
                continue
            freed += entry.size
    return freed
