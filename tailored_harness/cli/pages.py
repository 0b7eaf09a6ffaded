"""Generated parts of Markdown pages, kept current: ``--write`` sets them, ``--check`` fails when they differ."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from tailored_harness.core.errors import TailoredError


def write_or_check(path: str, make: Callable[[str], str], what: str, write: bool, command: str) -> int:
    """Read the page at ``path``; ``make(text)`` is the page with its generated part current. With
    ``write``, save that (atomically, only if it changed) and return 0; else return 1, saying so on
    stderr with the ``command`` that rewrites it, when the page differs. ``what`` names the part."""
    from tailored_harness.core.paths import write_text_atomic

    try:
        text = Path(path).read_text()
    except FileNotFoundError as err:
        raise TailoredError(f"{path} does not exist") from err
    wanted = make(text)
    if write:
        if wanted != text:
            write_text_atomic(path, wanted)
        print(f"{path}: {what} {'rewritten' if wanted != text else 'already current'}")
        return 0
    if wanted != text:
        print(f"{path}: the {what} differs from what it is made from; run `{command} --write {path}`", file=sys.stderr)
        return 1
    return 0
