"""``tailored cache ls|verify|rm``: see the cache, recheck it byte for byte, and prune it.

    tailored cache ls [--kind K]                        entries, sizes, what each is, last use
    tailored cache verify [NAME ...] [--kind K]          rehash; exit 1 naming every damaged file
    tailored cache rm NAME ... | --kind K | --older-than DAYS   delete entries (never one being built)
"""

from __future__ import annotations

import argparse
import datetime
import sys

from tailored_harness.core.errors import TailoredError


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _chosen(args: argparse.Namespace):
    from tailored_harness.core import cache

    return cache.select(cache.entries(), getattr(args, "names", []) or [], args.kind,
                        getattr(args, "older_than", None))


def _ls(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from tailored_harness.core.paths import cache_dir

    chosen = _chosen(args)
    rows = [[e.kind, e.folder.name, _size(e.size),
             datetime.datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M"),
             "yes" if e.sealed else "no", e.describe] for e in chosen]
    print(f"{cache_dir()}: {len(chosen)} entries, {_size(sum(e.size for e in chosen))}")
    if rows:
        print(tabulate(rows, headers=["kind", "entry", "size", "last used", "checksums", "what"], tablefmt="github"))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from tailored_harness.core import cache

    chosen = _chosen(args)
    problems = cache.verify(chosen)
    for entry, problem in problems:
        print(f"tailored cache verify: DAMAGED {entry.kind} {entry.folder.name}: {problem} "
              f"(the next run rebuilds it; or: tailored cache rm {entry.folder.name})", file=sys.stderr)
    unsealed = sum(not e.sealed for e in chosen)
    print(f"{len(chosen) - len(problems)} of {len(chosen)} entries intact"
          + (f" ({unsealed} written before checksums were recorded: sizes and hashes not known)" if unsealed else ""))
    return 1 if problems else 0


def _rm(args: argparse.Namespace) -> int:
    from tailored_harness.core import cache

    if not (args.names or args.kind or args.older_than is not None):
        raise TailoredError("name the entries to remove (a unique prefix each), or give --kind or --older-than DAYS")
    chosen = _chosen(args)
    freed = cache.remove(chosen)
    for entry in chosen:
        print(f"removed {entry.kind} {entry.folder}")
    print(f"{len(chosen)} entries removed, {_size(freed)} freed")
    return 0


def add_parser(sub) -> None:
    """Register ``tailored cache`` on the ``tailored`` command's subparsers."""
    from tailored_harness.core.cache import KINDS

    p = sub.add_parser("cache", help="list, verify or remove cache entries (pruned checkpoints, adapters, ...)")
    actions = p.add_subparsers(dest="action", required=True)
    for name, func, help_text in (("ls", _ls, "list entries: kind, size, last use, what each is"),
                                  ("verify", _verify, "rehash entries; exit 1 naming every damaged file"),
                                  ("rm", _rm, "remove entries (under their build lock)")):
        q = actions.add_parser(name, help=help_text)
        q.add_argument("--kind", choices=list(KINDS), help="only entries of this kind")
        if name != "ls":
            q.add_argument("names", nargs="*", metavar="ENTRY", help="entry folder names (or unique prefixes)")
        if name == "rm":
            q.add_argument("--older-than", type=float, metavar="DAYS", help="entries not used for this many days")
        q.set_defaults(func=func)
