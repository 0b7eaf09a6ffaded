"""Importance criteria (strategy objects in a registry) and the engine that turns them into unit scores.

LLM-Pruner's criteria, per weight element ``w`` with batch gradient ``g`` (of the calibration loss,
the mean over the N samples of each sample's mean next-token loss over its labelled tokens) and
``s``, the mean over samples of the squared per-sample gradient:

============== ================================= =========================================
name           element salience                  unit score
============== ================================= =========================================
l1             ``|w|``                           sum over the unit's weights
l2             ``w**2``                          sum (same ranking as the L2 norm)
random         (none)                            uniform random, seeded
vectorize      ``w * g``                         sum of ``|sum|`` (first-order Taylor, vector-wise)
param_first    ``|w * g|``                       sum (first-order Taylor, element-wise)
param_second   ``w**2 * s``                      sum (second-order, diagonal Fisher)
param_mix      ``|w * g - 0.5 * w**2 * s|``      sum (first plus second order)
============== ================================= =========================================

A unit's score in one member (a projection it owns rows or columns of) sums over the rows or columns
it owns there (a KV group's ``head_dim`` rows of ``k_proj``, ...); its members' scores then combine by
the spec's ``group_reduction`` (:data:`REDUCTIONS`): their sum by default, as LLM-Pruner's
``grouping_strategy=sum``, or their largest. (A mean ranks as the sum does: every unit of a kind has
as many members.) ``vectorize`` takes the magnitude of
each member's signed sum along one row or column first, then sums those magnitudes, exactly as
LLM-Pruner's ``TaylorImportance`` does (``salience.sum(1).abs()`` per layer, then the group sum);
taking one magnitude of the whole unit's signed sum instead (this module before ``PRUNE_VERSION`` 2)
lets the members' terms cancel one another.

Memory. LLM-Pruner keeps a full gradient and a full squared-gradient accumulator per weight, about
three copies of the model. Here no weight gradient is ever formed: weights are frozen, the
calibration batch runs forward once with ``inputs_embeds`` requiring grad (decoder layers
checkpointed, so their inner activations are recomputed during backward instead of kept), and every
projection of a selected layer keeps its input ``X`` (N, L, in). When the gradient ``D`` (N, L, out) of its
output arrives during the one backward pass, the weight gradient is rebuilt a block of rows at a
time (per sample ``D_n^T X_n`` for the second-order terms), reduced to per-row or per-column sums
and dropped. Peak memory is the weights plus the projections' inputs and one layer's activations.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tailored_harness.prune.units import (ATTENTION, COLS, MLP, ROWS, Geometry, arrange, layer_units, member_unit_scores,
                                          submodule)
from tailored_harness.taskio.task_format import IGNORE

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

BLOCK_ELEMENTS = 1 << 22  # rows per block are chosen so one fp32 block of per-sample gradients stays ~16 MB

Scores = dict  # layer index -> {"attention": (kv_groups,) or "query": (kv_groups, group), "mlp": (channels,)} float64
DEFAULT_KINDS = (ATTENTION, MLP)


class Criterion:
    """Base class. ``salience(w, g, s)`` maps fp32 blocks (rows, in) to element salience."""

    name = "base"
    needs_gradients = False
    needs_second_order = False
    signed = False  # True: each member's row or column sum is signed; its magnitude is what adds up

    def salience(self, w, g=None, s=None):
        raise NotImplementedError


CRITERIA: dict[str, Criterion] = {}


def register_criterion(cls):
    CRITERIA[cls.name] = cls()
    return cls


@register_criterion
class L1(Criterion):
    name = "l1"

    def salience(self, w, g=None, s=None):
        return w.abs()


@register_criterion
class L2(Criterion):
    name = "l2"

    def salience(self, w, g=None, s=None):
        return w * w


@register_criterion
class Random(Criterion):
    """Scores drawn from the spec's seed; ignores the weights (the floor any criterion must beat)."""

    name = "random"


@register_criterion
class TaylorVector(Criterion):
    name = "vectorize"
    needs_gradients = True
    signed = True

    def salience(self, w, g=None, s=None):
        return w * g


@register_criterion
class TaylorElement(Criterion):
    name = "param_first"
    needs_gradients = True

    def salience(self, w, g=None, s=None):
        return (w * g).abs()


@register_criterion
class SecondOrder(Criterion):
    name = "param_second"
    needs_gradients = True
    needs_second_order = True

    def salience(self, w, g=None, s=None):
        return w * w * s


@register_criterion
class Mix(Criterion):
    name = "param_mix"
    needs_gradients = True
    needs_second_order = True

    def salience(self, w, g=None, s=None):
        return (w * g - 0.5 * w * w * s).abs()


#: group reduction name -> (members, units) member scores -> (units,) unit scores
REDUCTIONS = {
    "sum": lambda stacked: stacked.sum(0),
    "max": lambda stacked: stacked.max(0).values,
}


def _zero_scores(model, layers: list[int], kinds: tuple[str, ...]) -> Scores:
    import torch

    geometry = Geometry.of(model.config)
    return {i: {kind: torch.zeros(n, dtype=torch.float64) for kind, n in layer_units(model.model.layers[i], geometry).items()
                if kind in kinds} for i in layers}


def _members(geometry: Geometry, kinds: tuple[str, ...]):
    return [(kind, member) for kind in kinds for member in geometry.members(kind)]


def _rows_per_block(samples: int, columns: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, samples * columns))


def member_salience(criterion: Criterion, weight, x=None, grad_out=None) -> "torch.Tensor":
    """Salience of one projection summed along the axis units do not own, per row and per column.

    ``weight``: (out, in). ``x``: (N, L, in) inputs; ``grad_out``: (N, L, out), the gradient of the
    mean calibration loss w.r.t. the outputs (so the per-sample gradient is ``N * D_n^T X_n``).
    Returns ``(per_row (out,), per_col (in,))`` in float64, on the CPU wherever the weight is: unit
    scores are small, and selection (a pure function of them) runs there.
    """
    import torch

    out_features, in_features = weight.shape
    per_row = torch.zeros(out_features, dtype=torch.float64, device=weight.device)
    per_col = torch.zeros(in_features, dtype=torch.float64, device=weight.device)
    n = x.shape[0] if x is not None else 1
    xf = x.float() if x is not None else None
    step = _rows_per_block(n if criterion.needs_second_order else 1, in_features)
    for start in range(0, out_features, step):
        rows = slice(start, min(out_features, start + step))
        w = weight[rows].float()
        g = s = None
        if criterion.needs_gradients:
            d = grad_out[..., rows].float()  # (N, L, b)
            if criterion.needs_second_order:
                per_sample = torch.einsum("nlb,nli->nbi", d, xf)  # (N, b, in) = D_n^T X_n
                g = per_sample.sum(0)
                s = per_sample.pow(2).sum(0).mul_(n)  # mean_n (N * D_n^T X_n)^2
                del per_sample
            else:
                g = torch.einsum("nlb,nli->bi", d, xf)
        sal = criterion.salience(w, g, s)
        per_row[rows] = sal.sum(1, dtype=torch.float64)
        per_col += sal.sum(0, dtype=torch.float64)
    return per_row.cpu(), per_col.cpu()


def _member_lists(layers: list[int], kinds: tuple[str, ...]) -> dict:
    """``{layer: {kind: []}}``: each member's unit scores (units,) are appended, reduced at the end."""
    return {i: {kind: [] for kind in kinds} for i in layers}


def _add_member(scores: dict, kind: str, member, layer, geometry: Geometry, per_row, per_col,
                signed: bool = False) -> None:
    """Append one member's unit scores, its per-row or per-column salience summed over each unit's
    rows or columns (magnitudes first for a signed criterion: LLM-Pruner's ``vectorize``); a fused
    weight appends one score per part its kind owns, as separate projections would."""
    per_index = per_row if member.axis == ROWS else per_col
    geometry = geometry.at(layer)
    scores[kind].extend(member_unit_scores(member, per_index.abs() if signed else per_index,
                                           layer_units(layer, geometry), geometry))


def _finish(model, scores: dict, reduction: str | None = None) -> Scores:
    """Each kind's member scores reduced (``reduction`` from :data:`REDUCTIONS`; ``None``: scores are
    final already), in the shape selection reads (:func:`arrange`)."""
    import torch

    geometry = Geometry.of(model.config)
    out = {}
    for i, kinds in scores.items():
        layer = model.model.layers[i]
        out[i] = {k: arrange(k, layer, geometry.at(layer), v if reduction is None else REDUCTIONS[reduction](torch.stack(v)))
                  for k, v in kinds.items()}
    return out


def weight_scores(model, criterion: Criterion, layers: list[int], seed: int = 0, progress: bool = True,
                  kinds: tuple[str, ...] = DEFAULT_KINDS, reduction: str = "sum") -> Scores:
    """Scores from the weights alone (``l1``, ``l2``) or from the seed (``random``, one draw per unit:
    no members to reduce)."""
    import torch
    from tqdm.auto import tqdm

    if isinstance(criterion, Random):
        generator = torch.Generator().manual_seed(seed)
        scores = {i: {k: torch.rand(v.shape, generator=generator, dtype=torch.float64) for k, v in units.items()}
                  for i, units in _zero_scores(model, layers, kinds).items()}
        return _finish(model, scores)
    scores = _member_lists(layers, kinds)
    geometry = Geometry.of(model.config)
    for i in tqdm(layers, desc=f"scoring units ({criterion.name})", unit="layer", disable=not progress):
        layer = model.model.layers[i]
        for kind, member in _members(geometry, kinds):
            per_row, per_col = member_salience(criterion, submodule(layer, member.module).weight.data)
            _add_member(scores[i], kind, member, layer, geometry, per_row, per_col, criterion.signed)
    return _finish(model, scores, reduction)


def _recompute_activations(model, dropouts: dict) -> None:
    """Keep only each decoder layer's input during the forward pass and recompute the rest in backward.

    Activations otherwise cost about half a LLaMA-7B layer's weights per layer at 10 x 64 tokens.
    Transformers checkpoints layers only in training mode, so the model is put in training mode with
    attention dropout set to 0 (LLaMA has no other dropout); the caller restores both.
    """
    if not getattr(model, "supports_gradient_checkpointing", False):
        model.eval()
        return
    for module in dropouts:
        module.attention_dropout = 0.0
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.20 names it so
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()


def _checkpointing(model) -> bool:
    return bool(getattr(model, "is_activation_checkpointing", getattr(model, "is_gradient_checkpointing", False)))


def _stop_recomputing(model) -> None:
    if hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def calibration_loss(model, embeds, labels) -> "torch.Tensor":
    """Mean over samples of each sample's mean next-token loss on its labelled positions.

    ``embeds``: (N, L, hidden); ``labels``: (N, L), -100 where no loss is taken. Averaging per sample
    first makes ``N * D_n^T X_n`` exactly sample n's own gradient (the second-order terms need that)
    even when samples label different numbers of tokens; with every token labelled it equals the
    usual mean over all tokens.
    """
    import torch

    logits = model(inputs_embeds=embeds, use_cache=False).logits[:, :-1].float()  # (N, L-1, vocab)
    target = labels[:, 1:].to(logits.device)
    scored = target != IGNORE
    if not bool(scored.any(dim=1).all()):
        raise ValueError("every calibration sample needs at least one labelled token")
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.clamp(min=0).reshape(-1),
                                               reduction="none").view_as(target)
    per_sample = (losses * scored).sum(dim=1) / scored.sum(dim=1)
    return per_sample.mean()


def gradient_scores(model, criterion: Criterion, layers: list[int], input_ids, labels=None,
                    progress: bool = True, kinds: tuple[str, ...] = DEFAULT_KINDS, reduction: str = "sum") -> Scores:
    """Taylor scores from one forward/backward pass over ``input_ids`` (N, L), the loss taken on
    ``labels`` (N, L; default: every token, -100 marks positions without loss); see the module docstring."""
    from tqdm.auto import tqdm

    scores = _member_lists(layers, kinds)
    geometry = Geometry.of(model.config)
    members = _members(geometry, kinds)
    bar = tqdm(total=len(layers) * len(members), desc=f"scoring units ({criterion.name})",
               unit="weight", disable=not progress)

    def forward_hook(layer_index, kind, member):
        def hook(module, args, output):
            x = args[0].detach()

            def on_grad(grad):
                per_row, per_col = member_salience(criterion, module.weight.data, x, grad.detach())
                _add_member(scores[layer_index], kind, member, model.model.layers[layer_index], geometry,
                            per_row, per_col, criterion.signed)
                bar.update()

            output.register_hook(on_grad)

        return hook

    handles = [submodule(model.model.layers[i], m.module).register_forward_hook(forward_hook(i, kind, m))
               for i in layers for kind, m in members]
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training, checkpointing = model.training, _checkpointing(model)
    dropouts = {m: m.attention_dropout for m in model.modules() if hasattr(m, "attention_dropout")}
    try:
        _recompute_activations(model, dropouts)
        model.requires_grad_(False)
        device = model.get_input_embeddings().weight.device
        ids = input_ids.to(device)
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        loss = calibration_loss(model, embeds, ids if labels is None else labels)
        logger.info("calibration loss %.4f on %d samples of up to %d tokens", loss.item(), *ids.shape)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        for name, p in model.named_parameters():
            p.requires_grad_(trainable[name])
        for module, value in dropouts.items():
            module.attention_dropout = value
        if not checkpointing and getattr(model, "supports_gradient_checkpointing", False):
            _stop_recomputing(model)
        model.train(was_training)
        bar.close()
    return _finish(model, scores, reduction)


def score_units(model, criterion_name: str, layers: list[int], input_ids=None, labels=None, seed: int = 0,
                progress: bool = True, kinds: tuple[str, ...] = DEFAULT_KINDS, reduction: str = "sum") -> Scores:
    """Per-unit importance for every selected layer: ``{layer: {kind: scores}}`` for each of ``kinds``
    (``attention``: (kv,), ``query``: (kv, group), ``mlp``: (channels,)), members combined by
    ``reduction`` (:data:`REDUCTIONS`).

    ``input_ids`` / ``labels`` (N, L): the calibration batch of the gradient criteria (labels default
    to every token; see :mod:`tailored_harness.prune.calibration`).
    """
    criterion = CRITERIA[criterion_name]
    if criterion.needs_gradients:
        if input_ids is None:
            raise ValueError(f"importance={criterion_name!r} needs calibration input_ids")
        return gradient_scores(model, criterion, layers, input_ids, labels, progress=progress, kinds=kinds,
                               reduction=reduction)
    return weight_scores(model, criterion, layers, seed=seed, progress=progress, kinds=kinds, reduction=reduction)


__all__ = ["ATTENTION", "COLS", "CRITERIA", "REDUCTIONS", "Criterion", "register_criterion", "score_units", "member_salience"]
