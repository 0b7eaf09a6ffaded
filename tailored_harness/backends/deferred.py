"""lm-eval's ``HFLM`` with its weights read on first need, so that a run served from the cache reads none.

``--model tailored`` must answer lm-eval's questions (tokenizer, chat template, ranks, device) as soon
as it is built, but it learns what it will score only when the run's tasks are known: with pruning
on, the dense weights are needed only when the pruned checkpoint is not cached yet, and under
``backend=vllm`` transformers needs no weights at all when the checkpoint and every adapter are
cached. :class:`DeferredHFLM` is ``HFLM`` set up exactly as lm-eval sets it up (config, tokenizer,
pad token, device, accelerate ranks), with one difference: ``_create_model``, the step lm-eval's
docstring names as the one to override, only records its arguments. :meth:`DeferredHFLM.materialize`
runs it, and the steps ``HFLM.__init__`` takes after it, when the weights are wanted.

Imports lm-eval's ``HFLM``: import this module only where transformers scoring is built.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM

logger = logging.getLogger(__name__)


class NoWeights(torch.nn.Module):
    """Stands in for the model until :meth:`DeferredHFLM.materialize`: it holds no parameters, moves
    to any device for free, and refuses to compute, so a missed ``materialize`` fails loudly."""

    def tie_weights(self) -> None:
        """``HFLM.__init__`` ties the model's embeddings; there are none yet."""

    def forward(self, *args: Any, **kwargs: Any):
        raise RuntimeError("the model's weights were not loaded (DeferredHFLM.materialize was not called)")


class DeferredHFLM(HFLM):
    """``HFLM(**kwargs)`` without its weights until :meth:`materialize` (see the module docstring)."""

    def __init__(self, *, defer: bool = True, quantization=None, **kwargs: Any) -> None:
        """``quantization``: a ``BitsAndBytesConfig`` the weights are loaded with (QLoRA's 4-bit base),
        then settled as every 4-bit load is (:func:`tailored_harness.adapt.quant.settle`)."""
        self._deferred: dict[str, Any] | None = None
        self._quantization = quantization
        super().__init__(**kwargs)
        if not defer:
            self.materialize()

    def _create_model(self, **kwargs: Any) -> None:
        """What ``HFLM.__init__`` calls to read the weights: keep the arguments, read nothing."""
        self._deferred = kwargs
        self._model = NoWeights()

    @property
    def materialized(self) -> bool:
        return self._deferred is None

    def materialize(self):
        """Read the weights now (once), as ``HFLM.__init__`` would have; returns the model."""
        if self._deferred is None:
            return self.model
        kwargs, self._deferred = self._deferred, None
        logger.debug("loading the weights of %s", kwargs.get("pretrained"))
        if self._quantization is not None:
            kwargs = {**kwargs, "quantization_config": self._quantization}
        super()._create_model(**kwargs)
        if self._quantization is not None:
            from tailored_harness.adapt.quant import settle

            settle(self.model)
        self.model.eval()
        self.model.tie_weights()
        placed_by_others = (kwargs.get("parallelize") or kwargs.get("tp_plan") is not None or kwargs.get("autogptq")
                            or hasattr(self, "accelerator"))
        if ((kwargs.get("gpus") or 0) >= 1 or str(self.device) == "mps") and not placed_by_others:
            try:  # HFLM.__init__ places the model on the requested device the same way
                self.model.to(self.device)
            except ValueError:  # quantised or device-mapped weights stay where they were loaded
                logger.debug("could not move %s to %s", kwargs.get("pretrained"), self.device)
        return self.model
