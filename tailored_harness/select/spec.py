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


#: ``prompt_select`` values, the names of :data:`tailored_harness.select.selectors.SELECTORS`
#: (kept here so that validating a spec imports no torch; a test keeps the two equal).
SELECTOR_NAMES = ("none", "random", "knn", "match")

#: ``model_args`` key -> :class:`SelectSpec` field.
SELECT_ARGS = {"prompt_select": "select", "prompt_m": "m", "prompt_pool": "pool", "prompt_demos": "demos",
               "prompt_seed": "seed", "match_steps": "steps", "match_batch": "batch", "match_lr": "learning_rate",
               "match_hidden": "hidden", "prompt_embed_len": "embed_len"}


@dataclasses.dataclass(frozen=True)
class SelectSpec:
    """Per-input prompt selection (PILLOW): which pool entries precede each document's context.

    Attributes:
        select: the selector, a name in :data:`SELECTOR_NAMES`: ``none`` (no entry, the default),
            ``random`` (m entries drawn per document), ``knn`` (the m entries nearest the document in
            the frozen model's embedding space) or ``match`` (the learned matcher).
        m: how many entries are joined before the context (1 to 3).
        pool: a pool YAML file for every task of the run; ``None``: each task's file in ``prompts/``.
        demos: demonstrations in the pool, the first ``demos`` of the task's adapter shots written
            in the task's own format (context and gold answer).
        seed: seeds the ``random`` draws and the matcher's initialisation and sampling.
        steps, batch: REINFORCE steps of the matcher, and episodes (training documents) per step.
        learning_rate, hidden: the matcher's Adam learning rate and the width of its two MLPs.
        embed_len: tokens embedded per text (the last ones: a document's question ends its context).
    """

    select: str = "none"
    m: int = 1
    pool: str | None = None
    demos: int = 8
    seed: int = 0
    steps: int = 30
    batch: int = 8
    learning_rate: float = 0.01
    hidden: int = 64
    embed_len: int = 256

    def __post_init__(self) -> None:
        if self.select not in SELECTOR_NAMES:
            raise TailoredError(f"prompt_select={self.select!r} is not a selector; valid: {', '.join(SELECTOR_NAMES)}")
        if not isinstance(self.m, int) or isinstance(self.m, bool) or not 1 <= self.m <= 3:
            raise TailoredError(f"prompt_m={self.m!r} must be 1, 2 or 3")
        if self.pool is not None and (not isinstance(self.pool, str) or not self.pool.endswith((".yaml", ".yml"))):
            raise TailoredError(f"prompt_pool={self.pool!r} must name a .yaml pool file")
        for key, field in (("prompt_demos", "demos"), ("prompt_seed", "seed")):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TailoredError(f"{key}={value!r} must be an integer of at least 0")
        for key, field in (("match_steps", "steps"), ("match_batch", "batch"), ("match_hidden", "hidden"),
                           ("prompt_embed_len", "embed_len")):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TailoredError(f"{key}={value!r} must be a positive integer")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise TailoredError(f"match_lr={rate!r} must be a number in (0, 1)")

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "SelectSpec":
        return cls(**{field: values[key] for key, field in SELECT_ARGS.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
