"""User-facing errors of the plugin.

lm-eval's CLI does not catch exceptions, so a bad ``--model_args`` value would end in a long
traceback. :class:`TailoredError` carries a message meant for the user; :func:`install_excepthook`
chains a ``sys.excepthook`` that prints such an error as one line (and leaves every other exception
to the previous hook). Importing this module changes nothing: the hook is installed by the plugin's
documented start-up hook when lm-eval loads its registry, and by ``TailoredLM`` when lm-eval builds
it (:mod:`tailored_harness.lmeval.startup`). Library callers get a normal exception to catch.
"""

from __future__ import annotations

import sys


class TailoredError(Exception):
    """A problem with the user's input or environment, explained in one line.

    Not a ``ValueError``: other code's ``except ValueError`` (lm-eval's, a library's) must not
    swallow or reword it.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _excepthook(exc_type, exc, tb, previous):
    if isinstance(exc, TailoredError):
        print(f"error: --model tailored: {exc}", file=sys.stderr)
        return
    previous(exc_type, exc, tb)


def install_excepthook() -> None:
    """Print an uncaught :class:`TailoredError` as one line (``error: --model tailored: ...``);
    idempotent, and every other exception goes to the hook that was there before."""
    if getattr(sys.excepthook, "_tailored", False):
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        _excepthook(exc_type, exc, tb, previous)

    hook._tailored = True
    sys.excepthook = hook
