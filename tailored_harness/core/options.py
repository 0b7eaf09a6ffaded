"""Options declared once: a spec field with its ``model_args`` key, its check, its help and its CLI flag.

Every user-facing setting is one field of a stage's frozen spec, written with :func:`option`::

    ratio: float = option(0.0, "prune_ratio", Number(0, 1, high_open=True, note=" (0: no pruning)"),
                          "fraction of attention units and MLP channels removed per selected layer")

Everything else is derived from those declarations, so adding a setting touches one line:
``ModelSpec`` (the ``model_args`` of ``--model tailored``) is assembled from the stages' declarations
(:func:`model_fields`), a spec is built from ``model_args``-style keys by :func:`from_args`, checked
by :func:`check_fields`, the ``tailored`` commands get their flags from :func:`add_cli_options`, and
the ``model_args`` table of ``docs/options.md`` is :func:`markdown_table` (``tailored options``; a test
fails when that copy differs).

A check is a callable ``check(key, value)`` that raises :class:`TailoredError` naming the key, the bad
value and what is valid; :class:`Integer`, :class:`Number`, :class:`Choice`, :class:`Boolean` and
:class:`Text` cover the settings there are, so each message is written once. Pure: no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Callable, Iterable, Mapping

from tailored_harness.core.errors import TailoredError

#: key of a field's metadata that holds its :class:`Option`
METADATA_KEY = "tailored_option"


@dataclasses.dataclass(frozen=True)
class Option:
    """What the user sees of one spec field.

    Attributes:
        key: the ``model_args`` key (also the CLI flag's destination).
        check: validates a given value (see the module docstring); ``None``: the spec checks it.
        help: one sentence for the options table and the CLI's ``--help``.
        cli: the CLI flag when it is not ``--`` + ``key`` with dashes (``--ratio`` for ``prune_ratio``).
        given_only: ``ModelSpec`` holds ``None`` until the user gives a value, and ``None`` means the
            stage's default (settings that need another setting, such as TELL's under ``adapt_method=tell``).
        word_none: ``none`` is a value of this setting, not "nothing" (lm-eval's ``model_args`` parser
            reads the word ``none`` as ``None``; it is turned back into ``"none"``).
        shown: the default as the options table shows it, when the value alone says too little.
    """

    key: str
    check: Callable[[str, Any], None] | None
    help: str
    cli: str | None = None
    given_only: bool = False
    word_none: bool = False
    shown: str | None = None

    @property
    def flag(self) -> str:
        return self.cli or "--" + self.key.replace("_", "-")


def option(default: Any, key: str, check: Callable[[str, Any], None] | None, help: str, **extra: Any):
    """A dataclass field declaring an :class:`Option`; ``default`` may be ``dataclasses.MISSING`` (required)."""
    return _field(default, Option(key, check, help, **extra))


def _field(default: Any, declared_option: Option):
    meta = {METADATA_KEY: declared_option}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Declared:
    """One declared field: its name in the spec, its :class:`Option`, default and annotation."""

    name: str
    option: Option
    default: Any
    annotation: Any

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def declared(cls) -> tuple[Declared, ...]:
    """The declared options of the dataclass ``cls``, in field order (undeclared fields are internal)."""
    return tuple(Declared(f.name, f.metadata[METADATA_KEY], f.default, f.type)
                 for f in dataclasses.fields(cls) if METADATA_KEY in f.metadata)


def keys_of(cls) -> tuple[str, ...]:
    """The ``model_args`` keys ``cls`` declares."""
    return tuple(d.option.key for d in declared(cls))


def from_args(cls, values: Mapping[str, Any], **fixed: Any):
    """``cls`` built from ``model_args``-style keys: missing keys, and ``None`` for ``given_only``
    options, take the spec's defaults; ``fixed`` adds fields that are not options."""
    fields = {}
    for d in declared(cls):
        if d.option.key not in values:
            continue
        value = values[d.option.key]
        if value is None and d.option.given_only:
            continue
        fields[d.name] = value
    return cls(**fields, **fixed)


def given(cls, values: Mapping[str, Any]) -> list[str]:
    """The keys of ``cls``'s ``given_only`` options that ``values`` sets (not ``None``)."""
    return [d.option.key for d in declared(cls) if d.option.given_only and values.get(d.option.key) is not None]


def check_fields(spec) -> None:
    """Run every declared check on ``spec``'s values (``None`` passes where it is the default)."""
    for d in declared(type(spec)):
        value = getattr(spec, d.name)
        if d.option.check is None or (value is None and d.default is None):
            continue
        d.option.check(d.option.key, value)


def model_fields(classes: Iterable[type]) -> list[tuple[str, Any, dataclasses.Field]]:
    """``(key, annotation, field)`` for ``dataclasses.make_dataclass``: one flat field per option of
    ``classes``, named by its key, holding the stage's default (``None`` for ``given_only`` ones)."""
    out, seen = [], set()
    for cls in classes:
        for d in declared(cls):
            if d.option.key in seen:
                raise TypeError(f"model_args key {d.option.key!r} is declared twice (again in {cls.__name__})")
            seen.add(d.option.key)
            out.append((d.option.key, d.annotation, _field(None if d.option.given_only else d.default, d.option)))
    return out


# --------------------------------------------------------------------------- the front ends


def add_cli_options(parser: argparse.ArgumentParser, cls, required: Iterable[str] = ()) -> None:
    """One flag per option of ``cls`` (type from its check, default from the spec, ``--help`` from its
    help); values are validated by the spec when it is built, so argparse refuses only unparsable ones."""
    required = set(required)
    for d in declared(cls):
        shown = d.option.shown or _shown(d.default)
        parser.add_argument(d.option.flag, dest=d.option.key, type=getattr(d.option.check, "parse", str),
                            required=d.option.key in required,
                            default=None if d.option.given_only or d.required else d.default,
                            help=f"{d.option.help} (default: {shown})".replace("%", "%%"))


def markdown_table(classes: Iterable[type]) -> str:
    """The ``model_args`` reference: one row per option of ``classes`` (key, default, help)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for cls in classes:
        for d in declared(cls):
            shown = "required" if d.required else (d.option.shown or f"`{_shown(d.default)}`")
            rows.append(f"| `{d.option.key}` | {shown} | {d.option.help} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


# --------------------------------------------------------------------------- checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Integer:
    """An integer of at least ``low`` (``None``: any); ``note`` ends the message (e.g. " (0: no adaptation)")."""

    low: int | None = None
    high: int | None = None
    note: str = ""
    parse = staticmethod(int)

    def __call__(self, key: str, value: Any) -> None:
        if _is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high):
            return
        raise TailoredError(f"{key}={value!r} must be {self.describe()}{self.note}")

    def describe(self) -> str:
        if self.high is not None:
            return f"an integer from {self.low} to {self.high}"
        return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            self.low, f"an integer of at least {self.low}")


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite number between ``low`` and ``high`` (``None``: unbounded), either end open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""
    parse = staticmethod(float)

    def __call__(self, key: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            raise TailoredError(f"{key}={value!r} must be {self.describe()}{self.note}")

    def describe(self) -> str:
        if self.high is None:
            return "a positive number" if self.low_open else "a non-negative number"
        return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values`` (a tuple, or a function returning one, for tables whose module imports torch);
    the message calls a bad value "not a ``noun``" and lists the valid ones."""

    values: tuple[str, ...] | Callable[[], Iterable[str]]
    noun: str

    def __call__(self, key: str, value: Any) -> None:
        valid = tuple(self.values() if callable(self.values) else self.values)
        if value not in valid:
            raise TailoredError(f"{key}={value!r} is not a {self.noun}; valid: {', '.join(valid)}")


@dataclasses.dataclass(frozen=True)
class Boolean:
    """``True`` or ``False`` (the CLI also reads ``1``/``0``, any case)."""

    def __call__(self, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise TailoredError(f"{key}={value!r} must be True or False")

    @staticmethod
    def parse(text: str) -> bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; valid: True, False")
        return lowered in ("true", "1")


@dataclasses.dataclass(frozen=True)
class Text:
    """A non-empty string that ``accept`` (if given) takes; the message says it ``must`` + ``what``
    (``what`` starts with its verb: "be a .yaml pool file", "name a model folder or hub id")."""

    what: str
    accept: Callable[[str], bool] | None = None

    def __call__(self, key: str, value: Any) -> None:
        if isinstance(value, str) and value.strip() and (self.accept is None or self.accept(value)):
            return
        raise TailoredError(f"{key}={value!r} must {self.what}")
