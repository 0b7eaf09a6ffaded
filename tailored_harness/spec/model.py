"""The ``model_args`` of ``--model tailored`` as one frozen, validated spec.

Every accepted key is a field of :class:`ModelSpec`, made from the options the stages declare (their
specs' fields, :mod:`tailored_harness.core.options`): each key's default, check and help are written
once, in its stage, and the spec, the ``tailored`` commands' flags and the options table
(``docs/options.md``) follow. Validation is pure (no torch, no file system): checks that depend on
the machine, such as whether a model folder exists or CUDA is present, happen when the backend loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any, Mapping

from tailored_harness.adapt.quant import QuantSpec
from tailored_harness.adapt.spec import AdaptMode, AdaptSpec, RecoverySpec, TellSpec, method_spec, scope_spec
from tailored_harness.core import options
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.options import Boolean, Choice, Integer, Text, check_fields, option
from tailored_harness.prune.spec import PruneSpec
from tailored_harness.select.spec import PromptSpec, SelectSpec
from tailored_harness.spec.backends import BACKENDS, EngineOptions, ServingOptions

DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICE_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d+|mps|mps:0)$")
DEVICE_CHOICES = "cpu, cuda, cuda:N, mps"
BATCH_PATTERN = re.compile(r"^auto(:\d+)?$")


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """What is loaded and how it is run (declarations only: they become :class:`ModelSpec`'s first fields).

    ``device=None`` picks CUDA when present; a CUDA device on a machine without CUDA falls back to the
    CPU with one warning. ``batch_size`` may be ``auto`` / ``auto:N`` (lm-eval's search).
    """

    pretrained: str = option(dataclasses.MISSING, "pretrained", Text("name a model folder or hub id"),
                             "local model folder, hub id, or `.gguf` file (docs/models.md)")
    gguf_file: str | None = option(None, "gguf_file", Text("name a .gguf file", lambda v: v.endswith(".gguf")),
                                   "a GGUF file inside the `pretrained` folder or hub repository, as `HFLM` names it",
                                   shown="none")
    tokenizer: str | None = option(None, "tokenizer", Text("be a tokenizer folder or hub id"),
                                   "tokenizer folder or hub id", shown="`pretrained`")
    revision: str = option("main", "revision", Text("be a hub revision"), "hub revision")
    backend: str = option("hf", "backend", Choice(tuple(BACKENDS), "backend"),
                          "scoring backend: `hf` = lm-eval's `HFLM`, `vllm` = lm-eval's `VLLM` (docs/vllm.md)")
    dtype: str = option("auto", "dtype", Choice(DTYPES, "dtype"), "weight dtype: `auto` keeps the checkpoint's, or `float32`, `float16`, `bfloat16`")
    device: str | None = option(None, "device", None, "`cpu`, `cuda`, `cuda:N`, `mps`", shown="CUDA if present")
    batch_size: int | str = option(1, "batch_size", None, "requests per forward pass: an integer, `auto` or `auto:N`")
    max_batch_size: int = option(64, "max_batch_size", Integer(1), "bound for `batch_size=auto`")
    max_length: int | None = option(None, "max_length", Integer(1), "context length override", shown="model config")
    trust_remote_code: bool = option(False, "trust_remote_code", Boolean(), "allow code shipped with the checkpoint")


#: The declarations :class:`ModelSpec` is made of, in the order of its fields and of the options table.
SECTIONS = (LoadOptions, PruneSpec, AdaptSpec, AdaptMode, TellSpec, RecoverySpec, QuantSpec, PromptSpec, SelectSpec,
            EngineOptions, ServingOptions)


class _ModelSpecMethods:
    """Checks and stage specs of :class:`ModelSpec` (its fields come from :data:`SECTIONS`)."""

    def __post_init__(self) -> None:
        check_fields(self)  # every declared check, in the order of SECTIONS
        if self.device is not None and not DEVICE_PATTERN.match(str(self.device)):
            raise TailoredError(f"device={self.device!r} is not a device; valid: {DEVICE_CHOICES}")
        self._check_batch_size()
        self._check_engine_args()
        self.prune_spec()  # validates the pruning fields
        self.adapt_spec()  # and the adaptation fields
        if self.prompt_spec().choice == "best" and self.adapt_spec() is None:
            raise TailoredError("prompt=best chooses each task's template by cross-validating adapters on its "
                                "training shots, so it needs shots > 0 (shots=0 given); use prompt=default")
        self._check_method()
        self._check_quant()
        if self.select_spec().select != "none" and self.adapt_spec() is None:
            raise TailoredError(f"prompt_select={self.prompt_select} selects among each task's instructions and "
                                f"demonstrations from its training shots, on its adapter, so it needs shots > 0 "
                                f"(shots=0 given); use prompt_select=none")

    def prune_spec(self):
        """The :class:`PruneSpec` these ``model_args`` ask for, or ``None`` when ``prune_ratio`` is 0."""
        spec = PruneSpec.from_args(self.to_dict())
        return spec if spec.ratio > 0 else None

    def adapt_spec(self) -> AdaptSpec | None:
        """The :class:`AdaptSpec` these ``model_args`` ask for, or ``None`` when ``shots`` is 0."""
        spec = AdaptSpec.from_args(self.to_dict())
        return spec if spec.shots > 0 else None

    def tell_spec(self) -> TellSpec | None:
        """The :class:`TellSpec` under ``adapt_method=tell``, else ``None``."""
        return TellSpec.from_args(self.to_dict()) if self.adapt_method == "tell" else None

    def recovery_spec(self) -> RecoverySpec | None:
        """The :class:`RecoverySpec` of the general adapter under ``adapt_scope=general``, else ``None``."""
        return scope_spec(self.adapt_scope, self.adapt_method, self.to_dict(), self.adapt_seed)

    def quant_spec(self) -> QuantSpec:
        """The :class:`QuantSpec` (QLoRA's 4-bit base) these ``model_args`` ask for; ``scheme`` is
        ``none`` for plain LoRA. Its compute dtype may be ``auto`` (the backend resolves it)."""
        return QuantSpec.from_args(self.to_dict())

    def _check_quant(self) -> None:
        quant = self.quant_spec()
        given = quant.given_options(self.to_dict())
        if not quant.active and given:
            raise TailoredError(f"{', '.join(given)} configure QLoRA's 4-bit base and need adapt_quant=nf4 or fp4")
        if quant.active and self.adapt_spec() is None:
            raise TailoredError(f"adapt_quant={quant.scheme} quantizes the base that adapters train on, but shots=0 "
                                f"trains none; drop adapt_quant or give shots > 0")

    def _check_method(self) -> None:
        if self.recovery_spec() is not None:
            if self.adapt_spec() is None:
                raise TailoredError("adapt_scope=general trains the general adapter, but shots=0 turns adaptation "
                                    "off; drop shots=0 (the general adapter ignores the number of shots)")
            if self.prompt_spec().choice != "default" or self.select_spec().select != "none":
                raise TailoredError("adapt_scope=general scores every task with one general adapter; prompt=best and "
                                    "prompt_select choose prompts on per-task adapters (use adapt_scope=task)")
        if method_spec(self.adapt_method, self.to_dict()) is None:
            return
        if self.adapt_spec() is None:
            raise TailoredError("adapt_method=tell trains each task's adapter on its anchored shots, so it needs "
                                "shots > 0 (shots=0 given)")
        if self.prompt_spec().choice != "default" or self.select_spec().select != "none":
            raise TailoredError("adapt_method=tell does not combine with prompt=best or prompt_select: both choose "
                                "prompts with plain (sft) adapters trained on the shots alone, so the choice would be "
                                "made for other adapters than TELL's anchored ones, which are scored (use "
                                "prompt=default and prompt_select=none with tell)")

    def prompt_spec(self) -> PromptSpec:
        """The :class:`PromptSpec` these ``model_args`` ask for."""
        return PromptSpec.from_args(self.to_dict())

    def select_spec(self) -> SelectSpec:
        """The :class:`SelectSpec` (per-input prompt selection) these ``model_args`` ask for."""
        return SelectSpec.from_args(self.to_dict())

    def _check_engine_args(self) -> None:
        for name, entry in BACKENDS.items():
            given = [key for key in entry.keys if getattr(self, key) is not None]
            if given and self.backend != name:
                raise TailoredError(f"{', '.join(given)} configure {entry.label} and need backend={name} "
                                    f"(backend={self.backend!r})")
        if self.max_model_len is not None and self.max_length is not None:
            raise TailoredError(f"max_length={self.max_length!r} and max_model_len={self.max_model_len!r} name the "
                                "same limit (max_model_len is vLLM's name for it); give one of the two")

    def _check_batch_size(self) -> None:
        value = self.batch_size
        if isinstance(value, str) and BATCH_PATTERN.match(value):
            return
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return
        raise TailoredError(f"batch_size={value!r} must be a positive integer, 'auto' or 'auto:N'")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_model_args(cls, args: Mapping[str, Any]) -> "ModelSpec":
        """Build a spec from parsed ``model_args`` (plus the CLI's batch_size/device), or explain why not."""
        unknown = sorted(set(args) - set(cls.keys()))
        if unknown:
            listed = ", ".join(f"{k}={args[k]!r}" for k in unknown)
            raise TailoredError(f"unknown model_args key(s) {listed}; valid keys: {', '.join(cls.keys())}")
        if "pretrained" not in args:
            raise TailoredError("model_args needs pretrained=<model folder or hub id>")
        values = dict(args)
        for d in options.declared(cls):
            if d.option.word_none and d.option.key in values and values[d.option.key] is None:
                values[d.option.key] = "none"  # lm-eval's model_args parser reads the word none as None
        if isinstance(values.get("batch_size"), str) and values["batch_size"].isdigit():
            values["batch_size"] = int(values["batch_size"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the canonical JSON of the spec; names cache folders of later stages."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _docstring() -> str:
    lines = ["What ``--model tailored`` loads and how it scores: its ``model_args``, validated.", "",
             "One field per option declared by :data:`SECTIONS` (each declaration holds the default, the check",
             "and the help; ``tailored options`` prints them as a table). Fields by section:", ""]
    for section in SECTIONS:
        lines.append(f"    {section.__name__}: {', '.join(options.keys_of(section))}")
    return "\n".join(lines) + "\n"


ModelSpec = dataclasses.make_dataclass("ModelSpec", options.model_fields(SECTIONS), bases=(_ModelSpecMethods,),
                                       frozen=True)
ModelSpec.__module__ = __name__
ModelSpec.__doc__ = _docstring()
