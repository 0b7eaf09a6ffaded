"""QLoRA: adapters trained on a 4-bit copy of the base (``adapt_quant``), through bitsandbytes.

:class:`QuantSpec` is pure (no torch): which 4-bit format, whether the per-block scales are
quantized again (double quantization), and the dtype the 4-bit layers compute in. The rest wraps the
standard calls: ``BitsAndBytesConfig`` for ``from_pretrained(..., quantization_config=...)``,
:func:`exact_cpu_kernels` and :func:`dequantize_linears`.

Two facts of bitsandbytes 0.50 on the CPU decide how scoring works (``tests/test_adapt_quant.py``
checks both):

* On a CPU with AVX512-BF16, an inference-mode ``Linear4bit`` repacks its weight on first use and
  computes through a bfloat16 kernel, whatever ``bnb_4bit_compute_dtype`` says, while training
  computes in the compute dtype. Scores would then depend on the CPU and differ from the function
  the adapter was trained on. :func:`exact_cpu_kernels` keeps every layer on the compute-dtype path.
* transformers' ``model.dequantize()`` goes through bfloat16 (it says so in a warning), which moves
  logits by whole units on a tiny model. :func:`dequantize_linears` uses bitsandbytes'
  ``dequantize_4bit`` in the layer's own dtype instead: the dense layer then computes exactly what
  the 4-bit layer computes (bit-identical outputs in float32).

PEFT's ``prepare_model_for_kbit_training`` is not called: it casts every full-precision tensor to
float32 and readies gradient checkpointing. Training computes in float32 on the CPU already and
needs no checkpointing at 50 shots of a few hundred tokens; leaving the loaded model as it is keeps
the scored model the trained one, and the dequantized twin (built from a fresh load) equal to both.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from typing import Any, Mapping

from tailored_harness.core import options
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.options import Boolean, Choice, check_fields, option

logger = logging.getLogger(__name__)

#: 4-bit formats (``adapt_quant``): ``none`` trains on the weights as loaded (plain LoRA).
SCHEMES = ("none", "nf4", "fp4")
#: dtypes the 4-bit layers compute in (``adapt_quant_compute``); ``auto``: float32 on the CPU (bfloat16
#: is very slow there without AVX-512), bfloat16 on CUDA.
COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")
#: the oldest bitsandbytes whose 4-bit layers and optimizers run on the CPU
MIN_BITSANDBYTES = (0, 50)


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """How the base of QLoRA training is quantized (each field's meaning is its declaration's help).

    Double quantization saves about 0.4 bits per weight; the compute dtype is what the 4-bit layers
    dequantize to and compute in.
    """

    scheme: str = option("none", "adapt_quant", Choice(SCHEMES, "4-bit scheme"),
                         "QLoRA: `nf4` or `fp4` trains each adapter on a 4-bit copy of the base (bitsandbytes; "
                         "`pip install 'tailored-harness[qlora]'`), `none`: plain LoRA (docs/adaptation.md)",
                         word_none=True)
    double_quant: bool = option(True, "adapt_quant_double", Boolean(),
                                "with `adapt_quant` only: double quantization of the per-block scales",
                                given_only=True)
    compute_dtype: str = option("auto", "adapt_quant_compute", Choice(COMPUTE_DTYPES, "compute dtype"),
                                "with `adapt_quant` only: the dtype 4-bit layers compute in, `float32`, `bfloat16` "
                                "or `float16` (`auto`: `float32` on the CPU, `bfloat16` on CUDA)", given_only=True)

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "QuantSpec":
        """The spec named by ``model_args``-style keys; ``None`` values take the defaults."""
        return options.from_args(cls, values)

    @property
    def active(self) -> bool:
        return self.scheme != "none"

    def given_options(self, values: Mapping[str, Any]) -> list[str]:
        """The quantization options set in ``values`` besides ``adapt_quant`` itself."""
        return options.given(QuantSpec, values)

    def resolved(self, device_type: str) -> "QuantSpec":
        """This spec with ``compute_dtype=auto`` made concrete for ``device_type``."""
        if self.compute_dtype != "auto":
            return self
        return dataclasses.replace(self, compute_dtype="bfloat16" if device_type == "cuda" else "float32")

    def label(self) -> str:
        """Short name of a resolved spec, e.g. ``nf4+dq/float32`` (part of the adapter's precision)."""
        return f"{self.scheme}{'+dq' if self.double_quant else ''}/{self.compute_dtype}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def bnb_config(self):
        """transformers' ``BitsAndBytesConfig`` for a resolved spec (bitsandbytes must be installed)."""
        import torch
        from transformers import BitsAndBytesConfig

        if self.compute_dtype == "auto":
            raise ValueError("resolve the compute dtype first (QuantSpec.resolved)")
        require_bitsandbytes(self.scheme)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=self.scheme,
                                  bnb_4bit_use_double_quant=self.double_quant,
                                  bnb_4bit_compute_dtype=getattr(torch, self.compute_dtype))


def require_bitsandbytes(scheme: str) -> None:
    """One line when bitsandbytes is missing or too old to run 4-bit layers on the CPU."""
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        raise TailoredError(f"adapt_quant={scheme} trains on a 4-bit base through bitsandbytes, which is not "
                            f"installed: pip install 'tailored-harness[qlora]'") from None
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < MIN_BITSANDBYTES:
        raise TailoredError(f"adapt_quant={scheme} needs bitsandbytes >= "
                            f"{'.'.join(map(str, MIN_BITSANDBYTES))} (installed: {version}): "
                            f"pip install 'tailored-harness[qlora]'")


def model_quantization(model) -> QuantSpec | None:
    """The :class:`QuantSpec` ``model``'s weights were loaded with, read from the model itself; ``None``
    for a model that is not 4-bit (or quantized some other way)."""
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    if config is None or not getattr(model, "is_loaded_in_4bit", False):
        return None
    if not isinstance(config, dict):
        config = config.to_dict()
    compute = str(config.get("bnb_4bit_compute_dtype", "float32")).removeprefix("torch.")
    return QuantSpec(scheme=config.get("bnb_4bit_quant_type", "fp4"),
                     double_quant=bool(config.get("bnb_4bit_use_double_quant", False)), compute_dtype=compute)


def four_bit_linears(model) -> dict[str, Any]:
    """``{module name: bitsandbytes Linear4bit}`` of ``model`` (PEFT's LoRA wrappers hold theirs as ``base_layer``)."""
    import bitsandbytes as bnb

    return {name: module for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear4bit)}


def exact_cpu_kernels(model) -> int:
    """Keep every 4-bit layer of ``model`` on its compute-dtype path on the CPU (see the module
    docstring); returns how many layers were set. Must run before the first inference forward."""
    layers = four_bit_linears(model)
    for module in layers.values():
        module.support_avx512bf16_for_cpu = False
    return len(layers)


def dequantize_linears(model) -> int:
    """Replace every 4-bit layer of ``model`` (in place) by a ``torch.nn.Linear`` holding its
    dequantized weight (out, in) in the quantization's dtype, so the dense layer computes what the
    4-bit one does; the model's quantization config goes too (transformers' own clean-up), so it saves
    as an ordinary checkpoint. Returns how many layers were replaced."""
    import bitsandbytes as bnb
    import torch
    from bitsandbytes.functional import dequantize_4bit

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, bnb.nn.Linear4bit):
                continue
            if getattr(child.weight.quant_state, "packing_format_for_cpu", False):
                raise RuntimeError("a 4-bit layer was repacked for bitsandbytes' bfloat16 CPU kernel; "
                                   "call exact_cpu_kernels before the first forward")
            weight = dequantize_4bit(child.weight.data, child.weight.quant_state)  # (out, in)
            dense = torch.nn.Linear(child.in_features, child.out_features, bias=child.bias is not None,
                                    dtype=weight.dtype, device=weight.device)
            with torch.no_grad():
                dense.weight.copy_(weight)
                if child.bias is not None:
                    dense.bias.copy_(child.bias.to(weight.dtype))
            setattr(parent, name, dense)
            replaced += 1
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return replaced


def load_4bit(folder: str, spec: QuantSpec, dtype: str = "auto", trust_remote_code: bool = False,
              revision: str | None = None, device: str = "cpu"):
    """``folder`` loaded with its linear layers in 4 bits (all but the output layer, which transformers
    keeps in full precision, as it does the embeddings and norms), on the CPU-exact path
    (:func:`exact_cpu_kernels`). ``spec`` must be resolved (:meth:`QuantSpec.resolved`)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tailored_harness.models import modeling_tailored

    modeling_tailored.register()  # per-layer-width checkpoints load without remote code
    model = AutoModelForCausalLM.from_pretrained(
        folder, revision=revision, quantization_config=spec.bnb_config(), trust_remote_code=trust_remote_code,
        dtype="auto" if dtype == "auto" else getattr(torch, dtype), device_map={"": device})
    settle(model)
    return model.eval()


def settle(model) -> None:
    """What every freshly loaded 4-bit model needs before its first forward, however it was loaded
    (:func:`load_4bit`, or lm-eval's ``HFLM`` in the hf backend): :func:`exact_cpu_kernels`, :func:`own_memory`."""
    exact_cpu_kernels(model)
    own_memory(model)


def own_memory(model) -> None:
    """Copy ``model``'s full-precision tensors (embeddings, norms, the output layer) out of the
    checkpoint's memory map, in place. Loaded in the checkpoint's own dtype they are views of the
    mapped file, which keeps all of it mapped; every page of it was read while the projections were
    quantized, so the whole file would stay resident (2 GiB of a 4-layer LLaMA-7B shape in bfloat16,
    ``benchmarks/qlora_memory.py``) for the few tensors that stay in full precision."""
    import torch

    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.device.type == "cpu" and tensor.is_floating_point():
                tensor.data = tensor.data.clone()
