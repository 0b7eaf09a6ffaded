"""Scoring backends: strategy objects that turn a :class:`ModelSpec` into lm-eval LMs.

A backend owns the loaded model. ``route(task_name)`` names the scoring configuration a task uses
(its adapter, or the plain model) and ``activate(key)`` yields the lm-eval ``LM`` that scores it,
with that configuration in force. New backends (vLLM) register themselves in :data:`BACKENDS` by name.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tailored_harness.errors import TailoredError

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.spec import ModelSpec

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

BACKENDS: dict[str, Callable[["ModelSpec"], "Backend"]] = {}


def register_backend(name: str):
    def decorate(cls):
        BACKENDS[name] = cls
        return cls

    return decorate


def resolve_device(requested: str | None) -> str:
    """Map the requested device onto this machine.

    lm-eval's CLI asks for ``cuda:0`` by default; on a machine without CUDA that would crash deep in
    torch, so CUDA requests fall back to the CPU with one warning. A CUDA index beyond the visible
    devices is a user error.
    """
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            logger.warning("device=%s requested but CUDA is not available here; using the CPU", requested)
            return "cpu"
        index = int(requested.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise TailoredError(f"device={requested!r} does not exist; valid: cuda:0..cuda:{count - 1}, cpu")
    if requested.startswith("mps") and not torch.backends.mps.is_available():
        logger.warning("device=%s requested but MPS is not available here; using the CPU", requested)
        return "cpu"
    return requested


def check_model_source(name: str, what: str = "pretrained") -> str:
    """Return ``name`` if it is a usable model folder or something that may be a hub id.

    A string that can only be a path (absolute, ``./``, ``~``, or not shaped like ``org/name``)
    must exist; an existing folder must hold a ``config.json`` (tokenizer folders are exempt).
    """
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise TailoredError(f"{what}={name!r} is a file, not a model folder")
        if what == "pretrained" and not (path / "config.json").is_file():
            raise TailoredError(f"{what}={name!r} has no config.json, so it is not a Hugging Face model folder")
        return str(path)
    if name.startswith(("/", ".", "~")) or not HUB_ID.match(name):
        raise TailoredError(f"{what}={name!r}: no such model folder")
    return name


def resolve_pretrained(spec: "ModelSpec") -> str:
    """The model folder (or hub id) that ``spec.pretrained`` names: a GGUF file (``pretrained=x.gguf``
    or ``gguf_file=``) is converted once into a cached Hugging Face folder, which is returned."""
    from tailored_harness import gguf_import

    converted = gguf_import.resolve(spec.pretrained, spec.gguf_file, spec.revision, spec.dtype)
    return converted if converted is not None else check_model_source(spec.pretrained)


class Backend:
    """Base class: a loaded model plus the lm-eval LM that scores each task."""

    name = "base"
    #: Route key of the unadapted model; tokenizer details and metadata come from its LM.
    BASE_ROUTE = "base"

    def route(self, task_name: str | None) -> str:
        """Route key for a task's requests; tasks with equal keys are scored in one call."""
        return self.BASE_ROUTE

    def lm_for_route(self, key: str) -> "LM":
        raise NotImplementedError

    @contextlib.contextmanager
    def activate(self, key: str) -> Iterator["LM"]:
        """The LM for route ``key``, with that route's adapter (or none) active inside the block."""
        yield self.lm_for_route(key)

    def prepare(self, tasks: dict[str, Any] | None) -> None:
        """Build what scoring needs from the run's tasks (pruned weights, ...); called once, before
        the first request. ``tasks``: ``{name: lm-eval Task}`` of the run, or ``None`` if unknown."""

    @property
    def default_lm(self) -> "LM":
        """The LM used for tokenizer details and metadata (same tokenizer for every task)."""
        return self.lm_for_route(self.BASE_ROUTE)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name}

    def close(self) -> None:
        """Free what the backend holds beyond Python objects (a vLLM engine); it cannot score after."""


@register_backend("hf")
class HFBackend(Backend):
    """Hugging Face transformers scoring through lm-eval's own ``HFLM``."""

    name = "hf"

    def __init__(self, spec: "ModelSpec") -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.pruning: dict[str, Any] | None = None
        self.adapters: dict[str, Any] = {}  # task -> tailored_harness.adapt.pipeline.Adapter
        self.adapter_names: dict[str, str] = {}  # task -> PEFT adapter name
        self.peft_model = None
        #: the folder or hub id loaded: ``pretrained``, or the folder a GGUF file was converted into
        self.pretrained = resolve_pretrained(spec)
        tokenizer = check_model_source(spec.tokenizer, "tokenizer") if spec.tokenizer else None
        self.lm = self._load(self.pretrained, tokenizer)

    def _load(self, pretrained: str, tokenizer: str | None, revision: str | None = None) -> "LM":
        from huggingface_hub.errors import HFValidationError
        from lm_eval.models.huggingface import HFLM

        spec = self.spec
        try:
            return HFLM(
                pretrained=pretrained,
                tokenizer=tokenizer,
                revision=revision or spec.revision,
                dtype=spec.dtype,
                device=self.device,
                batch_size=spec.batch_size,
                max_batch_size=spec.max_batch_size,
                max_length=spec.max_length,
                trust_remote_code=spec.trust_remote_code,
            )
        except (OSError, HFValidationError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TailoredError(f"could not load pretrained={pretrained!r}: {first_line}") from err

    def prepare(self, tasks: dict[str, Any] | None) -> None:
        """Prune, then adapt (each from the cache when it can), before the first request is scored."""
        self.prune_and_load(tasks)
        self._adapt(tasks)

    def prune_and_load(self, tasks: dict[str, Any] | None) -> None:
        """The dense model already in memory is pruned in place, saved to the cache and dropped; the
        saved folder is then loaded like any checkpoint, so what is scored is exactly what was saved."""
        if self.prune_only(tasks):
            tokenizer = self.spec.tokenizer or self.pretrained
            self.lm = self._load(self.pruning["checkpoint"], check_model_source(tokenizer, "tokenizer"),
                                 revision=self.spec.revision)

    def prune_only(self, tasks: dict[str, Any] | None) -> bool:
        """Prune (or find in the cache) and drop the model in memory; ``self.pruning`` describes the
        saved checkpoint. Returns False, and does nothing, when the spec asks for no pruning."""
        prune = self.spec.prune_spec()
        if prune is None:
            return False
        import gc

        from tailored_harness.prune import checkpoint, pipeline

        base = checkpoint.base_identity(self.pretrained, self.spec.revision)
        folder, reused, report = pipeline.prune_loaded(self.lm.model, self.lm.tokenizer, prune, base, tasks)
        if reused:
            logger.info("reusing cached pruned checkpoint %s", folder)
        logger.info("%s", checkpoint.describe(report))
        self.lm = None
        gc.collect()
        params = report["parameters"]
        self.pruning = {"checkpoint": str(folder), "fingerprint": report["fingerprint"], "reused": reused,
                        "model_type": report["model_type"], "parameters_before": params["before"]["total"],
                        "parameters_after": params["after"]["total"]}
        return True

    def _adapt(self, tasks: dict[str, Any] | None) -> None:
        """Train (or reuse) one adapter per task on the model being scored, then load them all
        from their saved folders into one PEFT model."""
        adapt = self.spec.adapt_spec()
        if adapt is None:
            return
        from tailored_harness.adapt import pipeline

        model, self.adapters = self.train_adapters(tasks)
        if not self.adapters:
            return
        self.peft_model, self.adapter_names = pipeline.load_adapters(model, self.adapters)
        self.lm._model = self.peft_model

    def train_adapters(self, tasks: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Find or train one adapter per task on the model in memory (pruned, if asked); returns the
        model, free of LoRA layers again, and ``{task: Adapter}``."""
        from tailored_harness.adapt import pipeline

        identity = pipeline.model_identity(self.scored_folder, self.spec.revision)
        return pipeline.adapt_tasks(self.lm.model, self.lm.tokenizer, tasks, self.spec.adapt_spec(), identity)

    @property
    def scored_folder(self) -> str:
        """The folder (or hub id) whose weights are scored: the pruned checkpoint, or ``pretrained``."""
        return self.pruning["checkpoint"] if self.pruning else self.pretrained

    def route(self, task_name: str | None) -> str:
        return self.adapter_names.get(task_name, self.BASE_ROUTE)

    def lm_for_route(self, key: str) -> "LM":
        if key != self.BASE_ROUTE and key not in self.adapter_names.values():
            raise KeyError(f"unknown route {key!r}")
        return self.lm

    @contextlib.contextmanager
    def activate(self, key: str) -> Iterator["LM"]:
        lm = self.lm_for_route(key)
        if self.peft_model is None:
            yield lm
        elif key == self.BASE_ROUTE:
            with self.peft_model.disable_adapter():
                yield lm
        else:
            self.peft_model.set_adapter(key)
            yield lm

    def info(self) -> dict[str, Any]:
        adapters = {task: {"folder": str(a.folder), "fingerprint": a.report["fingerprint"], "reused": a.reused,
                           "split": a.report["split"], "shots": len(a.report["documents"])}
                    for task, a in self.adapters.items()}
        return {"backend": self.name, "device": self.device, "pretrained": self.pretrained, "pruning": self.pruning,
                "adapters": adapters}


from tailored_harness import vllm_backend  # noqa: E402,F401  registers "vllm" (vLLM itself is imported lazily)
