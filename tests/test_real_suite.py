"""run_suite.sh --suite smollm2 --quick: the real suite as CI runs it (SmolLM2 on real BoolQ and PIQA,
100 documents each; dense, and Taylor pruning at 0.2 and 0.5 without and with 50-shot adapters), in a
cache of its own, checked against results/smollm2-quick-baseline.json."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import REPO_ROOT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.shared]

SUITE = ["bash", str(REPO_ROOT / "run_suite.sh"), "--suite", "smollm2", "--quick"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, hub_dir, smollm2_dir, isolated_cache):
    """The suite in a cache of its own but for SmolLM2's GGUF file and converted folder, linked from
    the session's cache (``smollm2_dir`` tests fetching and converting them): every pruned checkpoint
    and adapter is built here from nothing."""
    from tailored_harness.core.paths import CACHE_ENV

    out = tmp_path_factory.mktemp("real-suite")
    cache = tmp_path_factory.mktemp("real-suite-cache")
    for kind in ("real-models", "gguf"):
        shutil.copytree(isolated_cache / kind, cache / kind, copy_function=os.link)
    assert (cache / smollm2_dir.relative_to(isolated_cache)).is_dir()
    env = {CACHE_ENV: str(cache)}
    result = run_cli([*SUITE, "--data-dir", str(hub_dir), "--out", str(out / "suite.json"), "--runs", str(out / "runs")],
                     env=env, timeout=3600)
    return result, json.loads((out / "suite.json").read_text()) if (out / "suite.json").is_file() else None


def test_quick_real_suite_passes_its_baseline(quick_run):
    result, summary = quick_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "regression check passed" in result.stdout and "smollm2-quick-baseline.json" in result.stdout
    configurations = {r["configuration"] for r in summary["rows"]}
    assert configurations == {"dense", "p20_param_first", "p20_adapt50_s0", "p50_param_first", "p50_adapt50_s0"}
    assert all(r["n"] == 100 for r in summary["rows"])


def test_table_shows_majority_and_chance_and_recovery_next_to_the_paper(quick_run):
    result, summary = quick_run
    baselines = summary["label_baselines"]
    assert set(baselines) == {"boolq", "piqa"} and baselines["piqa"]["chance"] == 0.5 == baselines["boolq"]["chance"]
    assert 0.5 <= baselines["boolq"]["majority"] <= 1 and baselines["boolq"]["n"] == 100
    assert "majority class" in result.stdout and "chance" in result.stdout
    recovery = {r["configuration"]: r for r in summary["recovery"]}
    assert set(recovery) == {"p20_param_first", "p20_adapt50", "p50_param_first", "p50_adapt50"}
    assert summary["paper"] == {"p20_adapt50": 95.68, "p50_adapt50": 86.54} and "95.68%" in result.stdout
    # The pruned checkpoints are what the plugin wrote: fewer parameters than dense, tied embedding once.
    assert "134,515,008 -> 114,663,744 parameters" in result.stderr
    assert "134,515,008 -> 88,508,736 parameters" in result.stderr
