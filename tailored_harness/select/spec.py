"""``PromptSpec``: which template each task is scored in, validated in one place. Pure: no torch.

``prompt=default`` scores every task in its own template. ``prompt=best`` chooses, for each requested
task that has a template pool (``<benchmark>_tailored``), the template whose adapters score best in
``prompt_folds``-fold cross-validation on the task's training shots; its adapter is then trained on
all the shots in that template and the task is scored in it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tailored_harness.core import options
from tailored_harness.core.options import Choice, Integer, Number, Text, check_fields, option

#: ``prompt`` values: ``default`` (each task's own template) and ``best`` (cross-validated choice).
CHOICES = ("default", "best")



@dataclasses.dataclass(frozen=True)
class PromptSpec:
    """How a task's template is chosen (see the module docstring). Cross-validation trains k adapters
    per template, each on k-1 folds of the shots, and scores the fold left out; a template's score is
    the mean, at the cost of about k-1 full adapter trainings per template."""

    choice: str = option("default", "prompt", Choice(CHOICES, "prompt choice"),
                         "`default` (each task in its own template) or `best` (the pool template chosen by "
                         "cross-validation on the training shots; docs/prompts.md)")
    folds: int = option(3, "prompt_folds", Integer(2), "k of `prompt=best`'s k-fold cross-validation (at most `shots`)")

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "PromptSpec":
        return options.from_args(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: ``prompt_select`` values, the names of :data:`tailored_harness.select.selectors.SELECTORS`
#: (kept here so that validating a spec imports no torch; a test keeps the two equal).
SELECTOR_NAMES = ("none", "random", "knn", "match")



def _pool_file(value: str) -> bool:
    return value.endswith((".yaml", ".yml"))


@dataclasses.dataclass(frozen=True)
class SelectSpec:
    """Per-input prompt selection (PILLOW): which pool entries precede each document's context.

    Selectors are :data:`SELECTOR_NAMES`: ``none``, ``random`` (m entries drawn per document), ``knn``
    (the m entries nearest the document in the frozen model's embedding space) or ``match`` (the
    learned matcher, trained by REINFORCE). Demonstrations are written in the task's own format
    (context and gold answer); texts are embedded by their last tokens (a question ends its context).
    """

    select: str = option("none", "prompt_select", Choice(SELECTOR_NAMES, "selector"),
                         "per-input prompt selection (PILLOW): `none`, `random`, `knn` or `match` (docs/prompts.md); needs `shots` > 0", word_none=True)
    m: int = option(1, "prompt_m", Integer(1, 3), "pool entries joined before each document's context, 1 to 3")
    pool: str | None = option(None, "prompt_pool", Text("name a .yaml pool file", _pool_file),
                              "a pool YAML of your own, used for every task of the run",
                              shown="the task's file in `prompts/`")
    demos: int = option(8, "prompt_demos", Integer(0), "demonstrations in the pool: the first N of the task's adapter shots")
    seed: int = option(0, "prompt_seed", Integer(0), "seeds `random`'s draws and the matcher's initialisation and sampling")
    steps: int = option(30, "match_steps", Integer(1), "the matcher's REINFORCE steps")
    batch: int = option(8, "match_batch", Integer(1), "episodes (training documents) per matcher step")
    learning_rate: float = option(0.01, "match_lr", Number(0, 1, low_open=True, high_open=True), "the matcher's Adam learning rate")
    hidden: int = option(64, "match_hidden", Integer(1), "width of the matcher's two MLPs")
    embed_len: int = option(256, "prompt_embed_len", Integer(1),
                            "tokens embedded per text (the last ones) for `knn` and `match`")

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "SelectSpec":
        return options.from_args(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
