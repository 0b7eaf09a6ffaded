"""run_suite.sh refuses bad options in one line, before anything runs."""

from __future__ import annotations

import pytest

from conftest import REPO_ROOT, run_cli

SUITE = ["bash", str(REPO_ROOT / "run_suite.sh")]


@pytest.mark.parametrize("args,needle", [
    (["--suite", "llama"], "--suite 'llama' is not a suite (valid: synthetic, smollm2)"),
    (["--quick"], "--quick is a reduced smollm2 run; add --suite smollm2"),
    (["--suite", "smollm2", "--data-dir", "/no/such/folder"], "--data-dir '/no/such/folder' is not a folder"),
    (["--frobnicate"], "unknown argument '--frobnicate' (valid: --suite --quick --data-dir"),
])
def test_bad_options_are_refused_in_one_line(args, needle, tmp_path):
    result = run_cli([*SUITE, *args, "--out", str(tmp_path / "s.json"), "--runs", str(tmp_path / "runs")])
    assert result.returncode == 2 and needle in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "runs").exists()


def test_help_lists_the_real_suite():
    result = run_cli([*SUITE, "--help"])
    assert result.returncode == 0 and "--suite S" in result.stdout and "smollm2" in result.stdout


def test_full_real_suite_has_the_general_recovery_rows_with_the_given_data(tmp_path):
    """The configurations the full smollm2 suite runs, read off stand-ins for ``lm_eval`` and
    ``tailored`` first on PATH: LLM-Pruner's general recovery at 0.2 and 0.5, on the data given
    (made absolute, since lm_eval runs from --data-dir), beside the per-task adapters."""
    import os
    import subprocess

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name in ("lm_eval", "tailored"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\necho {tmp_path}/model\n')
        (bin_dir / name).chmod(0o755)
    (tmp_path / "alpaca.json").write_text("[]")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # run_cli would put the venv first
    result = subprocess.run([*SUITE, "--suite", "smollm2", "--recovery-data", "alpaca.json", "--out",
                             str(tmp_path / "s.json"), "--runs", str(tmp_path / "runs")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    runs = [line for line in calls.read_text().splitlines() if line.startswith("lm_eval")]
    general = [line for line in runs if "adapt_scope=general" in line]
    assert len(general) == 2 and len(runs) == 1 + 3 + 2 * 7  # dense, dense adapted x 3; per ratio 7 rows
    for ratio, line in zip(("0.2", "0.5"), general):
        assert f"prune_ratio={ratio},prune_layers=4-27,importance=param_first,adapt_scope=general," \
               f"recovery_data={tmp_path}/alpaca.json " in line
    assert "--run p20_general=" in calls.read_text() and "--run p50_general=" in calls.read_text()
    report = next(line for line in calls.read_text().splitlines() if line.startswith("tailored report"))
    for p in ("p20", "p50"):  # every claim of the table is tested document by document
        claims = [f"{p}_param_first=dense", f"{p}_param_first={p}_l2", f"{p}_param_first={p}_random"]
        claims += [f"{p}_adapt50_s{s}={p}_{ref}" for s in range(3) for ref in ("param_first", "general")]
        assert all(f"--paired {claim} " in report + " " for claim in claims), report
