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

#: vLLM engine arguments of ModelSpec, passed to vLLM as they are (None: vLLM's own default).
VLLM_ENGINE_ARGS = ("tensor_parallel_size", "data_parallel_size", "max_model_len", "gpu_memory_utilization",
                    "kv_cache_memory_bytes", "enforce_eager", "max_num_seqs")


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
