"""``PromptSpec``: which template each task is scored in, validated in one place. Pure: no torch.

``prompt=default`` scores every task in its own template. ``prompt=best`` chooses, for each requested
task that has a template pool (``<benchmark>_tailored``), the template whose adapters score best in
``prompt_folds``-fold cross-validation on the task's training shots; its adapter is then trained on
all the shots in that template and the task is scored in it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tailored_harness.core.errors import TailoredError

#: ``prompt`` values: ``default`` (each task's own template) and ``best`` (cross-validated choice).
CHOICES = ("default", "best")

#: ``model_args`` key -> :class:`PromptSpec` field.
ARGS = {"prompt": "choice", "prompt_folds": "folds"}


@dataclasses.dataclass(frozen=True)
class PromptSpec:
    """How a task's template is chosen.

    Attributes:
        choice: ``default`` or ``best`` (see the module docstring).
        folds: k of the k-fold cross-validation over the shots: each template trains k adapters,
            each on k-1 folds, and scores the fold it left out; a template's score is the mean.
            The cost is about k-1 full adapter trainings per template.
    """

    choice: str = "default"
    folds: int = 3

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise TailoredError(f"prompt={self.choice!r} is not a prompt choice; valid: {', '.join(CHOICES)}")
        if not isinstance(self.folds, int) or isinstance(self.folds, bool) or self.folds < 2:
            raise TailoredError(f"prompt_folds={self.folds!r} must be an integer of at least 2")

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "PromptSpec":
        return cls(**{field: values[key] for key, field in ARGS.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
