"""Pruned checkpoints: exact save/load in both formats, loading without the plugin, cache by fingerprint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from prune_helpers import calibration_batch, load_without_plugin, logits, probe, tiny_llama
from tailored_harness.core.errors import TailoredError
from tailored_harness.prune import PruneSpec, checkpoint, prune_model, prune_pretrained
from tailored_harness.prune.plan import PrunePlan

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)


def _save(tmp_path, layers, shape="gqa", ratio=0.5, unit="kv_group"):
    model = tiny_llama(shape)
    pruned, plan, counts = prune_model(model, PruneSpec(ratio=ratio, layers=layers, importance="param_first",
                                                        attention_unit=unit), calibration_batch(), progress=False)
    folder = checkpoint.save(pruned, None, tmp_path / "ckpt", {"fingerprint": "x", "plan": plan.to_dict()})
    return pruned, plan, folder


@pytest.mark.parametrize("layers,shape,model_type,unit", [
    ("all", "gqa", "llama", "kv_group"), ("1-2", "gqa", "tailored_llama", "kv_group"),
    ("all", "mha", "tailored_llama", "kv_group"), ("all", "gqa_tied", "llama", "kv_group"),
    ("1-2", "gqa_tied", "tailored_llama", "kv_group"),
    # query heads: layers 1-2 keep groups of 1 next to layer 0's groups of 2 (a group size per layer)
    ("all", "gqa", "llama", "query_head"), ("1-2", "gqa", "tailored_llama", "query_head")])
def test_save_then_from_pretrained_reproduces_logits_exactly(tmp_path, layers, shape, model_type, unit):
    # mha at 0.25 keeps 3 of 4 heads: 64 is not a multiple of 3, so even uniform widths need tailored_llama
    pruned, plan, folder = _save(tmp_path, layers, shape, ratio=0.5 if shape == "gqa" else 0.25, unit=unit)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == model_type
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    assert torch.equal(logits(loaded), logits(pruned))
    assert PrunePlan.from_dict(json.loads((folder / checkpoint.REPORT_FILE).read_text())["plan"]) == plan
    if model_type == "tailored_llama":
        assert (folder / checkpoint.MODELING_FILE).is_file() and "AutoConfig" in config["auto_map"]
        assert len(config["layer_intermediate_sizes"]) == 3
    tied = shape.endswith("_tied")
    assert config["tie_word_embeddings"] is tied
    assert (loaded.lm_head.weight is loaded.model.embed_tokens.weight) is tied
    stored = safe_open(folder / "model.safetensors", "pt").keys()
    assert ("lm_head.weight" in stored) is not tied and "model.embed_tokens.weight" in stored
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in pruned.parameters())


@pytest.mark.parametrize("unit", ["kv_group", "query_head"])
def test_per_layer_checkpoint_loads_with_remote_code_where_the_plugin_is_not_installed(tmp_path, unit):
    pruned, _, folder = _save(tmp_path, "1-2", unit=unit)
    torch.save({"ids": probe(), "logits": logits(pruned)}, tmp_path / "expected.pt")
    out = load_without_plugin(folder, tmp_path / "expected.pt", tmp_path)
    assert "loaded TailoredLlamaForCausalLM transformers_modules" in out


def _tiny_folder(tmp_path):
    from tailored_harness.suite import tiny

    model = tiny_llama("gqa")
    tokenizer = tiny.train_tokenizer(["alpha beta gamma delta"] * 50, vocab_size=300)
    model.resize_token_embeddings(len(tokenizer))
    folder = tmp_path / "base"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    text = tmp_path / "calib.txt"
    text.write_text("\n\n".join(f"document {i}: alpha beta gamma delta, again and again." for i in range(60)))
    return folder, text


def test_cache_is_reused_and_a_corrupted_entry_is_rebuilt(tmp_path, isolated_cache):
    base, text = _tiny_folder(tmp_path)
    spec = PruneSpec(ratio=0.5, calibration=str(text), samples=4, seq_len=16)
    folder, reused, report = prune_pretrained(str(base), spec, progress=False)
    assert not reused and folder.parent == isolated_cache / "pruned" and folder.name == report["fingerprint"]
    again, reused, _ = prune_pretrained(str(base), spec, progress=False)
    assert reused and again == folder
    (folder / checkpoint.REPORT_FILE).write_text("{not json")
    _, reused, _ = prune_pretrained(str(base), spec, progress=False)
    assert not reused and json.loads((folder / checkpoint.REPORT_FILE).read_text())["fingerprint"] == folder.name
    other, _, _ = prune_pretrained(str(base), PruneSpec(ratio=0.25, calibration=str(text), samples=4, seq_len=16),
                                   progress=False)
    assert other != folder


def test_explicit_out_never_overwrites_an_unrelated_folder(tmp_path):
    base, text = _tiny_folder(tmp_path)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TailoredError, match="not a pruned checkpoint"):
        prune_pretrained(str(base), PruneSpec(ratio=0.5, importance="l2"), out=str(precious), progress=False)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    pruned, _, _ = prune_model(tiny_llama("gqa"), PruneSpec(ratio=0.5, importance="l1"), progress=False)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(pruned), "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(pruned, None, tmp_path / "ckpt", {"fingerprint": "x"})
    assert list(tmp_path.iterdir()) == []
