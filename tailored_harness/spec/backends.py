"""The scoring backends and vLLM adapter strategies by name: what ``backend=`` and
``adapter_strategy=`` accept, where each class lives, and the ``model_args`` only one backend takes.

:class:`~tailored_harness.spec.model.ModelSpec` validates against these tables without importing a
backend (the backends import the spec, so the spec importing them would close a cycle); a class is
imported from its ``module:Class`` target only when a backend is built
(:func:`tailored_harness.backends.backend_class`). A new backend is one row here and one class there;
tests/test_layout.py checks that every target imports and carries its row's name.
"""

from __future__ import annotations

import dataclasses

from tailored_harness.core.options import Boolean, Choice, Integer, Number, keys_of, option

_ENGINE = "vLLM engine argument, passed through; `backend=vllm` only"


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """vLLM's engine arguments as ``model_args`` (declarations only), passed to vLLM as they are;
    ``None``: vLLM's own default, or on the CPU :func:`tailored_harness.backends.vllm.engine_defaults`."""

    tensor_parallel_size: int | None = option(None, "tensor_parallel_size", Integer(1), _ENGINE, shown="vLLM's")
    data_parallel_size: int | None = option(None, "data_parallel_size", Integer(1), _ENGINE, shown="vLLM's")
    max_model_len: int | None = option(None, "max_model_len", Integer(1),
                                       f"{_ENGINE} (vLLM's name for `max_length`: give one)", shown="vLLM's")
    gpu_memory_utilization: float | None = option(None, "gpu_memory_utilization", Number(0, 1, low_open=True),
                                                  _ENGINE, shown="vLLM's")
    kv_cache_memory_bytes: int | None = option(None, "kv_cache_memory_bytes", Integer(1), _ENGINE, shown="vLLM's")
    enforce_eager: bool | None = option(None, "enforce_eager", Boolean(), _ENGINE, shown="vLLM's")
    max_num_seqs: int | None = option(None, "max_num_seqs", Integer(1), _ENGINE, shown="vLLM's")


#: vLLM engine arguments of ModelSpec, passed to vLLM as they are (None: vLLM's own default).
VLLM_ENGINE_ARGS = keys_of(EngineOptions)


@dataclasses.dataclass(frozen=True)
class BackendEntry:
    """One backend: ``target`` (``module:Class``), the library it scores on (for messages), and the
    ``model_args`` keys that configure it alone (given with another backend, they are an error)."""

    target: str
    label: str
    keys: tuple[str, ...] = ()


BACKENDS: dict[str, BackendEntry] = {
    "hf": BackendEntry("tailored_harness.backends.hf:HFBackend", "transformers"),
    "vllm": BackendEntry("tailored_harness.backends.vllm:VLLMBackend", "vLLM", (*VLLM_ENGINE_ARGS, "adapter_strategy")),
}

DEFAULT_ADAPTER_STRATEGY = "merged"
#: How ``backend=vllm`` serves per-task adapters: name -> ``module:Class``.
ADAPTER_STRATEGIES: dict[str, str] = {
    "merged": "tailored_harness.backends.vllm_adapters:MergedStrategy",
    "native": "tailored_harness.backends.vllm_adapters:NativeLoRAStrategy",
}


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    """How ``backend=vllm`` serves adapters (declaration only; ``None``: :data:`DEFAULT_ADAPTER_STRATEGY`)."""

    adapter_strategy: str | None = option(None, "adapter_strategy", Choice(tuple(ADAPTER_STRATEGIES), "strategy"),
                                          "how `backend=vllm` serves per-task adapters: `merged` or `native` (docs/vllm.md)", shown=f"`{DEFAULT_ADAPTER_STRATEGY}`")
