"""Importance criteria: the memory-light engine equals a plain autograd computation of the same formula."""

from __future__ import annotations

import pytest
import torch

from numeric import assert_close_to_scale
from prune_helpers import calibration, calibration_batch, tiny_llama
from tailored_harness.prune.importance import CRITERIA, score_units
from tailored_harness.prune.units import ATTENTION, MLP, QUERY, ROWS, Geometry, reduce_to_units, submodule

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)


def _weight_grads(model, ids, labels):
    """Weight gradients the ordinary way (``.grad`` on every weight) of the mean over samples of
    each sample's own mean loss, every sample run on its own (so padding cannot matter)."""
    model.zero_grad()
    for sample, label in zip(ids, labels):
        (model(input_ids=sample[None], labels=label[None]).loss / len(ids)).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad()
    return grads


def brute_force_scores(model, name, ids, labels=None, reduction="sum"):
    """LLM-Pruner's recipe, literally: full gradients, per-sample squared gradients, then the formulas,
    each member's unit scores combined by their sum or (``reduction="max"``) their largest.

    Computed in float64 on a copy of ``model``: the test is about the algebra, so the reference carries
    no rounding of its own and what remains is the engine's float32 rounding (see ``tests/numeric.py``).
    """
    import copy

    model = copy.deepcopy(model).double()
    criterion = CRITERIA[name]
    labels = ids if labels is None else labels
    batch = _weight_grads(model, ids, labels)
    squares = {}
    if criterion.needs_second_order:
        for sample, label in zip(ids, labels):
            for n, g in _weight_grads(model, sample[None], label[None]).items():
                squares[n] = squares.get(n, 0) + g * g / len(ids)
    geometry = Geometry.of(model.config)
    scores = {}
    for i, layer in enumerate(model.model.layers):
        scores[i] = {}
        for kind in (ATTENTION, QUERY, MLP):
            parts = []
            for member in geometry.members(kind):
                (part,) = member.parts  # LLaMA's projections are separate: one part each
                param = f"model.layers.{i}.{member.module}.weight"
                w = submodule(layer, member.module).weight.detach()
                sal = criterion.salience(w, batch[param], squares.get(param))
                per_index = sal.sum(1) if member.axis == ROWS else sal.sum(0)
                if criterion.signed:  # LLM-Pruner's vectorize: |sum| per layer and channel, then the group sum
                    per_index = per_index.abs()
                parts.append(reduce_to_units(per_index.double(), geometry.width(part.width)))
            scores[i][kind] = sum(parts) if reduction == "sum" else torch.stack(parts).amax(0)
    return scores


@pytest.mark.parametrize("shape", ["gqa", "mha"])
@pytest.mark.parametrize("name", ["vectorize", "param_first", "param_second", "param_mix", "l1", "l2"])
@pytest.mark.parametrize("labelled", ["all", "continuation"])
def test_engine_matches_brute_force(shape, name, labelled):
    model = tiny_llama(shape)
    batch = calibration_batch()
    ids, labels = (calibration(), None) if labelled == "all" else (batch.input_ids, batch.labels)
    expected = brute_force_scores(model, name, ids, labels)
    got = score_units(model, name, [0, 1, 2], input_ids=ids, labels=labels, progress=False,
                      kinds=(ATTENTION, QUERY, MLP))
    kv = model.config.num_key_value_heads
    for i in range(3):
        for kind in (ATTENTION, MLP):
            assert_close_to_scale(got[i][kind], expected[i][kind], what=f"layer {i} {kind}")
        # query heads: one row per KV group, each head summed over its q_proj rows and o_proj columns
        assert_close_to_scale(got[i][QUERY], expected[i][QUERY].reshape(kv, -1), what=f"layer {i} query heads")
    assert all(p.grad is None for p in model.parameters())  # no weight gradient was ever formed


@pytest.mark.parametrize("name", ["param_first", "vectorize", "l1"])
def test_max_reduction_takes_each_units_largest_member(name):
    """``group_reduction=max``: a unit's score is its largest member's (k_proj, q_proj, ... each summed
    over the unit's rows or columns there), and it ranks otherwise than the sum does."""
    model = tiny_llama("gqa")
    ids = calibration()
    expected = brute_force_scores(model, name, ids, reduction="max")
    got = score_units(model, name, [0, 1, 2], input_ids=ids, progress=False, kinds=(ATTENTION, QUERY, MLP),
                      reduction="max")
    summed = score_units(model, name, [0, 1, 2], input_ids=ids, progress=False, kinds=(MLP,))
    for i in range(3):
        for kind in (ATTENTION, MLP):
            assert_close_to_scale(got[i][kind], expected[i][kind], what=f"layer {i} {kind}")
        assert_close_to_scale(got[i][QUERY], expected[i][QUERY].reshape(2, -1), what=f"layer {i} query heads")
    assert any(not torch.equal(got[i][MLP].argsort(), summed[i][MLP].argsort()) for i in range(3))


def test_scores_have_one_value_per_unit_and_differ_between_criteria():
    model = tiny_llama("gqa")
    first = score_units(model, "param_first", [0], input_ids=calibration(), progress=False)[0]
    l2 = score_units(model, "l2", [0], progress=False)[0]
    assert first[ATTENTION].shape == (2,) and first[MLP].shape == (96,)
    assert not torch.equal(torch.argsort(first[MLP]), torch.argsort(l2[MLP]))


def test_random_scores_follow_the_seed():
    model = tiny_llama("gqa")
    a = score_units(model, "random", [0, 1], seed=1, progress=False)
    b = score_units(model, "random", [0, 1], seed=1, progress=False)
    c = score_units(model, "random", [0, 1], seed=2, progress=False)
    assert torch.equal(a[1][MLP], b[1][MLP]) and not torch.equal(a[1][MLP], c[1][MLP])


def test_gradient_criteria_need_calibration():
    with pytest.raises(ValueError, match="param_first"):
        score_units(tiny_llama("gqa"), "param_first", [0], progress=False)


@pytest.mark.parametrize("name", ["param_first", "param_second"])
def test_right_padding_changes_no_score(name):
    """Padding added after every sample's last token (label -100) is seen by no labelled token."""
    from tailored_harness.taskio.task_format import IGNORE

    model = tiny_llama("gqa")
    batch = calibration_batch()
    padded_ids = torch.cat([batch.input_ids, torch.full((len(batch.input_ids), 5), 3)], dim=1)
    padded_labels = torch.cat([batch.labels, torch.full((len(batch.labels), 5), IGNORE)], dim=1)
    plain = score_units(model, name, [0, 1, 2], input_ids=batch.input_ids, labels=batch.labels, progress=False)
    padded = score_units(model, name, [0, 1, 2], input_ids=padded_ids, labels=padded_labels, progress=False)
    for i in range(3):
        for kind in (ATTENTION, MLP):
            assert_close_to_scale(padded[i][kind], plain[i][kind], what=f"layer {i} {kind}")


def test_labels_decide_what_the_scores_measure():
    """Scoring only the continuation ranks units differently from scoring every token."""
    model = tiny_llama("gqa")
    batch = calibration_batch()
    every = score_units(model, "param_first", [0], input_ids=batch.input_ids, progress=False)[0]
    tail = score_units(model, "param_first", [0], input_ids=batch.input_ids, labels=batch.labels, progress=False)[0]
    assert not torch.allclose(every[MLP], tail[MLP])


def test_a_sample_without_labels_is_an_error():
    from tailored_harness.taskio.task_format import IGNORE

    model = tiny_llama("gqa")
    ids = calibration()
    labels = ids.clone()
    labels[1] = IGNORE
    with pytest.raises(ValueError, match="at least one labelled token"):
        score_units(model, "param_first", [0], input_ids=ids, labels=labels, progress=False)
