"""GGUF files as input: exact conversion, caching, clear refusals, and `--model tailored` on a .gguf file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import run_cli
from gguf_helpers import write_gguf, write_header_only
from tailored_harness.core.errors import TailoredError
from tailored_harness.models import gguf_import
from tailored_harness.suite import tiny, world

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

TEXT = "Alice lives in Paris and keeps a cat. Is her favourite colour red? yes"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """{tied: (HF folder, GGUF file written from it)} for an untied and a tied tiny LLaMA."""
    root = tmp_path_factory.mktemp("gguf")
    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    out = {}
    for tied in (False, True):
        folder, _ = tiny.build_tiny(root / f"tiny-tied{tied}", tokenizer, tiny.TinySpec(tie_word_embeddings=tied))
        out[tied] = (folder, write_gguf(folder, root / f"tiny-tied{tied}.gguf"))
    return out


@pytest.mark.parametrize("tied", [False, True])
def test_conversion_reproduces_the_model_and_tokenizer_exactly_and_is_cached(tiny_gguf, tied, isolated_cache):
    source_dir, gguf_file = tiny_gguf[tied]
    folder, reused = gguf_import.convert(gguf_file)
    assert not reused and folder.parent == isolated_cache / "gguf"
    original, converted = AutoModelForCausalLM.from_pretrained(source_dir), AutoModelForCausalLM.from_pretrained(folder)
    ids = torch.tensor([AutoTokenizer.from_pretrained(source_dir)(TEXT)["input_ids"]])
    assert AutoTokenizer.from_pretrained(folder)(TEXT)["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(original(ids).logits, converted(ids).logits)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert config["tie_word_embeddings"] is tied
    assert (converted.lm_head.weight is converted.model.embed_tokens.weight) is tied
    report = gguf_import.read_report(folder)
    assert report["fingerprint"] == folder.name and report["dtype"] == "float32" and report["architecture"] == "llama"
    again, reused = gguf_import.convert(gguf_file)
    assert reused and again == folder
    half, _ = gguf_import.convert(gguf_file, "bfloat16")
    assert half != folder and json.loads((half / "config.json").read_text())["dtype"] == "bfloat16"


@pytest.mark.parametrize("add_bos", [True, False])
def test_the_converted_tokenizer_adds_bos_as_the_file_says(tiny_gguf, add_bos, tmp_path, isolated_cache):
    """transformers' GGUF reader drops some files' add_bos_token (Gemma 3's): the conversion applies it."""
    source_dir, _ = tiny_gguf[False]
    gguf_file = write_gguf(source_dir, tmp_path / f"bos{add_bos}.gguf", add_bos=add_bos)
    assert gguf_import.special_token_flags(gguf_file)["add_bos_token"] is add_bos
    folder, _ = gguf_import.convert(gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    plain = AutoTokenizer.from_pretrained(source_dir)(TEXT, add_special_tokens=False)["input_ids"]
    assert tokenizer(TEXT)["input_ids"] == ([tokenizer.bos_token_id] if add_bos else []) + plain


def test_a_file_that_is_not_gguf_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(TailoredError, match="is not a GGUF file"):
        gguf_import.convert(fake)
    result = run_cli(["tailored", "import-gguf", str(fake)])
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "not a GGUF file" in result.stderr


def test_an_architecture_the_plugin_cannot_prune_is_refused_before_loading(tmp_path):
    other = write_header_only(tmp_path / "mamba.gguf", "mamba")
    with pytest.raises(TailoredError, match=r"holds a 'mamba' model; the plugin prunes and adapts these GGUF architectures: llama, mistral"):
        gguf_import.convert(other)


def test_gguf_file_key_finds_the_file_in_a_folder_and_names_the_ones_there(tiny_gguf, tmp_path):
    _, gguf_file = tiny_gguf[False]
    assert gguf_import.locate(str(gguf_file.parent), gguf_file.name) == gguf_file
    with pytest.raises(TailoredError, match=r"gguf_file='missing.gguf' is not in .*GGUF files there: tiny-tiedFalse.gguf"):
        gguf_import.locate(str(gguf_file.parent), "missing.gguf")
    assert gguf_import.locate(str(tmp_path)) is None  # a folder is not a GGUF


@pytest.mark.slow
def test_tailored_on_a_gguf_file_scores_like_hf_on_the_converted_folder(tiny_gguf, task_manager):
    """Per request, --model tailored with pretrained=<file>.gguf against lm-eval's own hf model on the
    folder the file was converted into; also through gguf_file= on the folder holding the file."""
    import lm_eval

    _, gguf_file = tiny_gguf[True]
    folder, _ = gguf_import.convert(gguf_file)

    def run(model, args):
        return lm_eval.simple_evaluate(model=model, model_args=args, tasks=["synth_boolq", "synth_qa"], limit=12,
                                       device="cpu", batch_size=4, log_samples=True, task_manager=task_manager)

    ours = run("tailored", f"pretrained={gguf_file},shots=0,dtype=float32")
    by_key = run("tailored", f"pretrained={gguf_file.parent},gguf_file={gguf_file.name},shots=0,dtype=float32")
    theirs = run("hf", f"pretrained={folder},dtype=float32")
    assert ours["config"]["tailored"]["pretrained"] == str(folder)
    for task in ("synth_boolq", "synth_qa"):
        expected = [s["resps"] for s in theirs["samples"][task]]
        assert [s["resps"] for s in ours["samples"][task]] == expected
        assert [s["resps"] for s in by_key["samples"][task]] == expected


def test_cli_prunes_adapts_and_imports_a_gguf_file(tiny_gguf, tmp_path):
    _, gguf_file = tiny_gguf[True]
    pruned = run_cli(["tailored", "prune", "--model", str(gguf_file), "--ratio", "0.5", "--importance", "l2", "--quiet"])
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    report = json.loads((Path(pruned.stdout.strip()) / "pruning.json").read_text())
    assert report["parameters"]["after"]["total"] < report["parameters"]["before"]["total"]
    adapted = run_cli(["tailored", "adapt", "--model", str(gguf_file), "--tasks", "synth_boolq", "--shots", "4",
                       "--epochs", "1", "--quiet"])
    assert adapted.returncode == 0 and adapted.stdout.startswith("synth_boolq\t"), adapted.stderr[-2000:]
    out = tmp_path / "imported"
    imported = run_cli(["tailored", "import-gguf", str(gguf_file), "--out", str(out)])
    assert imported.returncode == 0 and imported.stdout.strip() == str(out), imported.stderr[-2000:]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
