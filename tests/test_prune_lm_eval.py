"""Pruning inside lm-eval (`--model tailored` with prune_ratio) and the `tailored prune` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def test_prune_ratio_in_model_args_prunes_caches_and_reports(tiny_model_dir, tmp_path):
    args = ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},prune_ratio=0.5,calibration_samples=4,shots=0",
            "--tasks", "synth_boolq,synth_piqa", "--limit", "10", "--output_path", str(tmp_path / "out")]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "pruned param_first ratio=0.5" in first.stderr and "reusing cached pruned checkpoint" not in first.stderr
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    pruning = results["config"]["tailored"]["pruning"]
    assert pruning["parameters_after"] < pruning["parameters_before"]
    report = json.loads((Path(pruning["checkpoint"]) / "pruning.json").read_text())
    assert report["fingerprint"] == pruning["fingerprint"] and report["spec"]["calibration"] == "tasks"
    second = run_cli(args)
    assert second.returncode == 0 and "reusing cached pruned checkpoint" in second.stderr


def test_bad_prune_args_give_one_error_line(tiny_model_dir):
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},prune_ratio=1.2",
                      "--tasks", "synth_boolq", "--limit", "2"])
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert any(line.startswith("error:") and "prune_ratio=1.2" in line for line in result.stderr.splitlines())


def test_tailored_prune_command_writes_a_loadable_checkpoint(tiny_model_dir, tmp_path):
    out = tmp_path / "pruned"
    result = run_cli(["tailored", "prune", "--model", str(tiny_model_dir), "--ratio", "0.5", "--layers", "1-1",
                      "--tasks", "synth_qa", "--samples", "4", "--out", str(out), "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out)
    assert "layer 1: kv groups 2 -> 1" in result.stderr and "layer 0:" not in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "tailored_llama" and config["layer_num_key_value_heads"] == [2, 1]
    scored = run_cli(["lm_eval", "--model", "hf", "--model_args", f"pretrained={out},trust_remote_code=True", "--tasks", "synth_boolq",
                      "--limit", "4"])
    assert scored.returncode == 0, scored.stderr[-3000:]


def test_tailored_prune_without_tasks_explains_the_calibration_choices(tiny_model_dir, tmp_path):
    result = run_cli(["tailored", "prune", "--model", str(tiny_model_dir), "--ratio", "0.2", "--out", str(tmp_path / "p")])
    assert result.returncode == 2 and "calibration=tasks needs" in result.stderr and "Traceback" not in result.stderr


def test_prune_on_real_boolq_piqa_with_llama2_tokenizer(hub_dir, llama2_tiny_dir, tmp_path):
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args", f"pretrained={llama2_tiny_dir},prune_ratio=0.2,shots=0",
                      "--tasks", "boolq,piqa", "--limit", "20", "--output_path", str(tmp_path / "out")], cwd=hub_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pruned param_first ratio=0.2" in result.stderr
    assert "|boolq|" in result.stdout.replace(" ", "") and "|piqa|" in result.stdout.replace(" ", "")


def test_world_statements_calibrate_tailored_prune(tiny_model_dir, tmp_path):
    world = run_cli(["tailored", "world"])
    assert world.returncode == 0, world.stderr[-2000:]
    statements = Path(world.stdout.strip()) / "statements.txt"
    assert statements.is_file()
    result = run_cli(["tailored", "prune", "--model", str(tiny_model_dir), "--ratio", "0.5", "--calibration", str(statements),
                      "--importance", "param_mix", "--samples", "4", "--out", str(tmp_path / "p"), "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "p" / "pruning.json").read_text())
    assert report["spec"]["calibration"] == str(statements) and report["calibration_sha256"]
