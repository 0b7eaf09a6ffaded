"""benchmarks/method_comparisons.sh: each group's configurations and paired claims, read off stand-ins
for ``lm_eval`` and ``tailored`` (the measurement itself is hours of scoring)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "method_comparisons.sh"


def _run(tmp_path, *args):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir(exist_ok=True)
    for name in ("lm_eval", "tailored"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n[ "$1" != digest ] || echo {{}} > "$4"\n'
                                    f'echo {tmp_path}/model\n')
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    return result, calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize("group, runs, claims", [
    ("pillow", 8, ["match_s0=none", "match_s2=random_s2", "match_s1=knn"]),
    ("tell", 12, ["tell10_s0=sft10_s0", "tell25_s2=sft25_s2"]),
    ("best", 2, ["best=default"]),
])
def test_each_group_scores_whole_splits_on_vllm_and_tests_its_claims(tmp_path, group, runs, claims):
    out = tmp_path / "m.json"
    result, calls = _run(tmp_path, group, "--out", str(out), "--runs", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    scored = [line for line in calls if line.startswith("lm_eval")]
    assert len(scored) == runs
    assert all("--tasks boolq_tailored,piqa_tailored " in line and "backend=vllm" in line and "--limit" not in line
               and "--samples" not in line for line in scored)
    report = next(line for line in calls if line.startswith("tailored report"))
    assert all(f"--paired {claim}" in report for claim in claims) and "--baseline" not in report
    assert len(list((tmp_path / "m-digests").glob("*.json"))) == runs


def test_an_unknown_group_is_refused_in_one_line(tmp_path):
    result, calls = _run(tmp_path, "prompts")
    assert result.returncode == 2 and calls == []
    assert result.stderr.strip() == ("method_comparisons.sh: group 'prompts' is not one (valid: pillow, tell, best, "
                                     "qlora, all)")


def test_qlora_compares_four_bit_adapters_with_lora_at_both_ratios_on_the_suites_accuracy_tasks(tmp_path):
    result, calls = _run(tmp_path, "qlora", "--out", str(tmp_path / "m.json"), "--runs", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    scored = [line for line in calls if line.startswith("lm_eval")]
    assert len(scored) == 4 and all("--tasks boolq,piqa,winogrande,hellaswag " in line for line in scored)
    quantized = [line for line in scored if "adapt_quant=nf4" in line]
    assert len(quantized) == 2 and {"prune_ratio=0.2" in line for line in quantized} == {True, False}
    report = next(line for line in calls if line.startswith("tailored report"))
    assert "--paired qlora_p20=lora_p20" in report and "--paired qlora_p50=lora_p50" in report
