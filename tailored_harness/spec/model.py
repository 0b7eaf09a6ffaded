"""The ``model_args`` of ``--model tailored`` as one frozen, validated spec.

Every accepted key is a field of :class:`ModelSpec`; defaults live here and nowhere else. Keys for
pruning and adaptation are added by the stages that use them, so the spec never accepts an argument
that does nothing. Validation is pure (no torch, no file system): checks that depend on the machine,
such as whether a model folder exists or CUDA is present, happen when the backend loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any, Mapping

from tailored_harness.adapt.quant import QuantSpec
from tailored_harness.adapt.spec import AdaptSpec, RecoverySpec, TellSpec, method_spec, scope_spec
from tailored_harness.core.errors import TailoredError
from tailored_harness.prune.spec import PruneSpec
from tailored_harness.select.spec import PromptSpec, SelectSpec
from tailored_harness.spec.backends import ADAPTER_STRATEGIES, BACKENDS

DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICE_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d+|mps|mps:0)$")
DEVICE_CHOICES = "cpu, cuda, cuda:N, mps"
BATCH_PATTERN = re.compile(r"^auto(:\d+)?$")


def _choices(values) -> str:
    return ", ".join(sorted(values))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What ``--model tailored`` loads and how it scores.

    Attributes:
        pretrained: local model folder or hub id of a causal LM of a supported family, or a local ``.gguf``
            file (converted once into a cached folder, see :mod:`tailored_harness.models.gguf_import`).
        gguf_file: name of a GGUF file inside the ``pretrained`` folder or hub repository (as
            lm-eval's ``HFLM`` names it), for a folder that holds several.
        tokenizer: tokenizer folder or hub id; defaults to ``pretrained``.
        revision: hub revision of ``pretrained``.
        backend: scoring backend, a name from :data:`tailored_harness.spec.backends.BACKENDS`.
        dtype: weight dtype; ``auto`` keeps the checkpoint's dtype.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``None`` picks CUDA when present.
            A CUDA device on a machine without CUDA falls back to the CPU with one warning.
        batch_size: requests per forward pass, or ``auto`` / ``auto:N`` (lm-eval's search).
        max_batch_size: upper bound for the ``auto`` search.
        max_length: context length override; ``None`` uses the model config.
        trust_remote_code: allow code shipped with the checkpoint (``auto_map``).
        prune_ratio, prune_layers, round_to, importance, calibration, calibration_samples,
            calibration_len, prune_seed, attention_unit, prune_ranking, group_reduction: structured
            pruning before scoring; see
            :class:`tailored_harness.prune.spec.PruneSpec` (``prune_ratio=0``: no pruning).
        shots, shot_draw, lora_r, lora_alpha, lora_dropout, lora_lr, epochs, train_batch_size, grad_accum,
            warmup_ratio, adapt_max_len, adapt_seed: one LoRA adapter per task, trained on that
            task's training documents; see :class:`tailored_harness.adapt.spec.AdaptSpec`
            (``shots=0``: no adaptation). Their defaults are the spec's.
        adapt_method: ``sft`` (the shots alone) or ``tell`` (anchored shots among general data);
            ``tell_anchor``, ``general_data``, ``general_tokens`` configure TELL (``None``: the
            defaults of :class:`tailored_harness.adapt.spec.TellSpec`) and need ``adapt_method=tell``.
        adapt_scope: ``task`` (one adapter per task, the default) or ``general`` (LLM-Pruner's recovery:
            one adapter on general instruction data, used for every task); ``recovery_data``,
            ``recovery_examples``, ``recovery_epochs``, ``recovery_lr`` configure it (``None``: the
            defaults of :class:`tailored_harness.adapt.spec.RecoverySpec`) and need
            ``adapt_scope=general``. ``shots=0`` turns adaptation off in either scope.
        adapt_quant, adapt_quant_double, adapt_quant_compute: QLoRA, adapters trained (and scored on
            ``backend=hf``) on a 4-bit copy of the base; see :class:`tailored_harness.adapt.quant.QuantSpec`
            (``adapt_quant=none``: plain LoRA; the other two need a scheme; ``None``: the defaults).
        tensor_parallel_size, data_parallel_size, max_model_len, gpu_memory_utilization,
            kv_cache_memory_bytes, enforce_eager, max_num_seqs: vLLM engine arguments, passed through
            (``backend=vllm`` only; ``None``: vLLM's default, or on the CPU the defaults of
            :func:`tailored_harness.backends.vllm.engine_defaults`). ``max_model_len`` is vLLM's name
            for ``max_length``; give one of the two.
        prompt, prompt_folds: the template each task is scored in; see
            :class:`tailored_harness.select.spec.PromptSpec` (``prompt=best`` needs ``shots`` > 0).
        prompt_select, prompt_m, prompt_pool, prompt_demos, prompt_seed, match_steps, match_batch, match_lr,
            match_hidden, prompt_embed_len: per-input prompt selection (PILLOW); see
            :class:`tailored_harness.select.spec.SelectSpec` (``prompt_select=none``: no selection).
        adapter_strategy: how ``backend=vllm`` serves per-task adapters, a name from
            :data:`tailored_harness.spec.backends.ADAPTER_STRATEGIES`; ``None``: ``merged``.
    """

    pretrained: str
    gguf_file: str | None = None
    tokenizer: str | None = None
    revision: str = "main"
    backend: str = "hf"
    dtype: str = "auto"
    device: str | None = None
    batch_size: int | str = 1
    max_batch_size: int = 64
    max_length: int | None = None
    trust_remote_code: bool = False
    prune_ratio: float = PruneSpec.ratio
    prune_layers: str = PruneSpec.layers
    round_to: int = PruneSpec.round_to
    importance: str = PruneSpec.importance
    calibration: str = PruneSpec.calibration
    calibration_samples: int = PruneSpec.samples
    calibration_len: int = PruneSpec.seq_len
    prune_seed: int = PruneSpec.seed
    attention_unit: str = PruneSpec.attention_unit
    prune_ranking: str = PruneSpec.ranking
    group_reduction: str = PruneSpec.group_reduction
    shots: int = AdaptSpec.shots
    shot_draw: str = AdaptSpec.draw
    lora_r: int = AdaptSpec.r
    lora_alpha: float = AdaptSpec.alpha
    lora_dropout: float = AdaptSpec.dropout
    lora_lr: float = AdaptSpec.learning_rate
    epochs: int = AdaptSpec.epochs
    train_batch_size: int = AdaptSpec.batch_size
    grad_accum: int = AdaptSpec.grad_accum
    warmup_ratio: float = AdaptSpec.warmup_ratio
    adapt_max_len: int = AdaptSpec.max_len
    adapt_seed: int = AdaptSpec.seed
    adapt_method: str = "sft"
    adapt_scope: str = "task"
    recovery_data: str | None = None
    recovery_examples: int | None = None
    recovery_epochs: int | None = None
    recovery_lr: float | None = None
    tell_anchor: str | None = None
    general_data: str | None = None
    general_tokens: int | None = None
    adapt_quant: str = QuantSpec.scheme
    adapt_quant_double: bool | None = None
    adapt_quant_compute: str | None = None
    prompt: str = PromptSpec.choice
    prompt_folds: int = PromptSpec.folds
    prompt_select: str = SelectSpec.select
    prompt_m: int = SelectSpec.m
    prompt_pool: str | None = SelectSpec.pool
    prompt_demos: int = SelectSpec.demos
    prompt_seed: int = SelectSpec.seed
    match_steps: int = SelectSpec.steps
    match_batch: int = SelectSpec.batch
    match_lr: float = SelectSpec.learning_rate
    match_hidden: int = SelectSpec.hidden
    prompt_embed_len: int = SelectSpec.embed_len
    tensor_parallel_size: int | None = None
    data_parallel_size: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool | None = None
    max_num_seqs: int | None = None
    adapter_strategy: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pretrained, str) or not self.pretrained.strip():
            raise TailoredError(f"pretrained={self.pretrained!r} must name a model folder or hub id")
        for name in ("tokenizer", "revision", "gguf_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TailoredError(f"{name}={value!r} must be a string")
        if self.gguf_file is not None and not self.gguf_file.endswith(".gguf"):
            raise TailoredError(f"gguf_file={self.gguf_file!r} must name a .gguf file")
        if self.backend not in BACKENDS:
            raise TailoredError(f"backend={self.backend!r} is not a backend; valid: {_choices(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise TailoredError(f"dtype={self.dtype!r} is not a dtype; valid: {', '.join(DTYPES)}")
        if self.device is not None and not DEVICE_PATTERN.match(str(self.device)):
            raise TailoredError(f"device={self.device!r} is not a device; valid: {DEVICE_CHOICES}")
        self._check_batch_size()
        _positive_int("max_batch_size", self.max_batch_size)
        if self.max_length is not None:
            _positive_int("max_length", self.max_length)
        if not isinstance(self.trust_remote_code, bool):
            raise TailoredError(f"trust_remote_code={self.trust_remote_code!r} must be True or False")
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
            raise TailoredError("adapt_method=tell puts each task's anchor before its own template; it does not "
                                "combine with prompt=best or prompt_select yet (use prompt=default, prompt_select=none)")

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
        if self.adapter_strategy is not None and self.adapter_strategy not in ADAPTER_STRATEGIES:
            raise TailoredError(f"adapter_strategy={self.adapter_strategy!r} is not a strategy; "
                                f"valid: {_choices(ADAPTER_STRATEGIES)}")
        for name in ("tensor_parallel_size", "data_parallel_size", "max_model_len", "kv_cache_memory_bytes",
                     "max_num_seqs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        fraction = self.gpu_memory_utilization
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                                     or not 0 < fraction <= 1):
            raise TailoredError(f"gpu_memory_utilization={fraction!r} must be a number in (0, 1]")
        if self.enforce_eager is not None and not isinstance(self.enforce_eager, bool):
            raise TailoredError(f"enforce_eager={self.enforce_eager!r} must be True or False")

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
        for key in ("prompt_select", "tell_anchor", "adapt_quant"):
            if key in values and values[key] is None:
                values[key] = "none"  # lm-eval's model_args parser reads the word none as None
        if isinstance(values.get("batch_size"), str) and values["batch_size"].isdigit():
            values["batch_size"] = int(values["batch_size"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the canonical JSON of the spec; names cache folders of later stages."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise TailoredError(f"{name}={value!r} must be a positive integer")
