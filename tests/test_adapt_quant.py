"""QLoRA (``adapt_quant``): the base really is 4-bit while adapters train, the dequantized twin that
vLLM scores computes exactly what the 4-bit base computes, ``adapt_quant=none`` changes nothing, and
bad settings are one line each."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import torch

from lm_helpers import evaluate, per_request
from tailored_harness.adapt.quant import QuantSpec
from tailored_harness.core.errors import TailoredError
from tailored_harness.spec.model import ModelSpec
from tailored_harness.suite import tiny

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the test extra installs it)")

#: every supported family: q/k/v biases (Qwen2), q/k norms (Qwen3, Gemma 3), fused qkv_proj and gate_up_proj (Phi-3)
FAMILIES = tuple(tiny.FAMILY_CONFIGS)
NF4 = QuantSpec(scheme="nf4", compute_dtype="float32")


def _probe(config) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("args,needle", [
    ({"adapt_quant": "nf5"}, "adapt_quant='nf5' is not a 4-bit scheme; valid: none, nf4, fp4"),
    ({"adapt_quant": "nf4", "adapt_quant_compute": "int8"}, "adapt_quant_compute='int8' is not a compute dtype"),
    ({"adapt_quant": "nf4", "adapt_quant_double": "yes"}, "adapt_quant_double='yes' must be True or False"),
    ({"adapt_quant_double": False}, "adapt_quant_double configure QLoRA's 4-bit base and need adapt_quant=nf4"),
    ({"adapt_quant": "nf4", "shots": 0}, "adapt_quant=nf4 quantizes the base that adapters train on, but shots=0"),
])
def test_bad_settings_are_one_line_naming_the_value(args, needle):
    with pytest.raises(TailoredError) as err:
        ModelSpec.from_model_args({"pretrained": "m", **args})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_word_none_reaches_the_spec_as_plain_lora():
    """lm-eval's model_args parser reads ``none`` as ``None``."""
    spec = ModelSpec.from_model_args({"pretrained": "m", "adapt_quant": None})
    assert spec.quant_spec() == QuantSpec() and not spec.quant_spec().active


def test_none_leaves_the_adapter_fingerprint_and_loading_as_they_were():
    """``adapt_quant=none`` asks for nothing new: the precision that names an adapter is the one
    computed without the option, and the backend loads no quantization."""
    from tailored_harness.adapt.train import expected_precision
    from tailored_harness.backends.hf import _quant

    for device in ("cpu", "cuda"):
        assert expected_precision(device, "float32", None, QuantSpec()) == expected_precision(device, "float32", None)
    assert _quant(ModelSpec(pretrained="m", adapt_quant="none"), "cpu") is None
    assert _quant(ModelSpec(pretrained="m", adapt_quant="nf4"), "cpu") == NF4
    assert expected_precision("cpu", "float32", None, QuantSpec(scheme="fp4", double_quant=False)) == "cpu:fp4/float32"


def test_missing_bitsandbytes_is_one_line_with_the_install_command(monkeypatch):
    from tailored_harness.adapt import quant

    real = importlib.metadata.version

    def version(name):
        if name == "bitsandbytes":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(quant.importlib.metadata, "version", version)
    with pytest.raises(TailoredError, match=r"bitsandbytes, which is not installed: pip install 'tailored-harness\[qlora\]'"):
        quant.require_bitsandbytes("nf4")
    monkeypatch.setattr(quant.importlib.metadata, "version", lambda name: "0.45.5")
    with pytest.raises(TailoredError, match=r"needs bitsandbytes >= 0.50 \(installed: 0.45.5\)"):
        quant.require_bitsandbytes("nf4")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_base_is_four_bit_while_the_adapter_trains(family, family_dirs):
    """Every projection LoRA wraps runs, inside the training forward passes, as a bitsandbytes 4-bit
    layer holding half a byte per weight; no full-precision copy of those weights exists."""
    from tailored_harness.adapt.quant import four_bit_linears, load_4bit, model_quantization
    from tailored_harness.adapt.spec import AdaptSpec
    from tailored_harness.adapt.train import precision, train_adapter
    from transformers import AutoTokenizer

    folder = family_dirs[family]
    model = load_4bit(str(folder), NF4, "float32")
    layers = four_bit_linears(model)
    assert layers and model_quantization(model) == NF4 and precision(model) == "cpu:nf4+dq/float32"
    seen = {}

    def record(module, inputs, output):
        seen[id(module)] = (module.training, module.weight.dtype, module.weight.numel(),
                            module.in_features * module.out_features)

    hooks = [layer.register_forward_hook(record) for layer in layers.values()]
    pairs = [(f"question {i}:", " yes" if i % 2 else " no") for i in range(8)]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    peft_model, losses = train_adapter(model, tokenizer, pairs, AdaptSpec(shots=8, epochs=1, learning_rate=1e-2),
                                       progress=False)
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(layers) and len(losses) == 1
    for training, dtype, stored, weights in seen.values():
        assert training and dtype == torch.uint8 and 2 * stored == weights
    wrapped = [m for m in peft_model.modules() if hasattr(m, "base_layer") and hasattr(m, "lora_A")]
    assert wrapped and all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in wrapped)
    shapes = {(layer.out_features, layer.in_features) for layer in layers.values()}
    full = [name for name, p in peft_model.named_parameters() if p.is_floating_point() and tuple(p.shape) in shapes]
    assert not full, f"full-precision copies of 4-bit weights: {full}"
    moved = [p for name, p in peft_model.named_parameters() if "lora_B" in name]
    assert moved and any(bool(p.abs().sum() > 0) for p in moved)  # B starts at zero: gradients reached it


@pytest.mark.parametrize("family,scheme,double", [*((family, "nf4", True) for family in FAMILIES),
                                                  ("llama", "fp4", False), ("phi3", "fp4", False)])
def test_the_dequantized_folder_computes_what_the_four_bit_base_computes(family, scheme, double, family_dirs,
                                                                        tmp_path):
    """What vLLM scores under QLoRA (the dequantized twin) gives the 4-bit base's logits bit for bit;
    both differ from the full-precision model (the quantization is real)."""
    from transformers import AutoModelForCausalLM

    from tailored_harness.adapt.merge import dequantized_base
    from tailored_harness.adapt.pipeline import model_identity
    from tailored_harness.adapt.quant import load_4bit

    folder = str(family_dirs[family])
    spec = QuantSpec(scheme=scheme, double_quant=double, compute_dtype="float32")
    four_bit = load_4bit(folder, spec, "float32")
    dense = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    twin_dir, reused = dequantized_base(folder, spec, model_identity(folder), folder, "float32")
    twin = AutoModelForCausalLM.from_pretrained(twin_dir, dtype=torch.float32).eval()
    ids = _probe(dense.config)
    with torch.no_grad():
        expected, got, original = four_bit(ids).logits, twin(ids).logits, dense(ids).logits
    assert torch.equal(got, expected)
    assert float((original - expected).abs().max()) > 1e-3
    config = json.loads((twin_dir / "config.json").read_text())
    assert "quantization_config" not in config and not reused
    record = json.loads((twin_dir / "dequantized.json").read_text())
    assert record["quant"] == spec.to_dict() and record["layers"] == len(
        [m for m in four_bit.modules() if isinstance(m, bnb.nn.Linear4bit)])
    assert dequantized_base(folder, spec, model_identity(folder), folder, "float32") == (twin_dir, True)
    from tailored_harness.core import cache

    listed = [entry for entry in cache.entries() if entry.folder == twin_dir]
    assert [entry.kind for entry in listed] == ["dequantized"] and scheme in listed[0].describe
    assert not cache.verify(listed)  # sealed: every file matches its checksum


def test_scoring_computes_as_training_does(family_dirs):
    """With :func:`exact_cpu_kernels`, inference (eval mode, no gradients) runs the same 4-bit path as
    training, so what is scored is the function the adapter was trained on, on any CPU. (Without it,
    on a CPU with AVX512-BF16, bitsandbytes repacks each layer at its first inference forward and
    computes in bfloat16: logits move by some 5e-3 on this tiny model.)"""
    from tailored_harness.adapt.quant import load_4bit

    model = load_4bit(str(family_dirs["llama"]), NF4, "float32")
    ids = _probe(model.config)
    model.train()
    trained = model(ids).logits.detach()  # first: training never repacks
    model.eval()
    with torch.no_grad():
        scored = model(ids).logits
    assert torch.equal(scored, trained)


TASKS = ["synth_boolq", "synth_piqa"]
FAST = "shots=8,epochs=2,lora_lr=1e-2"  # a few steps with a large rate: the adapters move visibly
PRUNE = "prune_ratio=0.5,attention_unit=query_head,importance=param_first"


@pytest.mark.slow
def test_lm_eval_trains_on_the_four_bit_pruned_base_reuses_it_and_scores_like_the_merged_twin(family_dirs,
                                                                                              task_manager):
    """``--model tailored`` with ``adapt_quant=nf4``: pruned in full precision, adapters trained and
    scored on the 4-bit checkpoint, recorded as such; a second run trains nothing; each task scores
    as lm-eval's own ``hf`` model scores the dequantized checkpoint with the adapter merged (what
    ``backend=vllm`` serves), within float32 rounding of the merge (``W + s B A`` rounded once)."""
    from tailored_harness.adapt.merge import dequantized_base, merge_adapter
    from tailored_harness.adapt.pipeline import model_identity

    folder = family_dirs["llama"]
    args = f"pretrained={folder},dtype=float32,{PRUNE},{FAST},adapt_quant=nf4"
    ours = evaluate("tailored", args, TASKS, task_manager)
    info = ours["config"]["tailored"]
    assert info["adapt_quant"] == {**NF4.to_dict(), "scored_on": "4-bit"}
    checkpoint = info["pruning"]["checkpoint"]
    twin, _ = dequantized_base(checkpoint, NF4, model_identity(checkpoint), str(folder), "float32")
    for task in TASKS:
        adapter = info["adapters"][task]
        assert adapter["quantization"] == NF4.to_dict() and not adapter["reused"]
        merged, _ = merge_adapter(str(twin), adapter["folder"], str(folder))
        theirs = per_request(evaluate("hf", f"pretrained={merged},dtype=float32", [task], task_manager), task)
        mine = per_request(ours, task)
        assert mine.keys() == theirs.keys() and len(mine) >= 16
        assert max(abs(mine[k] - theirs[k]) for k in mine) <= 1e-4
    again = evaluate("tailored", args, TASKS, task_manager)["config"]["tailored"]["adapters"]
    assert all(again[task]["reused"] and again[task]["folder"] == info["adapters"][task]["folder"] for task in TASKS)
    # tailored adapt on the checkpoint names the same adapter (and says so), and refuses a stray option
    from conftest import run_cli

    made = run_cli(["tailored", "adapt", "--model", checkpoint, "--tasks", TASKS[0], "--shots", "8", "--epochs", "2",
                    "--lora-lr", "1e-2", "--adapt-quant", "nf4", "--dtype", "float32", "--quiet"])
    assert made.returncode == 0, made.stderr[-3000:]
    assert made.stdout.split() == [TASKS[0], info["adapters"][TASKS[0]]["folder"]]
    assert "reused cached adapter" in made.stderr
    refused = run_cli(["tailored", "adapt", "--model", checkpoint, "--tasks", TASKS[0], "--adapt-quant-compute",
                       "float32"])
    assert refused.returncode == 2 and "--adapt-quant-compute configure QLoRA's 4-bit base" in refused.stderr


@pytest.mark.slow
def test_adapt_quant_none_reuses_the_plain_lora_adapters(family_dirs, task_manager):
    """``adapt_quant=none`` is today's LoRA: the adapters of a run without the option are found in the
    cache under the same fingerprint (so the weights are those very files), and QLoRA's are others."""
    folder = family_dirs["qwen2"]
    plain = evaluate("tailored", f"pretrained={folder},dtype=float32,{FAST}", TASKS[:1], task_manager)
    none = evaluate("tailored", f"pretrained={folder},dtype=float32,{FAST},adapt_quant=none", TASKS[:1], task_manager)
    quantized = evaluate("tailored", f"pretrained={folder},dtype=float32,{FAST},adapt_quant=fp4", TASKS[:1],
                          task_manager)
    first, second, third = (run["config"]["tailored"]["adapters"][TASKS[0]] for run in (plain, none, quantized))
    assert not first["reused"] and second["reused"] and second["fingerprint"] == first["fingerprint"]
    assert not third["reused"] and third["fingerprint"] != first["fingerprint"]
    assert "quantization" not in first and third["quantization"]["scheme"] == "fp4"
    assert per_request(plain, TASKS[0]) == per_request(none, TASKS[0])
