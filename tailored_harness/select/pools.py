"""The template pools: which tasks are the same benchmark in another template.

A pool is a group YAML ``tasks/pools/<benchmark>/<benchmark>_tailored_pool.yaml`` whose first
member is the benchmark's default task (``boolq_tailored``) and whose other members
(``boolq_tailored_t2`` ...) include it and change only ``doc_to_text``. The groups are read from the
plugin's own task folder; no lm-eval task index is built.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from tailored_harness.core.paths import tasks_dir

POOL_GLOB = "pools/*/*_pool.yaml"


@functools.lru_cache(maxsize=1)
def pools() -> dict[str, tuple[str, ...]]:
    """``{default task: (default task, template task, ...)}`` of every shipped pool, in pool order."""
    found = {}
    for path in sorted(tasks_dir().glob(POOL_GLOB)):
        members = tuple(yaml.safe_load(path.read_text(encoding="utf-8"))["task"])
        found[members[0]] = members
    return found


def member_yaml(name: str) -> Path:
    """The YAML of pool member ``name`` (a template task such as ``boolq_tailored_t2``)."""
    matches = sorted(tasks_dir().glob(f"pools/*/{name}.yaml"))
    if len(matches) != 1:
        raise KeyError(f"no single pool YAML for task {name!r} under {tasks_dir() / 'pools'}")
    return matches[0]


def in_template(task, member: str):
    """``task`` (a loaded lm-eval task, the pool's default) as pool member ``member``: the same object
    and documents, with the member's ``doc_to_text`` and name. Documents are not loaded again, and
    a dataset the user's own YAML overrides (``--include_path``) stays the one read."""
    if member == task.config.task:
        return task
    from lm_eval.tasks._yaml_loader import load_yaml

    doc_to_text = load_yaml(str(member_yaml(member)), recursive=True)["doc_to_text"]
    config = copy.copy(task.config)
    config.doc_to_text, config.task = doc_to_text, member
    variant: Any = copy.copy(task)
    variant._config = config
    variant._tailored_origin = task  # the requested task, whose template the evaluator wrote requests in
    return variant
