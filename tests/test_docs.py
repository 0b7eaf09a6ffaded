"""The README's set-up commands are the ones CI and users actually run."""

from __future__ import annotations

import re

from conftest import REPO_ROOT


def _readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("./run_suite.sh") and commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    (ci_command,) = re.findall(r'^TEST_COMMAND="(.+)"$', ci, flags=re.M)
    assert ci_command == _readme_commands()[1]
