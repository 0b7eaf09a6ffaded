"""Task-specific prompt templates, kept in ``prompts/<name>.jinja`` and out of the task YAMLs.

Task YAMLs reference a template through lm-eval's ``!function`` tag, e.g.
``doc_to_text: !function tailored_harness.taskio.templates.boolq``: any attribute of this module that is not
defined below resolves to a function rendering ``prompts/<attribute>.jinja`` with the document's
fields. Rendering is strict: a template naming a field the document lacks raises an error instead of
printing an empty string.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import jinja2

from tailored_harness.core.paths import prompts_dir

SUFFIX = ".jinja"

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def available() -> list[str]:
    """Names of the shipped templates."""
    return sorted(p.name[: -len(SUFFIX)] for p in prompts_dir().glob(f"*{SUFFIX}"))


def template_path(name: str) -> Path:
    path = prompts_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        raise KeyError(f"no prompt template {name!r}; available: {', '.join(available())}")
    return path


@functools.lru_cache(maxsize=None)
def load(name: str) -> jinja2.Template:
    return _ENV.from_string(template_path(name).read_text(encoding="utf-8"))


def render(name: str, doc: dict[str, Any]) -> str:
    """Render template ``name`` for one dataset document."""
    return load(name).render(**doc)


def renderer(name: str) -> Callable[[dict[str, Any]], str]:
    """A ``doc_to_text`` function for template ``name`` (fails now if the template is missing)."""
    template_path(name)

    def doc_to_text(doc: dict[str, Any]) -> str:
        return render(name, doc)

    doc_to_text.__name__ = doc_to_text.__qualname__ = name
    doc_to_text.__module__ = __name__
    return doc_to_text


def __getattr__(name: str) -> Callable[[dict[str, Any]], str]:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return renderer(name)
    except KeyError as err:
        raise AttributeError(str(err)) from None
