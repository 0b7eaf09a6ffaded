"""TELL's anchor: a fixed text before every task example in training and every request at scoring.

Where it goes: at the very head of the context, before the task's description and prompt, joined
by :data:`SEPARATOR`. Why there: the anchor is what tells task data from the general data it is
trained among, so the adapter learns "after this marker comes the task's format"; scoring the same
marker before every evaluated request puts the model in exactly the format it was trained on.

Anchors live in ``prompts/anchors.yaml`` (entries with ``tasks`` and ``anchor``); ``tell_anchor=``
names another file of that format, ``none``, or the text itself. Light module: no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import prompts_dir
from tailored_harness.taskio.task_format import rewrite_plain_contexts

ANCHOR_FILE = "anchors.yaml"
SEPARATOR = "\n\n"
YAML_SUFFIXES = (".yaml", ".yml")


def read_anchor_file(path: str | Path) -> dict[str, str]:
    """``{task: anchor}`` from an anchors file; one line naming the file and the fault otherwise."""
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise TailoredError(f"anchor file {path} cannot be read: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict) or not data:
        raise TailoredError(f"anchor file {path} must map entry names to {{tasks: [...], anchor: text}}")
    anchors: dict[str, str] = {}
    for entry, body in data.items():
        if not isinstance(body, dict) or set(body) != {"tasks", "anchor"} or not isinstance(body["anchor"], str) \
                or not body["anchor"].strip() or not isinstance(body["tasks"], list):
            raise TailoredError(f"anchor file {path}: entry {entry!r} must have exactly the keys tasks (a list) "
                                f"and anchor (non-empty text)")
        for task in body["tasks"]:
            anchors[str(task)] = body["anchor"].strip()
    return anchors


def anchor_for(name: str, setting: str) -> str:
    """The anchor of task ``name`` under ``tell_anchor=setting``; ``""`` for ``none``."""
    if setting == "none":
        return ""
    if setting == "default" or setting.endswith(YAML_SUFFIXES):
        path = prompts_dir() / ANCHOR_FILE if setting == "default" else Path(setting)
        anchors = read_anchor_file(path)
        if name not in anchors:
            raise TailoredError(f"task {name!r} has no anchor in {path} (tasks with one: {', '.join(sorted(anchors))}); "
                                f"give tell_anchor=<text or .yaml file>")
        return anchors[name]
    return setting


def anchored(anchor: str, context: str) -> str:
    """``context`` with ``anchor`` at its head (unchanged when there is no anchor)."""
    return f"{anchor}{SEPARATOR}{context}" if anchor else context


def apply(requests: Sequence[Any], anchors: Mapping[str, tuple[str, Any]]) -> None:
    """Put each request's task anchor before its context, in place. ``anchors``: ``{task: (anchor, task
    object)}``. A context that is not the task's plain zero-shot one (chat template, system
    instruction, few-shot examples) is refused: the adapter was trained on the anchored plain one."""
    rewrite_plain_contexts(requests, {task: entry for task, entry in anchors.items() if entry[0]},
                           mark="_tailored_anchored", action="adapt_method=tell cannot anchor",
                           instead="adapt_method=sft", task_of=lambda entry: entry[1],
                           new_context=lambda entry, request, context: anchored(entry[0], context))
