"""``PruneSpec``: everything that decides a structured pruning, validated in one place.

Pure: no torch, no file system. The spec's fields are also ``model_args`` of ``--model tailored``
and options of ``tailored prune``; defaults follow LLM-Pruner (element-wise first-order Taylor,
10 calibration samples of 64 tokens).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping

from tailored_harness.core.errors import TailoredError
from tailored_harness.prune.ranking import RANKINGS, kept_units  # noqa: F401 (kept_units: re-exported)

ALL_LAYERS = "all"
TASKS_SOURCE = "tasks"
LAYER_RANGE = re.compile(r"^(\d+)-(\d+)$")
CALIBRATION_SUFFIXES = (".txt", ".jsonl")
# model_args key (and ``tailored prune`` option destination) -> PruneSpec field: the one mapping.
ARGS = {"prune_ratio": "ratio", "prune_layers": "layers", "round_to": "round_to", "importance": "importance",
        "calibration": "calibration", "calibration_samples": "samples", "calibration_len": "seq_len",
        "prune_seed": "seed", "attention_unit": "attention_unit", "prune_ranking": "ranking",
        "group_reduction": "group_reduction"}
#: what attention is pruned in (:data:`tailored_harness.prune.units.ATTENTION_UNITS` maps them to unit kinds)
ATTENTION_UNITS = ("kv_group", "query_head")
#: the attention unit checkpoints were pruned in before ``attention_unit`` existed: left out of
#: :meth:`PruneSpec.to_dict`, so their fingerprints (and every cache entry named by them) still hold
HISTORICAL_ATTENTION_UNIT = "kv_group"
#: fields added after checkpoints were cached, at the value every earlier pruning used: left out of
#: :meth:`PruneSpec.to_dict` at that value, so earlier fingerprints (and cache entries) still hold
HISTORICAL = {"attention_unit": HISTORICAL_ATTENTION_UNIT, "ranking": "layer", "group_reduction": "sum"}


@dataclasses.dataclass(frozen=True)
class PruneSpec:
    """How to prune a LLaMA-family model.

    Attributes:
        ratio: fraction of the units (KV groups or query heads of attention, MLP channels) removed in
            every selected layer, in [0, 1). A layer keeps ``floor(units * (1 - ratio))`` units, at
            least one; query heads are counted per KV group (every group keeps the same number).
        layers: ``all`` (uniform widths) or an inclusive range ``A-B`` of layer indices; LLM-Pruner
            and Tailored-LLaMA prune ``4-29`` of LLaMA-7B's 32 layers.
        round_to: kept MLP widths are rounded to a multiple of this (1: no rounding).
        importance: criterion name from :data:`tailored_harness.prune.importance.CRITERIA`.
        calibration: ``tasks`` (the requested tasks' training documents in their own prompts) or a
            local ``.txt`` / ``.jsonl`` file (field ``text``); used only by gradient criteria.
        samples: calibration samples (N), each ``seq_len`` tokens (L).
        seed: seeds the calibration sample order and the ``random`` criterion.
        attention_unit: ``kv_group`` (a KV head with the query heads that read it) or ``query_head``
            (query heads within each KV group; every KV head stays); see :mod:`tailored_harness.prune.units`.
        ranking: where units compete, a name from :data:`tailored_harness.prune.ranking.RANKINGS`:
            ``layer`` (each layer keeps its own share; uniform widths) or ``global`` (one ranking over
            all selected layers, as LLM-Pruner's ``--global_pruning``; the same total kept, at least
            one unit per layer, so widths differ between layers).
        group_reduction: how a unit's score combines its members' (the projections it owns rows or
            columns of), a name from :data:`tailored_harness.prune.importance.REDUCTIONS`: ``sum``
            (LLM-Pruner's default) or ``max``.
    """

    ratio: float = 0.0
    layers: str = ALL_LAYERS
    round_to: int = 1
    importance: str = "param_first"
    calibration: str = TASKS_SOURCE
    samples: int = 10
    seq_len: int = 64
    seed: int = 0
    attention_unit: str = HISTORICAL_ATTENTION_UNIT
    ranking: str = HISTORICAL["ranking"]
    group_reduction: str = HISTORICAL["group_reduction"]

    def __post_init__(self) -> None:
        from tailored_harness.prune.importance import CRITERIA, REDUCTIONS

        ratio = self.ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or not 0 <= ratio < 1:
            raise TailoredError(f"prune_ratio={ratio!r} must be a number in [0, 1), e.g. 0.2 (0: no pruning)")
        parse_layers(self.layers)
        for name, label in (("round_to", "round_to"), ("samples", "calibration_samples"), ("seq_len", "calibration_len")):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TailoredError(f"{label}={value!r} must be a positive integer")
        if self.seq_len < 2:
            raise TailoredError(f"calibration_len={self.seq_len} must be at least 2 tokens")
        if self.importance not in CRITERIA:
            raise TailoredError(f"importance={self.importance!r} is not a criterion; valid: {', '.join(CRITERIA)}")
        source = self.calibration
        if not isinstance(source, str) or not (source == TASKS_SOURCE or source.endswith(CALIBRATION_SUFFIXES)):
            raise TailoredError(f"calibration={source!r} must be '{TASKS_SOURCE}' or a local "
                                f"{' or '.join(CALIBRATION_SUFFIXES)} file")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TailoredError(f"prune_seed={self.seed!r} must be an integer")
        if self.attention_unit not in ATTENTION_UNITS:
            raise TailoredError(f"attention_unit={self.attention_unit!r} is not a pruning unit; valid: "
                                f"{', '.join(ATTENTION_UNITS)}")
        if self.ranking not in RANKINGS:
            raise TailoredError(f"prune_ranking={self.ranking!r} is not a ranking; valid: {', '.join(RANKINGS)}")
        if self.group_reduction not in REDUCTIONS:
            raise TailoredError(f"group_reduction={self.group_reduction!r} is not a reduction; valid: "
                                f"{', '.join(REDUCTIONS)}")

    @property
    def needs_calibration(self) -> bool:
        from tailored_harness.prune.importance import CRITERIA

        return CRITERIA[self.importance].needs_gradients

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "PruneSpec":
        """The spec named by ``model_args``-style keys (:data:`ARGS`), e.g. ``{"prune_ratio": 0.2, ...}``."""
        fields = {field: values[key] for key, field in ARGS.items()}
        fields["layers"] = str(fields["layers"])  # model_args may parse a bare range such as 4-29 oddly
        return cls(**fields)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The unit kinds scored and cut: attention's (per ``attention_unit``) and the MLP's."""
        from tailored_harness.prune.units import ATTENTION_UNITS as KINDS, MLP

        return (KINDS[self.attention_unit], MLP)

    def to_dict(self) -> dict[str, Any]:
        """The fields, less those at their historical values (see :data:`HISTORICAL`)."""
        out = dataclasses.asdict(self)
        for name, value in HISTORICAL.items():
            if out[name] == value:
                del out[name]
        return out


def parse_layers(value: str) -> tuple[int, int] | None:
    """``all`` -> ``None``; ``"A-B"`` -> ``(A, B)`` inclusive. Anything else is an error naming the forms."""
    if value == ALL_LAYERS:
        return None
    match = LAYER_RANGE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > int(match.group(2)):
        raise TailoredError(f"prune_layers={value!r} must be '{ALL_LAYERS}' or an inclusive range 'A-B' with A <= B, e.g. 4-29")
    return int(match.group(1)), int(match.group(2))


def selected_layers(value: str, num_layers: int) -> list[int]:
    """The layer indices ``value`` selects in a model of ``num_layers`` layers."""
    bounds = parse_layers(value)
    if bounds is None:
        return list(range(num_layers))
    first, last = bounds
    if last >= num_layers:
        raise TailoredError(f"prune_layers={value!r} is out of range: the model has layers 0-{num_layers - 1}")
    return list(range(first, last + 1))
