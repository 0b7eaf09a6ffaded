"""Merged adapter folders (what backend=vllm scores): same logits as the PEFT model, cached, rebuilt when damaged."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)


@pytest.fixture(params=["tiny_model_dir", "tied_tiny_model_dir"])
def tiny_model_dir(request):
    """The tiny model, untied and tied (the merged folder must keep one embedding tensor)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def adapter_dir(tiny_model_dir, tmp_path):
    """A LoRA adapter on every projection with random, nonzero A and B, saved like the cache saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tailored_harness.adapt.spec import PROJECTIONS

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                        target_modules=list(PROJECTIONS))
    peft_model = get_peft_model(model, config)
    folder = tmp_path / "adapter"
    peft_model.save_pretrained(folder)
    (folder / "adaptation.json").write_text(json.dumps({"fingerprint": f"test-{tmp_path.name}", "task": "t"}))
    return folder


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merged_folder_scores_like_the_adapter_and_is_reused(tiny_model_dir, adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tailored_harness.adapt.merge import REPORT_FILE, merge_adapter

    folder, reused = merge_adapter(str(tiny_model_dir), adapter_dir, str(tiny_model_dir))
    assert not reused and (folder / "tokenizer_config.json").is_file()
    ids = torch.randint(3, 500, (2, 24))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    plain = _logits(base, ids)
    adapted = _logits(PeftModel.from_pretrained(base, str(adapter_dir)).eval(), ids)
    merged = _logits(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), ids)
    assert (adapted - plain).abs().max() > 1e-2  # the adapter matters
    assert (merged - adapted).abs().max() < 1e-5  # and the merged folder carries it
    tied = base.config.tie_word_embeddings
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is tied
    from safetensors import safe_open

    assert ("lm_head.weight" in safe_open(folder / "model.safetensors", "pt").keys()) is not tied
    assert merge_adapter(str(tiny_model_dir), adapter_dir, str(tiny_model_dir)) == (folder, True)
    (folder / REPORT_FILE).write_text("{ truncated")  # an interrupted or corrupted cache entry
    assert merge_adapter(str(tiny_model_dir), adapter_dir, str(tiny_model_dir)) == (folder, False)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_an_unfinished_adapter_folder_is_refused_by_name(tiny_model_dir, adapter_dir):
    from tailored_harness.adapt.merge import merge_adapter
    from tailored_harness.core.errors import TailoredError

    (adapter_dir / "adaptation.json").unlink()
    with pytest.raises(TailoredError, match="has no readable adaptation.json"):
        merge_adapter(str(tiny_model_dir), adapter_dir, str(tiny_model_dir))
