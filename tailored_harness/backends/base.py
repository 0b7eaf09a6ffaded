"""The backend interface, and what every backend resolves the same way: the device and the model source.

A backend owns the loaded model. ``route(task_name)`` names the scoring configuration a task uses
(its adapter, or the plain model) and ``activate(key)`` yields the lm-eval ``LM`` that scores it,
with that configuration in force. Backends are found by name in
:data:`tailored_harness.spec.backends.BACKENDS`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from tailored_harness.backends.built import Built
from tailored_harness.core.errors import TailoredError

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.spec.model import ModelSpec

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

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
    from tailored_harness.models import gguf_import

    converted = gguf_import.resolve(spec.pretrained, spec.gguf_file, spec.revision, spec.dtype)
    return converted if converted is not None else check_model_source(spec.pretrained)


def adapter_info(adapter) -> dict[str, Any]:
    """What ``config.tailored.adapters`` shows of one task's adapter (a
    :class:`tailored_harness.adapt.pipeline.Adapter`): where it is, what it trained on, what it cost."""
    report = adapter.report
    return {"folder": str(adapter.folder), "fingerprint": report["fingerprint"], "reused": adapter.reused,
            "split": report["split"], "shots": len(report["documents"]), "method": report.get("method", "sft"),
            "scope": report.get("scope", "task"), "cost": report.get("cost"),
            **{key: report[key] for key in ("anchor", "quantization") if report.get(key)}}


class Backend:
    """Base class: a loaded model plus the lm-eval LM that scores each task."""

    name = "base"
    #: Route key of the unadapted model; tokenizer details and metadata come from its LM.
    BASE_ROUTE = "base"
    #: What the run scores (:class:`~tailored_harness.backends.built.Built`), set by ``prepare``; frozen, so
    #: the class default is shared safely.
    built: Built = Built()

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

    def built_info(self) -> dict[str, Any]:
        """What ``config.tailored`` shows of the built artifacts, the same for every backend: the pruning
        record, each task's adapter (with :meth:`adapter_extra`), the tasks left unadapted and why
        (only when there are some), and :meth:`prompt_info`."""
        built = self.built
        adapters = {task: {**adapter_info(a), **self.adapter_extra(task)} for task, a in built.adapters.items()}
        return {"pruning": built.pruning, "adapters": adapters,
                **({"unadapted": dict(built.unadapted)} if built.unadapted else {}), **self.prompt_info()}

    def adapter_extra(self, task: str) -> dict[str, Any]:
        """What this backend adds to a task's adapter record (how it serves it); nothing by default."""
        return {}

    def prompt_info(self) -> dict[str, Any]:
        """``{"prompt": {task: what the choice recorded}}`` under ``prompt=best`` and ``{"prompt_select":
        {task: the pool, the picks and the matcher}}`` under ``prompt_select``; nothing by default."""
        out: dict[str, Any] = {}
        if self.spec.prompt_spec().choice != "default":
            out["prompt"] = {task: choice.info() for task, choice in sorted(self.built.prompt_choices.items())}
        if self.spec.select_spec().select != "none":
            out["prompt_select"] = {task: sel.info() for task, sel in sorted(self.built.selections.items())}
        return out

    def close(self) -> None:
        """Free what the backend holds beyond Python objects (a vLLM engine); it cannot score after."""
