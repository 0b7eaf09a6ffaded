"""``AdaptSpec``: everything that decides a task's few-shot LoRA adapter, validated in one place.

Pure: no torch, no file system. The fields are ``model_args`` of ``--model tailored`` and options
of ``tailored adapt``. LoRA follows Tailored-LLaMA (r=8, alpha=16, all seven projections, cosine
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

from tailored_harness.core.errors import TailoredError

#: LLaMA's seven linear projections per decoder layer, the LoRA targets of Tailored-LLaMA.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: ``model_args`` key (and ``tailored adapt`` option) -> :class:`AdaptSpec` field.
ARGS = {"shots": "shots", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "lora_lr": "learning_rate",
        "epochs": "epochs", "train_batch_size": "batch_size", "grad_accum": "grad_accum",
        "warmup_ratio": "warmup_ratio", "adapt_max_len": "max_len", "adapt_seed": "seed", "shot_draw": "draw"}

#: Adaptation methods (``adapt_method``): plain supervised fine-tuning on the shots, or TELL.
METHODS = ("sft", "tell")
#: ``model_args`` key (and ``tailored adapt`` option) -> :class:`TellSpec` field.
TELL_ARGS = {"tell_anchor": "anchor", "general_data": "data", "general_tokens": "tokens"}
#: Adaptation scopes (``adapt_scope``): one adapter per task on its shots, or one general adapter.
SCOPES = ("task", "general")
#: ``model_args`` key (and ``tailored adapt`` option) -> :class:`RecoverySpec` field.
RECOVERY_ARGS = {"recovery_data": "data", "recovery_examples": "examples", "recovery_epochs": "epochs",
                 "recovery_lr": "learning_rate"}


@dataclasses.dataclass(frozen=True)
class AdaptSpec:
    """How one task's adapter is trained.

    Attributes:
        shots: training documents per task (0: no adaptation), drawn with ``seed`` from the task's
            training split.
        draw: how the shots are drawn, a name from :data:`tailored_harness.adapt.shots.DRAWS`
            (``stratified``: equal shots per gold choice; ``proportional``: the training split's own
            label proportions). Generation tasks have no labels and draw plainly either way.
        r, alpha, dropout: LoRA rank, scaling numerator (scale = alpha / r) and dropout.
        targets: projection names that get LoRA weights.
        learning_rate: AdamW peak learning rate; the schedule warms up linearly over
            ``warmup_ratio`` of the optimizer steps, then follows a cosine to zero.
        epochs: passes over the shots.
        batch_size: examples per forward pass; ``grad_accum`` passes make one optimizer step.
        max_len: tokens per example; longer contexts are cut from the left (the answer is kept).
        weight_decay: AdamW weight decay on the LoRA weights.
        seed: seeds the shot draw, the LoRA initialisation, dropout and the example order.
    """

    shots: int = 50
    draw: str = "proportional"
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = PROJECTIONS
    learning_rate: float = 3e-4
    epochs: int = 5
    batch_size: int = 4
    grad_accum: int = 2
    warmup_ratio: float = 0.1
    max_len: int = 512
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        from tailored_harness.adapt.shots import DRAWS

        if not _int(self.shots) or self.shots < 0:
            raise TailoredError(f"shots={self.shots!r} must be a non-negative integer (0: no adaptation)")
        if self.draw not in DRAWS:
            raise TailoredError(f"shot_draw={self.draw!r} is not a shot draw; valid: {', '.join(DRAWS)}")
        for name, label in (("r", "lora_r"), ("epochs", "epochs"), ("batch_size", "train_batch_size"),
                            ("grad_accum", "grad_accum"), ("max_len", "adapt_max_len")):
            value = getattr(self, name)
            if not _int(value) or value < 1:
                raise TailoredError(f"{label}={value!r} must be a positive integer")
        if not _number(self.alpha) or self.alpha <= 0:
            raise TailoredError(f"lora_alpha={self.alpha!r} must be a positive number")
        if not _number(self.learning_rate) or not 0 < self.learning_rate < 1:
            raise TailoredError(f"lora_lr={self.learning_rate!r} must be a number in (0, 1), e.g. 1e-4")
        for value, label in ((self.dropout, "lora_dropout"), (self.warmup_ratio, "warmup_ratio")):
            if not _number(value) or not 0 <= value < 1:
                raise TailoredError(f"{label}={value!r} must be a number in [0, 1)")
        if not _number(self.weight_decay) or self.weight_decay < 0:
            raise TailoredError(f"weight_decay={self.weight_decay!r} must be a non-negative number")
        unknown = sorted(set(self.targets) - set(PROJECTIONS))
        if not self.targets or unknown:
            raise TailoredError(f"lora targets {unknown or 'none'} are not projections; valid: {', '.join(PROJECTIONS)}")
        if not _int(self.seed):
            raise TailoredError(f"adapt_seed={self.seed!r} must be an integer")
        for name in ("alpha", "dropout", "learning_rate", "warmup_ratio", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))  # 16 and 16.0: one fingerprint

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "AdaptSpec":
        """The spec named by ``model_args``-style keys (:data:`ARGS`), e.g. ``{"lora_r": 8, ...}``."""
        return cls(**{field: values[key] for key, field in ARGS.items()})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["targets"] = list(self.targets)
        return out


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class TellSpec:
    """TELL (Zeng et al., 2024): each task example carries a fixed anchor and is shuffled into general data.

    Attributes:
        anchor: ``default`` (the task's anchor shipped in ``prompts/anchors.yaml``), ``none`` (no
            anchor: the ablation "general data without anchor"), a ``.yaml`` file in the shipped
            format, or the anchor text itself. The anchor precedes every task example in training
            and every request of the task at scoring.
        data: where the general examples come from (:mod:`tailored_harness.adapt.general`): a
            ``.txt`` or ``.jsonl`` file (the synthetic world's statements are one:
            ``$(tailored world)/statements.txt``), ``tasks:A+B`` (the training documents of lm-eval
            tasks other than the adapted one), or a hub dataset id or local dataset folder. The
            default is LLM-Pruner's recovery data.
        tokens: budget of general tokens (prompt and response, as encoded for training); whole
            examples are taken in a seeded order until the next would exceed it. 0: no general
            data (the ablation "anchor without general data").
    """

    anchor: str = "default"
    data: str = "yahma/alpaca-cleaned"
    tokens: int = 20000

    def __post_init__(self) -> None:
        if not isinstance(self.anchor, str) or not self.anchor.strip():
            raise TailoredError(f"tell_anchor={self.anchor!r} must be default, none, a .yaml file or the anchor text")
        if not isinstance(self.data, str) or not self.data.strip():
            raise TailoredError(f"general_data={self.data!r} must name a .txt/.jsonl file, tasks:A+B or a dataset")
        if not _int(self.tokens) or self.tokens < 0:
            raise TailoredError(f"general_tokens={self.tokens!r} must be a non-negative integer (0: no general data)")

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "TellSpec":
        """The spec named by ``model_args``-style keys (:data:`TELL_ARGS`); ``None`` values take the defaults."""
        return cls(**{field: values[key] for key, field in TELL_ARGS.items() if values.get(key) is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def method_spec(method: str, values: Mapping[str, Any], spell: Callable[[str], str] = str,
                sep: str = "=") -> TellSpec | None:
    """Check an adaptation method and its options; the :class:`TellSpec` under ``tell``, else ``None``.

    ``values`` holds the :data:`TELL_ARGS` keys (``None`` when not given). ``spell`` writes a key as
    the user typed it and ``sep`` joins it to a value (``model_args``: ``adapt_method=tell``; the
    CLI: ``--adapt-method tell``), so both front ends refuse the same input with the same sentence.
    """
    if method not in METHODS:
        raise TailoredError(f"{spell('adapt_method')}{sep}{method!r} is not a method; valid: {', '.join(METHODS)}")
    given = [spell(key) for key in TELL_ARGS if values.get(key) is not None]
    if method != "tell":
        if given:
            raise TailoredError(f"{', '.join(given)} configure TELL and need {spell('adapt_method')}{sep}tell")
        return None
    return TellSpec.from_args(values)


@dataclasses.dataclass(frozen=True)
class RecoverySpec:
    """How the general adapter is trained; defaults are LLM-Pruner's recipe, sized for a CPU.

    Attributes:
        data: the general data, a source of :mod:`tailored_harness.adapt.general` with records
            (a hub dataset id or local dataset folder, or a ``.json``/``.jsonl``/``.txt`` file);
            LLM-Pruner's is ``yahma/alpaca-cleaned``.
        examples: how many examples (whole records, in a seeded order) are trained on. 1,000 x 2
            epochs is 32 optimizer steps of 64 examples: 978 s on SmolLM2-135M pruned at 0.2, 571 s
            at 0.5, on two CPU cores (``results/README.md``, the recovery table).
        epochs, learning_rate: passes over the examples and the AdamW peak learning rate.
        r, alpha, dropout, batch_size, grad_accum, max_len, seed: as in
            :class:`~tailored_harness.adapt.spec.AdaptSpec`; fixed at LLM-Pruner's values but for the seed.
    """

    data: str = "yahma/alpaca-cleaned"
    examples: int = 1000
    epochs: int = 2
    learning_rate: float = 1e-4
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    batch_size: int = 4
    grad_accum: int = 16
    max_len: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data.strip() or self.data.startswith("tasks:"):
            raise TailoredError(f"recovery_data={self.data!r} must name general instruction data: a dataset id or "
                                f"folder, or a .json/.jsonl/.txt file (tasks:A+B is TELL's, not general data)")
        for name in ("examples", "epochs"):
            value = getattr(self, name)
            if not _int(value) or value < 1:
                raise TailoredError(f"recovery_{name}={value!r} must be a positive integer")
        if not _number(self.learning_rate) or not 0 < self.learning_rate < 1:
            raise TailoredError(f"recovery_lr={self.learning_rate!r} must be a number in (0, 1), e.g. 1e-4")
        object.__setattr__(self, "learning_rate", float(self.learning_rate))

    @classmethod
    def from_args(cls, values: Mapping[str, Any], seed: int = 0) -> "RecoverySpec":
        """The spec named by ``model_args``-style keys (:data:`RECOVERY_ARGS`); ``None`` values take the defaults."""
        given = {field: values[key] for key, field in RECOVERY_ARGS.items() if values.get(key) is not None}
        return cls(**given, seed=seed)

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
    given = [spell(key) for key in RECOVERY_ARGS if values.get(key) is not None]
    if scope != "general":
        if given:
            raise TailoredError(f"{', '.join(given)} configure the general adapter and need "
                                f"{spell('adapt_scope')}{sep}general")
        return None
    if method != "sft":
        raise TailoredError(f"{spell('adapt_scope')}{sep}general trains one adapter on general data for every task; "
                            f"it does not combine with {spell('adapt_method')}{sep}{method} (use sft)")
    return RecoverySpec.from_args(values, seed)
