"""The installed console scripts, end to end: lm_eval with the plugin, and run_suite.sh."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def _one_error_line(result, needle):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert needle in errors[0]
    return errors[0]


@pytest.mark.parametrize(
    "model_args,needle",
    [
        ("pretrained={model},foo=1", "foo=1"),
        ("pretrained=/no/such/model/dir", "/no/such/model/dir"),
        ("pretrained={model},dtype=float8", "float8"),
    ],
)
def test_bad_model_args_give_one_error_line(tiny_model_dir, model_args, needle):
    args = model_args.format(model=tiny_model_dir)
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args", args, "--tasks", "synth_boolq", "--limit", "2"])
    line = _one_error_line(result, needle)
    if "foo" in needle:
        assert "valid keys: pretrained" in line


def test_use_cache_is_refused_in_one_line(tiny_model_dir, tmp_path):
    result = run_cli(
        ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "synth_boolq",
         "--limit", "2", "--use_cache", str(tmp_path / "cache")]
    )
    _one_error_line(result, "--use_cache")


def test_ls_and_validate_see_plugin_tasks():
    listed = run_cli(["lm_eval", "ls", "tasks"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "boolq_tailored" in listed.stdout and "piqa_tailored" in listed.stdout
    valid = run_cli(["lm_eval", "validate", "--tasks", "boolq_tailored,piqa_tailored"])
    assert valid.returncode == 0 and "All tasks found and valid" in valid.stdout


def test_demo_task_end_to_end_writes_tailored_metadata(tiny_model_dir, tmp_path):
    result = run_cli(
        ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "synth_boolq",
         "--limit", "20", "--output_path", str(tmp_path)]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "synth_boolq" in result.stdout and "acc" in result.stdout
    (path,) = tmp_path.rglob("results_*.json")
    saved = json.loads(path.read_text())
    config = saved["config"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert saved["tokenizer_bos_token"] == [tokenizer.bos_token, str(tokenizer.bos_token_id)]
    assert saved["eot_token_id"] == tokenizer.eos_token_id
    assert config["model"] == "tailored"
    assert config["tailored"]["spec"]["pretrained"] == str(tiny_model_dir)
    assert config["tailored"]["backend"] == "hf"
    adapter = config["tailored"]["adapters"]["synth_boolq"]  # shots=50 by default: the task got its adapter
    assert adapter["shots"] == 50 and adapter["split"] == "train" and not adapter["reused"]


def test_stock_tasks_with_tailored_and_dummy(tiny_model_dir, hub_dir):
    result = run_cli(
        ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},shots=0", "--tasks", "boolq,piqa",
         "--limit", "50"],
        cwd=hub_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert any(line.startswith("|boolq") for line in table) and any(line.startswith("|piqa") for line in table)
    dummy = run_cli(["lm_eval", "--model", "dummy", "--tasks", "boolq", "--limit", "5"], cwd=hub_dir)
    assert dummy.returncode == 0, dummy.stderr[-3000:]
    assert any(line.startswith("|boolq") for line in dummy.stdout.splitlines())
