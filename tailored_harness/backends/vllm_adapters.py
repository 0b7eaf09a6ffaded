"""How per-task LoRA adapters reach vLLM: strategies selected by ``adapter_strategy``, found by name
in :data:`tailored_harness.spec.backends.ADAPTER_STRATEGIES`.

A strategy decides which model folder the engine of each route loads, which extra engine arguments
that engine needs, and what is set on lm-eval's ``VLLM`` while a route's requests are scored.

- ``merged`` (default): each task's adapter is merged into its own model folder
  (:mod:`tailored_harness.adapt.merge`); a task's requests run on an engine over that folder, so
  switching tasks restarts the engine. Nothing of vLLM's LoRA machinery is involved.
- ``native``: one engine over the unadapted weights with vLLM's multi-LoRA enabled; each task's
  requests carry a ``LoRARequest`` for its adapter folder, requests of tasks without one carry none.
  The engine is restricted to the adapters' projections (``lora_target_modules``), so vLLM never
  wraps ``lm_head``: its LoRA logits path is where the known ``prompt_logprobs`` bugs live (a crash
  in ``punica_cpu.add_lora_logits`` on the CPU, vLLM #29955/#16668; an ``lm_head`` delta dropped
  from prompt logprobs, #51594), and the adapters never touch ``lm_head`` anyway. The parity tests
  (``pytest -m vllm``) cover this strategy as they cover ``merged``.
"""

from __future__ import annotations

import contextlib
import logging
import typing
from typing import TYPE_CHECKING, Any, Iterator

from tailored_harness.core.errors import TailoredError

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.adapt.pipeline import Adapter

logger = logging.getLogger(__name__)

#: vLLM versions on which ``native`` passed the parity tests of tests/test_vllm_backend.py.
NATIVE_VERIFIED = ("0.32.0+cpu",)
#: ``max_lora_rank`` values vLLM accepts, used when vLLM does not say (config.lora.MaxLoRARanks).
FALLBACK_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class AdapterStrategy:
    """Serves ``adapters`` (``{task: Adapter}``, trained on the model folder ``base``) on vLLM.

    Every task with an adapter has a route named after the task; any other route key is a task
    without one, scored on ``base`` unadapted.
    """

    name = "base"

    def __init__(self, base: str, adapters: dict[str, "Adapter"]) -> None:
        self.base = base
        self.adapters = dict(sorted(adapters.items()))

    def prepare(self, tokenizer: str, trust_remote_code: bool) -> None:
        """Build what the routes need (files, ...); runs before any engine starts."""

    def folder(self, route: str) -> str:
        """The model folder the engine for ``route`` loads; routes with equal folders share an engine."""
        return self.base

    def engine_args(self) -> dict[str, Any]:
        """Extra engine arguments for every engine this strategy starts."""
        return {}

    @contextlib.contextmanager
    def scoring(self, lm: "LM", route: str) -> Iterator["LM"]:
        """``lm`` with ``route``'s adapter in force for the requests scored inside the block."""
        yield lm

    def adapter_info(self, task: str) -> dict[str, Any]:
        return {}


class MergedStrategy(AdapterStrategy):
    """Each adapter merged into its own model folder (cached by adapter fingerprint)."""

    name = "merged"

    def __init__(self, base: str, adapters: dict[str, "Adapter"]) -> None:
        super().__init__(base, adapters)
        self.merged: dict[str, str] = {}

    def prepare(self, tokenizer: str, trust_remote_code: bool) -> None:
        from tailored_harness.adapt.merge import merge_adapter

        for task, adapter in self.adapters.items():
            folder, reused = merge_adapter(self.base, adapter.folder, tokenizer, trust_remote_code)
            logger.info("%s merged model for %s: %s", "reusing" if reused else "wrote", task, folder)
            self.merged[task] = str(folder)

    def folder(self, route: str) -> str:
        return self.merged.get(route, self.base)

    def adapter_info(self, task: str) -> dict[str, Any]:
        return {"merged": self.merged.get(task)}


class NativeLoRAStrategy(AdapterStrategy):
    """One engine with vLLM's multi-LoRA; each task's requests carry their adapter's ``LoRARequest``.

    One adapter slot on the device is enough, since lm-eval scores one route at a time; every
    adapter stays in host memory (``max_cpu_loras``), so switching tasks never rereads a folder.
    """

    name = "native"

    def __init__(self, base: str, adapters: dict[str, "Adapter"]) -> None:
        super().__init__(base, adapters)
        from vllm.lora.request import LoRARequest

        # vLLM's adapter ids start at 1; the order is fixed so a run names them the same way each time
        self.requests = {task: LoRARequest(task, index, str(adapter.folder))
                         for index, (task, adapter) in enumerate(self.adapters.items(), start=1)}
        from tailored_harness.backends.vllm_runtime import vllm_version

        version = vllm_version()
        if adapters and version not in NATIVE_VERIFIED:
            logger.warning("adapter_strategy=native passed the parity tests on vLLM %s, not on the installed %s; "
                           "check it with pytest -m vllm tests/test_vllm_backend.py, or use adapter_strategy=merged",
                           ", ".join(NATIVE_VERIFIED), version)

    def engine_args(self) -> dict[str, Any]:
        if not self.adapters:
            return {}
        configs = [adapter.report["spec"] for adapter in self.adapters.values()]
        targets = sorted({module for adapter in self.adapters.values() for module in _wrapped_modules(adapter)})
        return {"enable_lora": True, "max_lora_rank": lora_rank_slot(max(config["r"] for config in configs)),
                "max_loras": 1, "max_cpu_loras": len(self.adapters), "lora_target_modules": targets}

    @contextlib.contextmanager
    def scoring(self, lm: "LM", route: str) -> Iterator["LM"]:
        lm.lora_request = self.requests.get(route)  # None: the unadapted weights
        try:
            yield lm
        finally:
            lm.lora_request = None

    def adapter_info(self, task: str) -> dict[str, Any]:
        return {"lora_int_id": self.requests[task].lora_int_id}


def lora_rank_slot(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of rank ``rank``."""
    try:
        from vllm.config.lora import MaxLoRARanks

        allowed = tuple(sorted(typing.get_args(MaxLoRARanks))) or FALLBACK_LORA_RANKS
    except ImportError:
        allowed = FALLBACK_LORA_RANKS
    for slot in allowed:
        if slot >= rank:
            return slot
    raise TailoredError(f"lora_r={rank} is above the largest LoRA rank vLLM serves ({allowed[-1]}); "
                        "use adapter_strategy=merged, which has no rank limit")


def _wrapped_modules(adapter: "Adapter") -> list[str]:
    """The modules an adapter's LoRA wraps, as PEFT saved them (``adapter_config.json``): the family's
    own names (Phi-3's fused ``qkv_proj``, say), which is what vLLM matches ``lora_target_modules`` against."""
    import json

    modules = json.loads((adapter.folder / "adapter_config.json").read_text())["target_modules"]
    return [modules] if isinstance(modules, str) else list(modules)
