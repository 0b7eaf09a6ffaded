"""Scoring backends: strategy objects that turn a :class:`~tailored_harness.spec.model.ModelSpec` into
lm-eval LMs (``hf``: :mod:`.hf`, ``vllm``: :mod:`.vllm`), found by name in
:data:`tailored_harness.spec.backends.BACKENDS`. Importing this package imports no backend."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tailored_harness.spec.backends import ADAPTER_STRATEGIES, BACKENDS

if TYPE_CHECKING:
    from tailored_harness.backends.base import Backend
    from tailored_harness.backends.vllm_adapters import AdapterStrategy


def backend_class(name: str) -> type["Backend"]:
    """The class of backend ``name`` (a key of ``BACKENDS``; the spec has validated it)."""
    return load_target(BACKENDS[name].target)


def strategy_class(name: str) -> type["AdapterStrategy"]:
    """The class of vLLM adapter strategy ``name`` (a key of ``ADAPTER_STRATEGIES``)."""
    return load_target(ADAPTER_STRATEGIES[name])


def load_target(target: str) -> Any:
    """The object a ``module:attribute`` string names, imported now."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
