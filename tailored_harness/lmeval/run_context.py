"""The tasks of the lm-eval run in progress, for stages that need them from inside a scoring call.

lm-eval builds the model before it loads the tasks, and a request names only its task
(``Instance.task_name``). Pruning calibrated on the tasks' own training documents (and, later,
per-task adaptation) need the task objects themselves. Building a second ``TaskManager`` would
cost seconds and ignore the run's ``--include_path``, so the start-up hook wraps
``lm_eval.evaluator.evaluate`` instead: for the duration of the call the task dictionary it was
given is available here, through :func:`current_tasks`. Light module: no torch, no lm_eval at import.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

_TASK_DICT: contextvars.ContextVar[Any] = contextvars.ContextVar("tailored_task_dict", default=None)


@contextlib.contextmanager
def tasks_scope(task_dict: Any) -> Iterator[None]:
    """Make ``task_dict`` (what ``evaluate`` received) the current run's tasks inside the block."""
    token = _TASK_DICT.set(task_dict)
    try:
        yield
    finally:
        _TASK_DICT.reset(token)


def current_tasks() -> dict[str, Any] | None:
    """``{task name: Task}`` of the ``evaluate`` call in progress, or ``None`` outside one."""
    task_dict = _TASK_DICT.get()
    return None if task_dict is None else flatten(task_dict)


def flatten(task_dict: Any) -> dict[str, Any]:
    """``{task name: Task}`` of a task dictionary as ``get_task_dict`` builds it (groups resolved)."""
    if "tasks" in task_dict:
        return dict(task_dict["tasks"])
    from lm_eval.evaluator import _handle_back_comp  # lm-eval's own flattening of nested group dicts

    _, tasks = _handle_back_comp(task_dict)
    return dict(tasks)
