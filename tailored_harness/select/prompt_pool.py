"""A task's prompt pool for per-input selection: the user's instructions plus demonstrations.

A pool file is YAML (``prompts/<benchmark>.pool.yaml``, or the user's own with ``prompt_pool=``)::

    tasks: [boolq_tailored, boolq_gen_tailored]   # tasks served when no prompt_pool= is given
    separator: "\\n\\n"                            # joins the chosen entries and the context
    instructions:                                 # short texts that can precede a context
      - "The answer is always one word: yes or no."

At run time the first ``prompt_demos`` shots of the task's adapter join the pool as
demonstrations, each written as the task scores it (context, then the gold answer), and remember
the training document they came from, so that a training document is never shown itself. Light
module: no torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import yaml

from tailored_harness.core import artifacts
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import prompts_dir

POOL_SUFFIX = ".pool.yaml"
DEFAULT_SEPARATOR = "\n\n"
KEYS = ("tasks", "separator", "instructions")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One pool entry. ``source``: the training-split index of a demonstration's document, else None."""

    kind: str
    text: str
    source: int | None = None


@dataclasses.dataclass(frozen=True)
class Pool:
    """The entries a selector chooses among for one task, in a fixed order (instructions first)."""

    task: str
    entries: tuple[Entry, ...]
    separator: str = DEFAULT_SEPARATOR
    file: str | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> list[str]:
        """Stable names of the entries: ``instruction:3``, ``demo:1234`` (training-split index)."""
        out, instructions = [], 0
        for entry in self.entries:
            if entry.kind == "demo":
                out.append(f"demo:{entry.source}")
            else:
                out.append(f"instruction:{instructions}")
                instructions += 1
        return out

    def excluded(self, source: int | None) -> list[int]:
        """Entries a document may not be shown: the demonstration made from itself (training docs)."""
        return [i for i, entry in enumerate(self.entries) if source is not None and entry.source == source]

    def context(self, picks: Sequence[int], context: str) -> str:
        """``context`` preceded by the picked entries, in pick order, each followed by the separator."""
        return "".join(self.entries[i].text + self.separator for i in picks) + context

    def digest(self) -> str:
        return artifacts.digest([self.separator, [dataclasses.astuple(e) for e in self.entries]])


def read_pool_file(path: str | Path) -> dict[str, Any]:
    """The validated content of a pool file: ``tasks`` (list, may be empty), ``separator``, ``instructions``."""
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TailoredError(f"prompt_pool={str(path)!r} cannot be read: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise TailoredError(f"prompt_pool={str(path)!r} is not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise TailoredError(f"prompt_pool={str(path)!r} must be a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise TailoredError(f"prompt_pool={str(path)!r} has unknown key(s) {', '.join(unknown)}; valid: {', '.join(KEYS)}")
    instructions = data.get("instructions") or []
    if not isinstance(instructions, list) or not all(isinstance(t, str) and t.strip() for t in instructions):
        raise TailoredError(f"prompt_pool={str(path)!r}: instructions must be a list of non-empty strings")
    separator = data.get("separator", DEFAULT_SEPARATOR)
    tasks = data.get("tasks") or []
    if not isinstance(separator, str) or not isinstance(tasks, list):
        raise TailoredError(f"prompt_pool={str(path)!r}: separator must be a string and tasks a list of task names")
    return {"tasks": [str(t) for t in tasks], "separator": separator, "instructions": instructions, "file": str(path)}


def find_pool_file(name: str, override: str | None) -> Path | None:
    """The pool file of task ``name``: ``override`` when given, else the shipped file listing the task."""
    if override is not None:
        return Path(override).expanduser()
    for path in sorted(prompts_dir().glob(f"*{POOL_SUFFIX}")):
        if name in read_pool_file(path)["tasks"]:
            return path
    return None


def build_pool(name: str, content: dict[str, Any] | None, demos: Sequence[tuple[int, tuple[str, str]]]) -> Pool:
    """Task ``name``'s pool: the file's instructions (none without a file), then ``demos``
    (``(training-split index, (context, continuation))``) written as context plus answer."""
    content = content or {"separator": DEFAULT_SEPARATOR, "instructions": [], "file": None}
    entries = [Entry("instruction", text) for text in content["instructions"]]
    entries += [Entry("demo", context + continuation, index) for index, (context, continuation) in demos]
    if not entries:
        raise TailoredError(f"task {name!r} has an empty prompt pool: no instructions and prompt_demos=0")
    return Pool(name, tuple(entries), content["separator"], content["file"])
