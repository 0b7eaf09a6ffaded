"""Train one LoRA adapter on a task's shots: the loss covers only the gold continuation.

Pure cores: :func:`epoch_batches` (which examples share a micro-batch) and :func:`batches` (token ids
and labels from ``(context, continuation)`` pairs). :func:`train_adapter` wraps the model with PEFT,
trains and returns the PEFT model and the loss of every optimizer step. Deterministic for a seed on
one machine. On CUDA the forward pass runs under bfloat16 autocast (LoRA weights stay float32); on
the CPU everything is float32.

Where the time goes, and what is not spent (``benchmarks/adapt_step.py`` measures both):

* The output layer runs only where the loss reads it. A BoolQ shot is some 120 tokens of passage
  and question and one answer token, and the output layer of a small model is a large share of its
  weights (SmolLM2: 28M of 135M, a 49,152-way softmax at every position). :func:`continuation_loss`
  asks the model for logits at the answer positions only (``logits_to_keep``), which gives exactly
  the loss that full logits give.
* Examples of similar length share a micro-batch (:func:`epoch_batches`), so right padding, which
  costs as much as real tokens, stays small.
"""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING, Iterator

from tailored_harness.adapt.spec import AdaptSpec
from tailored_harness.taskio.task_format import IGNORE, encode_pair, pad_id, right_padded

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

def epoch_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Example indices of one epoch's micro-batches, similar lengths together, in a seeded order.

    The examples are shuffled, then stably sorted by length (equal lengths stay shuffled), cut into
    groups of ``batch_size``, and the groups are shuffled: a micro-batch is padded to its longest
    member, so grouping by length is what keeps the padding small (on 50 BoolQ shots, padded tokens
    fall from 46% of the real ones in random batches of 4 to 6%). Every example is in exactly one group.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lengths.__getitem__)
    groups = [order[first:first + batch_size] for first in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    return groups


def batches(encoded: list[tuple[list[int], int]], groups: list[list[int]],
            pad: int) -> Iterator[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]:
    """``(input_ids, attention_mask, labels)`` batches (B, T) of ``encoded`` rows, one per group
    (:func:`tailored_harness.taskio.task_format.right_padded`: labels only on continuation tokens)."""
    for group in groups:
        yield right_padded([encoded[i] for i in group], pad)


def learning_rate(step: int, total: int, spec: AdaptSpec) -> float:
    """Linear warmup over ``warmup_ratio`` of the steps, then cosine decay to zero."""
    warmup = math.ceil(spec.warmup_ratio * total)
    if step < warmup:
        return spec.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return spec.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def lora_config(spec: AdaptSpec, config):
    """PEFT's LoRA config for ``spec`` on a model of ``config``'s family (its modules for the spec's targets)."""
    from peft import LoraConfig

    from tailored_harness.models.families import lora_modules

    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                      target_modules=lora_modules(config, spec.targets), bias="none", task_type="CAUSAL_LM")


def precision(model) -> str:
    """How training computes on ``model``: bfloat16 autocast on CUDA, the weights' dtype elsewhere; on a
    4-bit base (QLoRA), its format and compute dtype (``cpu:nf4+dq/float32``), read from the model."""
    from tailored_harness.adapt.quant import model_quantization

    param = next(model.parameters())
    return precision_of(param.device.type, param.dtype, model_quantization(model))


def precision_of(device_type: str, dtype, quant=None) -> str:
    """:func:`precision` of weights of ``dtype`` (a ``torch.dtype`` or its name) on ``device_type``,
    quantized as ``quant`` (a resolved :class:`~tailored_harness.adapt.quant.QuantSpec`) if given."""
    if quant is not None:
        return f"{device_type}:{quant.label()}"
    return "cuda:bfloat16-autocast" if device_type == "cuda" else f"{device_type}:{str(dtype).removeprefix('torch.')}"


def expected_precision(device_type: str, dtype: str | None, config_dtype, quant=None) -> str | None:
    """:func:`precision` of a model not loaded yet: ``dtype`` as given to ``from_pretrained`` (``auto``
    takes the config's dtype, as transformers does), ``config_dtype`` the config's, ``quant`` the
    4-bit base it will be loaded as (a :class:`~tailored_harness.adapt.quant.QuantSpec`; inactive or
    ``None``: full precision). ``None`` when only the weights would tell (``auto`` and no dtype in
    the config): the caller loads them then."""
    if quant is not None and quant.active:
        return precision_of(device_type, None, quant.resolved(device_type))
    if device_type == "cuda":
        return precision_of(device_type, None)
    if dtype == "auto":
        dtype = config_dtype
    elif dtype is None:  # transformers falls back to torch's default dtype
        import torch

        dtype = torch.get_default_dtype()
    return None if dtype is None else precision_of(device_type, dtype)


def optimizer_steps(examples: int, spec: AdaptSpec) -> int:
    per_epoch = math.ceil(math.ceil(examples / spec.batch_size) / spec.grad_accum)
    return per_epoch * spec.epochs


def token_count(tokenizer, pairs: list[tuple[str, str]], max_len: int) -> int:
    """Tokens of ``pairs`` as training encodes them (context and continuation, cut at ``max_len``)."""
    return sum(len(encode_pair(tokenizer, context, continuation, max_len)[0]) for context, continuation in pairs)


def train_adapter(model, tokenizer, pairs: list[tuple[str, str]], spec: AdaptSpec, desc: str = "adapting",
                  progress: bool = True):
    """Wrap ``model`` with a fresh LoRA adapter (named ``default``), train it on ``pairs``.

    Returns ``(peft_model, losses)``: ``losses`` has the mean continuation loss of every optimizer
    step. ``peft_model.unload()`` gives ``model`` back without LoRA layers.
    """
    import torch
    from peft import get_peft_model
    from tqdm.auto import tqdm

    torch.manual_seed(spec.seed)  # LoRA A initialisation and dropout masks
    peft_model = get_peft_model(model, lora_config(spec, model.config))
    encoded = [encode_pair(tokenizer, context, continuation, spec.max_len) for context, continuation in pairs]
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)
    total = optimizer_steps(len(encoded), spec)
    device = next(model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    rng = random.Random(spec.seed)
    losses: list[float] = []
    was_training = peft_model.training
    peft_model.train()
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress)
    try:
        for _ in range(spec.epochs):
            groups = epoch_batches([len(ids) for ids, _ in encoded], spec.batch_size, rng)
            micro = list(batches(encoded, groups, pad_id(tokenizer)))
            for first in range(0, len(micro), spec.grad_accum):
                group = micro[first:first + spec.grad_accum]
                tokens = sum(int((labels != IGNORE).sum()) for _, _, labels in group)
                step_loss = 0.0
                for input_ids, mask, labels in group:
                    with autocast:
                        loss = continuation_loss(peft_model, input_ids.to(device), mask.to(device), labels.to(device))
                    loss = loss / tokens
                    loss.backward()
                    step_loss += loss.item()
                for group_ in optimizer.param_groups:
                    group_["lr"] = learning_rate(len(losses), total, spec)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(step_loss)
                bar.update()
                bar.set_postfix(loss=f"{step_loss:.4f}")
    finally:
        bar.close()
        peft_model.train(was_training)
    peft_model.eval()
    return peft_model, losses


def scored_positions(labels: "torch.Tensor") -> "torch.Tensor":
    """Positions whose output predicts a labelled token in some row: ``p`` with ``labels[b, p + 1]``
    labelled for some ``b``; sorted, (k,). ``labels``: (B, T)."""
    import torch

    return torch.nonzero((labels[:, 1:] != IGNORE).any(dim=0)).flatten()


def continuation_loss(model, input_ids: "torch.Tensor", attention_mask: "torch.Tensor",
                      labels: "torch.Tensor") -> "torch.Tensor":
    """Summed next-token cross-entropy over labelled positions (the caller divides by the step's tokens).

    ``input_ids``, ``attention_mask``, ``labels``: (B, T). The model computes its output layer at
    the :func:`scored_positions` only (``logits_to_keep`` takes a tensor of positions), giving logits
    (B, k, vocab) instead of (B, T, vocab); positions that are labelled in one row but not another
    are ignored there. The sum equals the full-logits loss (``tests/test_adapt_train.py``). Summing
    and dividing by the tokens of the whole accumulated step makes the step's gradient that of the
    mean over all its continuation tokens, whatever the split into micro-batches.
    """
    import torch

    positions = scored_positions(labels)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions).logits
    targets = labels[:, positions + 1]
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
