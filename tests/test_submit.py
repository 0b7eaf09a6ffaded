"""Submission packages: a pruned + adapted run exported, verified, and its card read back by
huggingface_hub; a changed byte is found and named; bad input is refused before anything is written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from tailored_harness.core.errors import TailoredError
from tailored_harness.submit import manifest
from tailored_harness.submit.package import ExportSpec, export

TASKS = "synth_boolq,synth_piqa"


@pytest.fixture(scope="module")
def scored(tiny_model_dir, tmp_path_factory) -> Path:
    """One ``lm_eval --model tailored`` run: pruned at 0.5, one adapter per task, samples logged."""
    out = tmp_path_factory.mktemp("submit") / "out"
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args",
                      f"pretrained={tiny_model_dir},prune_ratio=0.5,shots=4,epochs=1,adapt_seed=21",
                      "--tasks", TASKS, "--limit", "4", "--log_samples", "--output_path", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _results(folder: Path) -> tuple[Path, dict]:
    (path,) = folder.rglob("results_*.json")
    return path, json.loads(path.read_text())


def test_package_holds_lm_evals_files_unchanged_and_a_leaderboard_request(scored, tmp_path):
    package = export([scored], tmp_path / "pkg")
    source, results = _results(scored)
    copied = package / "results" / source.parent.name
    for task in TASKS.split(","):
        (sample,) = source.parent.glob(f"samples_{task}_*.jsonl")
        assert (copied / sample.name).read_bytes() == sample.read_bytes()
    assert (copied / source.name).read_bytes() == source.read_bytes()
    (request,) = (package / "requests").rglob("*.json")
    assert re.fullmatch(r"[\w.-]+_eval_request_False_float32_Adapter\.json", request.name)
    entry = json.loads(request.read_text())
    assert request.relative_to(package / "requests").as_posix() == f"{entry['model']}_eval_request_False_float32_Adapter.json"
    pruning = results["config"]["tailored"]["pruning"]
    assert entry["params"] == round(pruning["parameters_after"] / 1e9, 3) and entry["weight_type"] == "Adapter"
    assert entry["precision"] == "float32" and entry["status"] == "FINISHED" and entry["model_type"] == "fine-tuned"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["submitted_time"])
    scored_config = json.loads((Path(pruning["checkpoint"]) / "config.json").read_text())
    assert entry["use_chat_template"] is False and entry["architectures"] == ",".join(scored_config["architectures"])
    assert set(entry) >= {"model", "base_model", "revision", "precision", "weight_type", "params", "architectures",
                          "model_type", "status", "submitted_time", "use_chat_template", "license"}


def test_model_card_parses_and_its_model_index_equals_the_runs_metrics(scored, tmp_path):
    from huggingface_hub import ModelCard

    package = export([scored], tmp_path / "pkg", ExportSpec(model_name="me/tiny-p50", license="apache-2.0"))
    card = ModelCard.load(package / "README.md", ignore_metadata_errors=False)
    _, results = _results(scored)
    expected = {(task, key.partition(",")[0]): value for task, metrics in results["results"].items()
                for key, value in metrics.items()
                if "," in key and "_stderr" not in key and isinstance(value, float)}
    found = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert found == expected and len(found) >= 2
    assert card.data.model_name == "me/tiny-p50" and card.data.license == "apache-2.0"
    assert card.data.library_name == "peft"
    adapters = results["config"]["tailored"]["adapters"]
    text = card.text
    assert "### Pruning" in text and "| ratio" in text and "0.5" in text
    assert all(a["fingerprint"] in text for a in adapters.values())
    assert "lm_eval --model tailored --model_args" in text


def test_verify_passes_then_names_the_one_changed_adapter_file(scored, tmp_path):
    package = export([scored], tmp_path / "pkg", ExportSpec(include_weights=True))
    record = json.loads((package / manifest.MANIFEST).read_text())
    assert {a["kind"] for a in record["artifacts"]} == {"pruned", "adapter"}
    checked = manifest.verify(package)
    assert checked == len(record["files"]) + sum(len(a["files"]) for a in record["artifacts"])
    adapter = next(a for a in record["artifacts"] if a["kind"] == "adapter")
    target = package / adapter["path"] / "adapter_model.safetensors"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(TailoredError, match=re.escape(f"{adapter['path']}/adapter_model.safetensors: sha256")):
        manifest.verify(package)


def test_verify_follows_artifacts_left_in_the_cache_and_flags_unlisted_files(tmp_path):
    weights = tmp_path / "cache" / "adapter"
    weights.mkdir(parents=True)
    (weights / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "README.md").write_text("card\n")
    artifact = manifest.Artifact("adapter", "f" * 16, weights, "synth_boolq")
    (package / manifest.MANIFEST).write_text(json.dumps(manifest.build(package, [artifact], included=False)))
    assert manifest.verify(package) == 2
    (weights / "adapter_model.safetensors").write_bytes(b"\x00" * 63)
    with pytest.raises(TailoredError, match=re.escape(f"{weights.resolve()}/adapter_model.safetensors: 63 bytes")):
        manifest.verify(package)
    (weights / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    (package / "extra.txt").write_text("?")
    with pytest.raises(TailoredError, match="extra.txt: in the package but not in its manifest"):
        manifest.verify(package)


def test_bad_input_is_refused_and_nothing_is_written(scored, tmp_path):
    hf_run = tmp_path / "hf" / "model"
    hf_run.mkdir(parents=True)
    (hf_run / "results_2026-01-01T00-00-00.json").write_text(json.dumps({"results": {}, "config": {"model": "hf"}}))
    with pytest.raises(TailoredError, match="scored by --model 'hf', not --model tailored"):
        export([hf_run.parent], tmp_path / "a")
    with pytest.raises(TailoredError, match="no lm-eval results_"):
        export([tmp_path / "nothing"], tmp_path / "b")
    with pytest.raises(TailoredError, match="task synth_boolq is scored by both"):
        export([scored, scored], tmp_path / "c")
    with pytest.raises(TailoredError, match="--model-name 'a/b/c' must look like ORG/NAME"):
        export([scored], tmp_path / "d", ExportSpec(model_name="a/b/c"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(TailoredError, match="exists and is not empty"):
        export([scored], taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_another_model_in_the_same_package_is_refused(scored, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(scored, other)
    path, results = _results(other)
    results["config"]["tailored"]["pruning"]["fingerprint"] = "0" * 16
    results["results"] = {"other_task": results["results"]["synth_boolq"]}
    path.write_text(json.dumps(results))
    with pytest.raises(TailoredError, match="export one model per package"):
        export([scored, other], tmp_path / "pkg")


def test_cli_exports_verifies_and_fails_naming_the_file(scored, tmp_path):
    package = tmp_path / "pkg"
    made = run_cli(["tailored", "export-submission", str(scored), "--out", str(package), "--include-weights"])
    assert made.returncode == 0, made.stderr[-3000:]
    assert made.stdout.strip() == str(package)
    checked = run_cli(["tailored", "verify-submission", str(package)])
    assert checked.returncode == 0 and "files match manifest.json" in checked.stdout
    card = package / "README.md"
    card.write_text(card.read_text().replace("Results", "Resultz", 1))
    failed = run_cli(["tailored", "verify-submission", str(package)])
    assert failed.returncode == 1 and "FAILED: README.md: sha256" in failed.stderr
    again = run_cli(["tailored", "export-submission", str(scored), "--out", str(package)])
    assert again.returncode == 2 and "exists and is not empty" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
@pytest.mark.shared
def test_pruned_adapted_smollm2_on_boolq_piqa_exports_verifies_and_a_changed_adapter_byte_fails(
        smollm2_dir, hub_dir, tmp_path):
    """The acceptance run on the real model and data: SmolLM2 pruned at 0.2 with 10-shot adapters on
    BoolQ and PIQA (20 documents each), exported; the card names SmolLM2's hub id and licence."""
    from huggingface_hub import ModelCard

    out = tmp_path / "out"
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args",
                      f"pretrained={smollm2_dir},prune_ratio=0.2,prune_layers=4-27,shots=10,epochs=1",
                      "--tasks", "boolq,piqa", "--limit", "20", "--log_samples", "--output_path", str(out)], cwd=hub_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    package = tmp_path / "pkg"
    made = run_cli(["tailored", "export-submission", str(out), "--out", str(package), "--include-weights"])
    assert made.returncode == 0, made.stderr[-3000:]
    assert run_cli(["tailored", "verify-submission", str(package)]).returncode == 0
    card = ModelCard.load(package / "README.md")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    assert {r.dataset_name for r in card.data.eval_results} == {"boolq", "piqa"}
    record = json.loads((package / manifest.MANIFEST).read_text())
    adapter = next(a for a in record["artifacts"] if a["kind"] == "adapter" and a["task"] == "piqa")
    target = package / adapter["path"] / "adapter_config.json"
    target.write_text(target.read_text().replace('"r": 8', '"r": 9'))
    failed = run_cli(["tailored", "verify-submission", str(package)])
    assert failed.returncode == 1 and f"FAILED: {adapter['path']}/adapter_config.json: sha256" in failed.stderr
