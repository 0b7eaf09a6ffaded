"""Every supported family, on a tiny random model of its own (tailored_harness.suite.tiny.FAMILY_CONFIGS):
the same exact invariants LLaMA's pruning keeps (ratio 0 bit-identical, pruned equals masked dense,
save and reload identical, the checkpoint loads without the plugin), and the one-line refusal of an
architecture the plugin does not know."""

from __future__ import annotations

import copy

import pytest
import torch

from numeric import assert_close_to_scale
from prune_helpers import FAMILIES, calibration_batch, load_without_plugin, logits, probe, tiny_family
from tailored_harness.core.errors import TailoredError
from tailored_harness.models.families import SUPPORTED, family_of
from tailored_harness.prune import PruneSpec, prune_model
from tailored_harness.prune.plan import mask
from tailored_harness.prune.units import parameter_counts

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

UNITS = ["kv_group", "query_head"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("importance", ["param_first", "l2", "random"])
@pytest.mark.parametrize("unit", UNITS)
def test_ratio_zero_is_bit_identical(family, importance, unit):
    model = tiny_family(family)
    before = logits(model)
    pruned, plan, counts = prune_model(model, PruneSpec(ratio=0.0, importance=importance, attention_unit=unit),
                                       calibration_batch(), progress=False)
    assert torch.equal(logits(pruned), before)
    assert counts["before"] == counts["after"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("importance", ["param_first", "l2"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("ranking", ["layer", "global"])
def test_pruned_model_equals_masked_dense_model(family, importance, unit, ranking):
    dense = tiny_family(family)
    reference = copy.deepcopy(dense)
    spec = PruneSpec(ratio=0.5, layers="1-2" if ranking == "layer" else "all", importance=importance,
                     attention_unit=unit, ranking=ranking)
    pruned, plan, counts = prune_model(dense, spec, calibration_batch(), progress=False)
    mask(reference, plan)
    assert_close_to_scale(logits(pruned), logits(reference), what=f"{family}: pruned against masked dense logits")
    assert counts["after"]["total"] < counts["before"]["total"]
    assert family_of(pruned.config).name == family


@pytest.mark.parametrize("family", FAMILIES)
def test_fused_and_separate_weights_count_the_same_units(family):
    """The unit counts read from the weights are the config's, whatever the layout."""
    model = tiny_family(family)
    layer = parameter_counts(model)["layers"][0]
    assert (layer["attention"], layer["query_heads"], layer["mlp"]) == (2, 4, 96)


@pytest.mark.parametrize("family", FAMILIES)
def test_per_layer_widths_save_reload_and_load_without_the_plugin(family, tmp_path):
    from transformers import AutoModelForCausalLM

    from tailored_harness.prune import checkpoint

    spec = PruneSpec(ratio=0.5, importance="param_first", attention_unit="query_head", ranking="global")
    pruned, plan, counts = prune_model(tiny_family(family), spec, calibration_batch(), progress=False)
    assert pruned.config.model_type == f"tailored_{family}"
    assert len(set(pruned.config.layer_intermediate_sizes)) > 1
    folder = checkpoint.save(pruned, None, tmp_path / "ckpt", {"spec": {}})
    reloaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(reloaded) is type(pruned)
    assert torch.equal(logits(reloaded), logits(pruned))
    torch.save({"ids": probe(), "logits": logits(pruned)}, tmp_path / "expected.pt")
    out = load_without_plugin(folder, tmp_path / "expected.pt", tmp_path)
    assert out.split()[1] == type(pruned).__name__ and out.split()[2] == "transformers_modules", out


def test_an_unknown_architecture_is_refused_in_one_line_naming_the_supported_families():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=101, n_embd=32, n_layer=2, n_head=2, n_positions=64))
    with pytest.raises(TailoredError) as err:
        prune_model(model, PruneSpec(ratio=0.2, importance="l2"), calibration_batch(), progress=False)
    message = str(err.value)
    assert "\n" not in message and "'gpt2'" in message
    assert all(name in message for name in SUPPORTED)


def test_kv_groups_of_one_kv_head_are_said_to_prune_no_attention(caplog):
    """Gemma 3 270M's shape: one KV head per layer. KV-group pruning then removes MLP channels only,
    and says so; query heads still go under attention_unit=query_head."""
    import transformers

    from tailored_harness.suite.tiny import family_config

    config = family_config("gemma3_text", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=128)
    torch.manual_seed(0)
    for unit, heads_after in (("kv_group", 4), ("query_head", 2)):
        model = transformers.AutoModelForCausalLM.from_config(copy.deepcopy(config)).eval()  # pruning edits its config
        caplog.clear()
        with caplog.at_level("WARNING", logger="tailored_harness.prune.pipeline"):
            pruned, plan, counts = prune_model(model, PruneSpec(ratio=0.5, importance="l2", attention_unit=unit),
                                               calibration_batch(), progress=False)
        warned = [r for r in caplog.records if "single KV head" in r.getMessage()]
        assert len(warned) == (unit == "kv_group")
        assert [layer["query_heads"] for layer in counts["after"]["layers"]] == [heads_after] * 2
        assert [layer["mlp"] for layer in counts["after"]["layers"]] == [48, 48]


def test_vllm_refuses_only_a_qwen2_whose_heads_no_longer_fill_the_hidden_size():
    """vLLM's Qwen2 takes head_dim as hidden / heads: dense Qwen2 runs, pruned heads are refused (also
    before pruning); every other family, and stock architectures the plugin does not extend, run."""
    from tailored_harness.models.vllm_model import refusal

    qwen2 = {"model_type": "qwen2", "hidden_size": 128, "num_attention_heads": 4}
    pruned = {"model_type": "tailored_qwen2", "hidden_size": 128, "num_attention_heads": 4, "head_dim": 32,
              "layer_num_attention_heads": [4, 2, 4]}
    assert refusal(qwen2) is None
    assert "qwen2" in refusal(qwen2, pruned=True) and "\n" not in refusal(qwen2, pruned=True)
    assert "backend=hf" in refusal(pruned)
    assert refusal({**pruned, "model_type": "tailored_qwen3"}) is None
    assert refusal({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4}, pruned=True) is None
    assert refusal({"model_type": "gpt2"}) is None


def _llama_twin(phi3):
    """A LLaMA holding Phi-3's weights with qkv_proj and gate_up_proj split into their parts: the same
    function (both are RMSNorm, rotary, SiLU-gated decoders), in separate projections."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = phi3.config
    config = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                         num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                         num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                         rms_norm_eps=c.rms_norm_eps, rope_parameters=c.rope_parameters,
                         tie_word_embeddings=c.tie_word_embeddings, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    q, kv, m = c.num_attention_heads * 16, c.num_key_value_heads * 16, c.intermediate_size
    state = {}
    for name, tensor in phi3.state_dict().items():
        if name.endswith("qkv_proj.weight"):
            stem = name[: -len("qkv_proj.weight")]
            for part, piece in zip(("q_proj", "k_proj", "v_proj"), tensor.split([q, kv, kv])):
                state[f"{stem}{part}.weight"] = piece
        elif name.endswith("gate_up_proj.weight"):
            stem = name[: -len("gate_up_proj.weight")]
            state[f"{stem}gate_proj.weight"], state[f"{stem}up_proj.weight"] = tensor.split([m, m])
        else:
            state[name] = tensor
    twin = LlamaForCausalLM(config).to(torch.float32).eval()
    twin.load_state_dict(state, strict=True)
    return twin


@pytest.mark.parametrize("importance", ["param_first", "param_second", "vectorize", "l2"])
@pytest.mark.parametrize("reduction", ["sum", "max"])
def test_fused_weights_score_their_units_as_the_separate_projections_of_a_twin(importance, reduction):
    """Phi-3's fused qkv_proj and gate_up_proj, split into a LLaMA twin computing the same function:
    every unit of every kind gets the same score from the fused layout as from the separate one."""
    from tailored_harness.prune.importance import score_units
    from tailored_harness.prune.units import ATTENTION, MLP, QUERY

    phi3 = tiny_family("phi3")
    twin = _llama_twin(phi3)
    assert_close_to_scale(logits(phi3), logits(twin), what="phi3 against its llama twin")
    batch = calibration_batch()
    kinds = (ATTENTION, QUERY, MLP)
    got, expected = (score_units(model, importance, [0, 1, 2], input_ids=batch.input_ids, labels=batch.labels,
                                 progress=False, kinds=kinds, reduction=reduction) for model in (phi3, twin))
    for layer in range(3):
        for kind in kinds:
            assert_close_to_scale(got[layer][kind], expected[layer][kind], what=f"layer {layer} {kind}")
