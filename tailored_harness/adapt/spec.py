"""``AdaptSpec``: everything that decides a task's few-shot LoRA adapter, validated in one place.

Pure: no torch, no file system. Each field is declared once (:func:`tailored_harness.core.options.option`)
as a ``model_args`` key of ``--model tailored`` and an option of ``tailored adapt``. LoRA follows Tailored-LLaMA (r=8, alpha=16, all seven projections, cosine
schedule with warmup). The recipe itself was chosen on the real model (SmolLM2-135M pruned at 0.2,
``benchmarks/adapt_recipe.py``, scored on held-out *training* documents, never the evaluated split;
numbers in ``results/README.md``): 5 epochs at 3e-4 without dropout, shots drawn in the training
split's label proportions. Against the earlier 20 epochs at 1e-4 with dropout 0.05 and stratified
shots, that is a quarter of the steps at equal or better held-out accuracy; LoRA dropout cost a
quarter of every step on the CPU (one random mask per projection input) and changed nothing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

from tailored_harness.core import options
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.options import Choice, Integer, Number, Text, check_fields, option

#: LLaMA's seven linear projections per decoder layer, the LoRA targets of Tailored-LLaMA.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: Adaptation methods (``adapt_method``): plain supervised fine-tuning on the shots, or TELL.
METHODS = ("sft", "tell")
#: Adaptation scopes (``adapt_scope``): one adapter per task on its shots, or one general adapter.
SCOPES = ("task", "general")


def _draws() -> tuple[str, ...]:
    from tailored_harness.adapt.shots import DRAWS

    return tuple(DRAWS)


@dataclasses.dataclass(frozen=True)
class AdaptSpec:
    """How one task's adapter is trained; each declared field's meaning is its declaration's help.

    Generation tasks have no labels and draw their shots plainly under either ``draw``. The schedule
    warms up linearly over ``warmup_ratio`` of the optimizer steps, then follows a cosine to zero.

    Attributes (not options):
        targets: projection names that get LoRA weights.
        weight_decay: AdamW weight decay on the LoRA weights.
    """

    shots: int = option(50, "shots", Integer(0, note=" (0: no adaptation)"),
                        "training documents per task for its LoRA adapter; `0`: no adaptation")
    draw: str = option("proportional", "shot_draw", Choice(_draws, "shot draw"),
                       "`stratified` (equal shots per gold choice) or `proportional` (the training split's label "
                       "proportions)")
    r: int = option(8, "lora_r", Integer(1), "LoRA rank, on q/k/v/o/gate/up/down")
    alpha: float = option(16.0, "lora_alpha", Number(0, low_open=True), "LoRA scaling numerator (scale = alpha / r)")
    dropout: float = option(0.0, "lora_dropout", Number(0, 1, high_open=True), "LoRA dropout")
    targets: tuple[str, ...] = PROJECTIONS
    learning_rate: float = option(3e-4, "lora_lr", Number(0, 1, low_open=True, high_open=True, note=", e.g. 1e-4"),
                                  "AdamW peak learning rate (linear warmup, then cosine)", shown="`3e-4`")
    epochs: int = option(5, "epochs", Integer(1), "passes over the shots")
    batch_size: int = option(4, "train_batch_size", Integer(1), "examples per forward pass")
    grad_accum: int = option(2, "grad_accum", Integer(1), "forward passes per optimizer step")
    warmup_ratio: float = option(0.1, "warmup_ratio", Number(0, 1, high_open=True), "warmup share of the steps")
    max_len: int = option(512, "adapt_max_len", Integer(1),
                          "tokens per training example (contexts cut from the left; the answer is kept)",
                          cli="--max-len")
    weight_decay: float = 0.0
    seed: int = option(0, "adapt_seed", Integer(), "shot draw, LoRA init, dropout and example order", cli="--seed")

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        check_fields(self)
        if not _number(self.weight_decay) or self.weight_decay < 0:
            raise TailoredError(f"weight_decay={self.weight_decay!r} must be a non-negative number")
        unknown = sorted(set(self.targets) - set(PROJECTIONS))
        if not self.targets or unknown:
            raise TailoredError(f"lora targets {unknown or 'none'} are not projections; valid: {', '.join(PROJECTIONS)}")
        for name in ("alpha", "dropout", "learning_rate", "warmup_ratio", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))  # 16 and 16.0: one fingerprint

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "AdaptSpec":
        """The spec named by ``model_args``-style keys, e.g. ``{"lora_r": 8, ...}``."""
        return options.from_args(cls, values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["targets"] = list(self.targets)
        return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class AdaptMode:
    """Which adaptation runs: its method and scope (declarations only; :func:`method_spec` and
    :func:`scope_spec` check how they combine with the options of TELL and of the general adapter)."""

    method: str = option("sft", "adapt_method", Choice(METHODS, "method"),
                         "`sft` (the shots alone) or `tell` (each shot behind the task's anchor, shuffled into "
                         "general data; docs/adaptation.md)")
    scope: str = option("task", "adapt_scope", Choice(SCOPES, "scope"),
                        "`task` (one adapter per task, on its shots) or `general` (LLM-Pruner's recovery: one "
                        "adapter on general instruction data, used for every task; docs/adaptation.md)")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class TellSpec:
    """TELL (Zeng et al., 2024): each task example carries a fixed anchor and is shuffled into general data.

    The anchor precedes every task example in training and every request of the task at scoring.
    General examples come from :mod:`tailored_harness.adapt.general` (the synthetic world's statements
    are a ``.txt`` source: ``$(tailored world)/statements.txt``); whole examples are taken in a seeded
    order until the next would exceed the token budget (prompt and response, as encoded for training).
    ``tell_anchor=none`` is the ablation "general data without anchor", ``general_tokens=0`` the
    ablation "anchor without general data".
    """

    anchor: str = option("default", "tell_anchor", Text("be default, none, a .yaml file or the anchor text"),
                         "`tell` only: `default` (the task's anchor in `prompts/anchors.yaml`), `none`, a `.yaml` "
                         "anchors file, or the text", given_only=True, word_none=True)
    data: str = option("yahma/alpaca-cleaned", "general_data", Text("name a .txt/.jsonl file, tasks:A+B or a dataset"),
                       "`tell` only: a `.txt` (a plain-text example per line) or `.jsonl` file, `tasks:A+B` (other "
                       "tasks' training documents), or a dataset id or local dataset folder", given_only=True)
    tokens: int = option(20000, "general_tokens", Integer(0, note=" (0: no general data)"),
                         "`tell` only: budget of general tokens per adapter; `0`: none", given_only=True)

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "TellSpec":
        """The spec named by ``model_args``-style keys; ``None`` values take the defaults."""
        return options.from_args(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def method_spec(method: str, values: Mapping[str, Any], spell: Callable[[str], str] = str,
                sep: str = "=") -> TellSpec | None:
    """Check an adaptation method and its options; the :class:`TellSpec` under ``tell``, else ``None``.

    ``values`` holds :class:`TellSpec`'s keys (``None`` when not given). ``spell`` writes a key as
    the user typed it and ``sep`` joins it to a value (``model_args``: ``adapt_method=tell``; the
    CLI: ``--adapt-method tell``), so both front ends refuse the same input with the same sentence.
    """
    if method not in METHODS:
        raise TailoredError(f"{spell('adapt_method')}{sep}{method!r} is not a method; valid: {', '.join(METHODS)}")
    given = [spell(key) for key in options.given(TellSpec, values)]
    if method != "tell":
        if given:
            raise TailoredError(f"{', '.join(given)} configure TELL and need {spell('adapt_method')}{sep}tell")
        return None
    return TellSpec.from_args(values)


def _general_data(value: str) -> bool:
    return not value.startswith("tasks:")


@dataclasses.dataclass(frozen=True)
class RecoverySpec:
    """How the general adapter is trained; defaults are LLM-Pruner's recipe, sized for a CPU.

    1,000 examples x 2 epochs is 32 optimizer steps of 64 examples: 978 s on SmolLM2-135M pruned at
    0.2, 571 s at 0.5, on two CPU cores (``results/README.md``, the recovery table).

    Attributes (not options):
        r, alpha, dropout, batch_size, grad_accum, max_len, seed: as in :class:`AdaptSpec`; fixed at
            LLM-Pruner's values but for the seed (``adapt_seed``).
    """

    data: str = option("yahma/alpaca-cleaned", "recovery_data",
                       Text("name general instruction data: a dataset id or folder, or a .json/.jsonl/.txt file "
                            "(tasks:A+B is TELL's, not general data)", _general_data),
                       "`general` only: a dataset id or local dataset folder, or a `.json` (a list of records, "
                       "Alpaca's format), `.jsonl` or `.txt` file", given_only=True)
    examples: int = option(1000, "recovery_examples", Integer(1),
                           "`general` only: general examples trained on (whole records, in a seeded order)",
                           given_only=True)
    epochs: int = option(2, "recovery_epochs", Integer(1), "`general` only: passes over them", given_only=True)
    learning_rate: float = option(1e-4, "recovery_lr", Number(0, 1, low_open=True, high_open=True, note=", e.g. 1e-4"),
                                  "`general` only: AdamW peak learning rate", given_only=True, shown="`1e-4`")
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    batch_size: int = 4
    grad_accum: int = 16
    max_len: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "learning_rate", float(self.learning_rate))

    @classmethod
    def from_args(cls, values: Mapping[str, Any], seed: int = 0) -> "RecoverySpec":
        """The spec named by ``model_args``-style keys; ``None`` values take the defaults."""
        return options.from_args(cls, values, seed=seed)

    def train_spec(self) -> AdaptSpec:
        """The training recipe as the trainer takes it (``shots`` is the number of general examples)."""
        return AdaptSpec(shots=self.examples, r=self.r, alpha=self.alpha, dropout=self.dropout,
                         learning_rate=self.learning_rate, epochs=self.epochs, batch_size=self.batch_size,
                         grad_accum=self.grad_accum, max_len=self.max_len, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def scope_spec(scope: str, method: str, values: Mapping[str, Any], seed: int = 0,
               spell=str, sep: str = "=") -> RecoverySpec | None:
    """Check ``adapt_scope`` and the recovery options; the :class:`RecoverySpec` under ``general``,
    else ``None``. ``spell``/``sep`` write keys as the user typed them (see ``adapt.spec.method_spec``)."""
    if scope not in SCOPES:
        raise TailoredError(f"{spell('adapt_scope')}{sep}{scope!r} is not a scope; valid: {', '.join(SCOPES)}")
    given = [spell(key) for key in options.given(RecoverySpec, values)]
    if scope != "general":
        if given:
            raise TailoredError(f"{', '.join(given)} configure the general adapter and need "
                                f"{spell('adapt_scope')}{sep}general")
        return None
    if method != "sft":
        raise TailoredError(f"{spell('adapt_scope')}{sep}general trains one adapter on general data for every task; "
                            f"it does not combine with {spell('adapt_method')}{sep}{method} (use sft)")
    return RecoverySpec.from_args(values, seed)
