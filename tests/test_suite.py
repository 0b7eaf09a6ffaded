"""run_suite.sh end to end: the default run scores the shipped reference model, meets the dense targets
and passes its committed baseline; a second run reuses the cache; a damaged model fails the check.

This is the suite's smoke test in CI, in a cache of its own that starts empty.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO_ROOT, run_cli

pytestmark = pytest.mark.slow

SUITE = ["bash", str(REPO_ROOT / "run_suite.sh")]
BASELINE = REPO_ROOT / "results" / "baseline.json"
TARGETS = {("synth_boolq", "acc"): 0.85, ("synth_piqa", "acc"): 0.85, ("synth_qa", "exact_match"): 0.6}


@pytest.fixture(scope="module")
def suite_env(tmp_path_factory):
    """A cache of this module's own: other tests may already have generated the world in the
    session's cache, and the first run here must start from nothing."""
    from tailored_harness.core.paths import CACHE_ENV

    return {CACHE_ENV: str(tmp_path_factory.mktemp("suite-cache"))}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, suite_env):
    out = tmp_path_factory.mktemp("suite")
    result = run_cli([*SUITE, "--out", str(out / "suite.json"), "--runs", str(out / "runs")], env=suite_env, timeout=3600)
    return result, out


def _metrics(summary):
    return {(r["task"], r["metric"]): r for r in json.loads(summary.read_text())["rows"] if r["configuration"] == "dense"}


def test_default_run_trains_meets_targets_and_passes_the_baseline(first_run):
    result, out = first_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "generated synthetic world" in result.stderr and "using the shipped reference model" in result.stderr
    assert "| task" in result.stdout and "% of dense" in result.stdout
    assert "regression check passed" in result.stdout
    metrics = _metrics(out / "suite.json")
    for key, target in TARGETS.items():
        assert metrics[key]["value"] >= target, (key, metrics[key])
        assert metrics[key]["n"] == 500 and metrics[key]["configuration"] == "dense"
    rows = json.loads((out / "suite.json").read_text())["rows"]
    configurations = {r["configuration"] for r in rows}
    criteria = ("param_first_s0", "param_first_s1", "param_first_s2", "param_first_text", "l2", "random_s0", "random_s1",
                "random_s2", "adapt50")
    assert configurations == {"dense"} | {f"p{r}_{c}" for r in (20, 50) for c in criteria}
    pruned = [r for r in rows if r["configuration"] != "dense"]
    assert all(r["n"] == 500 for r in pruned)
    for row in pruned:  # % of dense, recomputed from the two rows' values
        dense = metrics[(row["task"], row["metric"])]["value"]
        assert row["pct_of_dense"] == pytest.approx(100 * row["value"] / dense), row
    assert "pruned param_first ratio=0.5" in result.stderr
    assert "configuration (over seeds)" in result.stdout


def test_taylor_keeps_at_least_what_l2_keeps_and_clearly_more_than_random(first_run):
    """The pruning issue's quality claim, on the classification tasks, at both ratios, without fine-tuning:
    element-wise Taylor (every calibration draw, and their mean) >= l2, and its mean beats the mean
    of three random prunings by more than twice the larger stderr."""
    _, out = first_run
    summary = json.loads((out / "suite.json").read_text())
    value = {(r["task"], r["configuration"]): r for r in summary["rows"] if r["metric"] == "acc"}
    mean = {(r["task"], r["configuration"]): r["mean"] for r in summary["over_seeds"] if r["metric"] == "acc"}
    for task in ("synth_boolq", "synth_piqa"):
        for p in ("p20", "p50"):
            l2 = value[(task, f"{p}_l2")]
            draws = [value[(task, f"{p}_param_first_s{s}")]["value"] for s in range(3)]
            assert min(draws) >= l2["value"], (task, p, draws, l2["value"])
            margin = 2 * max(l2["stderr"], value[(task, f"{p}_random_s0")]["stderr"])
            assert mean[(task, f"{p}_param_first")] > mean[(task, f"{p}_random")] + margin, (task, p)
        verdicts = _verdicts(summary, f"{p}_param_first_s0", f"{p}_random_s0")
        assert all(verdicts[task] == "better" for task in ("synth_boolq", "synth_piqa")), (p, verdicts)


def _verdicts(summary: dict, a: str, b: str) -> dict[str, str]:
    """The paired verdict of ``a`` against ``b`` (``tailored report --paired``) per task, on ``acc``
    (``exact_match`` for synth_qa), with the flips behind it checked against the two rows' values."""
    (item,) = [c for c in summary["paired"] if (c["a"], c["b"]) == (a, b)]
    value = {(r["task"], r["configuration"], r["metric"]): r["value"] for r in summary["rows"]}
    out = {}
    for row in item["rows"]:
        metric = row["metric"].split(",")[0]
        if metric in ("acc", "exact_match"):
            assert row["difference"] == pytest.approx(value[(row["task"], a, metric)] - value[(row["task"], b, metric)])
            assert row["only_a"] - row["only_b"] == round(row["difference"] * row["n"])
            out[row["task"]] = row["verdict"]
    return out


def test_adapting_keeps_at_least_the_pruned_accuracy_and_clearly_adds_on_some_task(first_run):
    """Per ratio, 50-shot adapters on top of p*_param_first_s0: no classification task loses, and at
    least one gains by more than its stderr. (synth_piqa is at the dense 1.000 or next to it
    after pruning, so it can only hold.) The recovery table carries the paper's figures."""
    _, out = first_run
    summary = json.loads((out / "suite.json").read_text())
    value = {(r["task"], r["configuration"]): r for r in summary["rows"] if r["metric"] == "acc"}
    for p in ("p20", "p50"):
        gains = []
        for task in ("synth_boolq", "synth_piqa"):
            pruned, adapted = value[(task, f"{p}_param_first_s0")], value[(task, f"{p}_adapt50")]
            assert adapted["value"] >= pruned["value"], (task, p, pruned["value"], adapted["value"])
            gains.append(adapted["value"] - pruned["value"] > max(pruned["stderr"], adapted["stderr"]))
        assert any(gains), p
        verdicts = _verdicts(summary, f"{p}_adapt50", f"{p}_param_first_s0")
        assert "worse" not in verdicts.values() and "better" in verdicts.values(), (p, verdicts)
    assert summary["paper"] == {"p20_adapt50": 95.68, "p50_adapt50": 86.54}
    assert {r["configuration"] for r in summary["recovery"]} >= {"p20_adapt50", "p50_adapt50"}


def test_second_run_reuses_world_and_model(first_run, suite_env, tmp_path):
    """The world, the reference model and the first run's adapters come from the cache. The two adapted
    rows of the default run are rerun alone (``--config`` with the default run's arguments): the other
    seventeen rows would only score again."""
    world = run_cli(["tailored", "world"], env=suite_env)
    assert world.returncode == 0 and "reused cached synthetic world" in world.stderr, world.stderr[-3000:]
    adapted = [arg for r in (2, 5) for arg in ("--config", f"p{r}0_adapt50=prune_ratio=0.{r},importance=param_first,"
                                                           f"prune_seed=0,shots=50")]
    result = run_cli([*SUITE, *adapted, "--limit", "20", "--no-check", "--out", str(tmp_path / "suite.json"),
                      "--runs", str(tmp_path / "runs")], env=suite_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "using the shipped reference model" in result.stderr and "trained reference model" not in result.stderr
    assert "training adapter for" not in result.stderr  # the adapters of the first run are reused
    assert result.stderr.count("reusing cached adapter for") == 2 * 3  # two adapted rows, three tasks each


def test_damaged_weights_fail_the_check_naming_the_metric(first_run, suite_env, tmp_path):
    from safetensors.torch import load_file, save_file

    found = run_cli(["tailored", "reference", "--quiet"], env=suite_env)
    assert found.returncode == 0 and "using the shipped reference model" in found.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(found.stdout.strip(), damaged)
    weights = load_file(damaged / "model.safetensors")
    for name in weights:
        if name.endswith("mlp.down_proj.weight"):  # where a LLaMA keeps most of what it memorised
            weights[name].zero_()
    save_file(weights, damaged / "model.safetensors", metadata={"format": "pt"})
    result = run_cli([*SUITE, "--model", str(damaged), "--tasks", "synth_boolq,synth_piqa,synth_qa", "--limit", "100",
                      "--baseline", str(BASELINE), "--out", str(tmp_path / "suite.json"), "--runs", str(tmp_path / "runs")],
                     env=suite_env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.stdout[result.stdout.index("REGRESSION"):]
    for task, metric in TARGETS:
        assert f"| {task}" in report and metric in report
