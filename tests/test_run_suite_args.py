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
