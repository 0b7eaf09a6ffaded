"""Exact invariants of structured pruning on tiny random LLaMA models (GQA and MHA)."""

from __future__ import annotations

import copy

import pytest
import torch

from numeric import assert_close_to_scale
from prune_helpers import SHAPES, calibration_batch, hand_count, logits, tiny_llama
from tailored_harness.prune import CRITERIA, PruneSpec, prune_model
from tailored_harness.prune.plan import mask

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

ALL = sorted(CRITERIA)


UNITS = ["kv_group", "query_head"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("importance", ALL)
@pytest.mark.parametrize("unit", UNITS)
def test_ratio_zero_is_bit_identical(shape, importance, unit):
    model = tiny_llama(shape)
    before = logits(model)
    pruned, plan, counts = prune_model(model, PruneSpec(ratio=0.0, importance=importance, attention_unit=unit),
                                       calibration_batch(), progress=False)
    assert torch.equal(logits(pruned), before)
    assert counts["before"] == counts["after"]
    assert all(p.requires_grad for p in pruned.parameters())  # scoring restored what it froze


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("importance", ALL)
@pytest.mark.parametrize("layers", ["all", "1-2"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("unit", UNITS)
def test_pruned_model_equals_masked_dense_model(shape, importance, layers, bias, unit):
    if unit == "query_head" and shape == "mha":
        pytest.skip("one query head per KV head: query-head units have nothing to prune within a group")
    dense = tiny_llama(shape, bias=bias)
    reference = copy.deepcopy(dense)
    pruned, plan, counts = prune_model(dense, PruneSpec(ratio=0.5, layers=layers, importance=importance,
                                                        attention_unit=unit), calibration_batch(), progress=False)
    mask(reference, plan)
    # Cut and zeroed weights give the same sums with other matrix shapes, so other SIMD blocking:
    # equal up to float32 rounding relative to the logits' scale (tests/numeric.py).
    assert_close_to_scale(logits(pruned), logits(reference), what="pruned against masked dense logits")
    assert counts["after"]["total"] < counts["before"]["total"]
    pruned_layers = [i for i, (b, a) in enumerate(zip(counts["before"]["layers"], counts["after"]["layers"])) if b != a]
    assert pruned_layers == ([0, 1, 2] if layers == "all" else [1, 2])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("importance", ["param_first", "random"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("reduction", ["sum", "max"])
def test_global_ranking_prunes_to_uneven_widths_that_equal_the_masked_dense_model(shape, importance, unit, reduction):
    """Ranked across layers, widths differ between layers (a ``tailored_llama`` config says so) and
    the pruned model still computes what the masked dense one does."""
    if unit == "query_head" and shape == "mha":
        pytest.skip("one query head per KV head: query-head units have nothing to prune within a group")
    dense = tiny_llama(shape)
    reference = copy.deepcopy(dense)
    spec = PruneSpec(ratio=0.5, importance=importance, attention_unit=unit, ranking="global", group_reduction=reduction)
    pruned, plan, counts = prune_model(dense, spec, calibration_batch(), progress=False)
    mask(reference, plan)
    assert_close_to_scale(logits(pruned), logits(reference), what="pruned against masked dense logits")
    widths = pruned.config.layer_intermediate_sizes
    assert len(set(widths)) > 1 and sum(widths) == 3 * 48  # the uniform total (96 channels -> 48), unevenly
    assert counts["after"]["total"] < counts["before"]["total"]


def test_masking_something_else_is_caught():
    """The masked-equality test can fail: a plan that differs from what was cut gives other logits."""
    dense = tiny_llama("gqa")
    reference = copy.deepcopy(dense)
    pruned, plan, _ = prune_model(dense, PruneSpec(ratio=0.5, importance="l2"), progress=False)
    wrong = copy.deepcopy(plan)
    wrong.kept[0]["mlp"] = sorted(set(range(96)) - set(plan.kept[0]["mlp"]))[:48]
    mask(reference, wrong)
    assert (logits(pruned) - logits(reference)).abs().max().item() > 1e-3


def test_kv_groups_keep_their_query_heads():
    model = tiny_llama("gqa", layers=2)
    pruned, plan, _ = prune_model(model, PruneSpec(ratio=0.5, importance="random", seed=3), progress=False)
    for layer, kept in zip(pruned.model.layers, (plan.kept[0], plan.kept[1])):
        assert len(kept["attention"]) == 1
        assert layer.self_attn.q_proj.out_features == 2 * 16 and layer.self_attn.k_proj.out_features == 16
        assert layer.self_attn.o_proj.in_features == 32 and layer.mlp.down_proj.in_features == 48
    assert pruned.config.num_attention_heads == 2 and pruned.config.num_key_value_heads == 1


@pytest.mark.parametrize("layers", ["all", "1-2"])
def test_tied_embeddings_stay_one_tensor_and_counts_match_a_hand_count(layers):
    model = tiny_llama("gqa_tied")
    config = model.config
    dense_count = hand_count(config, [4] * 3, [2] * 3, [96] * 3)
    pruned, plan, counts = prune_model(model, PruneSpec(ratio=0.5, layers=layers, importance="l2"), progress=False)
    assert pruned.lm_head.weight is pruned.model.embed_tokens.weight
    pruned_layers = range(3) if layers == "all" else range(1, 3)
    heads = [2 if i in pruned_layers else 4 for i in range(3)]
    kv = [h // 2 for h in heads]
    mlp = [48 if i in pruned_layers else 96 for i in range(3)]
    assert counts["before"]["total"] == dense_count
    assert counts["after"]["total"] == hand_count(pruned.config, heads, kv, mlp) < dense_count


@pytest.mark.parametrize("layers", ["all", "1-2"])
def test_query_heads_go_as_many_from_every_group_and_every_kv_head_stays(layers):
    """8 query heads on 2 KV heads (groups of 4); at 0.5 each group keeps its 2 best heads."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=3, head_dim=8,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128)
    torch.manual_seed(0)
    dense = LlamaForCausalLM(config).eval()
    reference = copy.deepcopy(dense)
    pruned, plan, counts = prune_model(dense, PruneSpec(ratio=0.5, layers=layers, importance="param_first",
                                                        attention_unit="query_head"), calibration_batch(), progress=False)
    mask(reference, plan)
    assert (logits(pruned) - logits(reference)).abs().max().item() <= 1e-5
    pruned_layers = [0, 1, 2] if layers == "all" else [1, 2]
    assert sorted(plan.kept) == pruned_layers
    for index in pruned_layers:
        heads = plan.kept[index]["query"]
        assert [h // 4 for h in heads] == [0, 0, 1, 1] and "attention" not in plan.kept[index]
        attn = pruned.model.layers[index].self_attn
        assert attn.q_proj.out_features == 4 * 8 and attn.k_proj.out_features == 2 * 8
        assert attn.o_proj.in_features == 4 * 8 and attn.num_key_value_groups == 2
        assert counts["after"]["layers"][index]["query_heads"] == 4
        assert counts["after"]["layers"][index]["attention"] == 2
    widths = pruned.config.to_dict()
    if layers == "all":  # uniform: a plain LLaMA of 4 heads on 2 KV heads
        assert widths["model_type"] == "llama" and widths["num_attention_heads"] == 4
    else:  # layer 0 keeps groups of 4, layers 1-2 groups of 2
        assert widths["layer_num_attention_heads"] == [8, 4, 4] and widths["layer_num_key_value_heads"] == [2, 2, 2]


def test_query_heads_masked_otherwise_are_caught():
    """The masked-equality test can fail for query heads too: masking other heads gives other logits."""
    dense = tiny_llama("gqa")
    reference = copy.deepcopy(dense)
    pruned, plan, _ = prune_model(dense, PruneSpec(ratio=0.5, importance="l2", attention_unit="query_head"),
                                  progress=False)
    wrong = copy.deepcopy(plan)
    wrong.kept[0]["query"] = [h ^ 1 for h in plan.kept[0]["query"]]  # the other head of each group of 2
    mask(reference, wrong)
    assert (logits(pruned) - logits(reference)).abs().max().item() > 1e-3
