"""User-facing errors of the plugin.

lm-eval's CLI does not catch exceptions, so a bad ``--model_args`` value would end in a long
traceback. :class:`TailoredError` carries a message meant for the user; importing this module
chains a ``sys.excepthook`` that prints such an error as one line (and leaves every other
exception to the previous hook). Library callers still get a normal exception to catch.
"""

from __future__ import annotations

import sys


class TailoredError(ValueError):
    """A problem with the user's input or environment, explained in one line."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if isinstance(exc, TailoredError):
        print(f"error: --model tailored: {exc}", file=sys.stderr)
        return
    _previous(exc_type, exc, tb)


if not getattr(sys.excepthook, "_tailored", False):
    _excepthook._tailored = True
    sys.excepthook = _excepthook
