"""One-line errors without process-wide side effects at import (core/errors.py)."""

from __future__ import annotations

import subprocess
import sys

from tailored_harness.core.errors import TailoredError


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"TAILORED_HARNESS_DISABLE_HOOK": "1", "PATH": ""} | _pythonpath())


def _pythonpath() -> dict[str, str]:
    import os

    return {"PYTHONPATH": os.pathsep.join(sys.path)}


def test_importing_the_errors_changes_no_hook():
    result = _run("import sys; before = sys.excepthook\n"
                  "import tailored_harness.core.errors, tailored_harness.spec.model\n"
                  "print(sys.excepthook is before)")
    assert result.stdout.strip() == "True", result.stderr


def test_the_installed_hook_prints_one_line_and_passes_other_errors_on():
    result = _run("from tailored_harness.core.errors import TailoredError, install_excepthook\n"
                  "install_excepthook(); install_excepthook()\n"
                  "raise TailoredError('prune_ratio=2 must be a number in [0, 1)')")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: --model tailored: prune_ratio=2 must be a number in [0, 1)"]
    result = _run("from tailored_harness.core.errors import install_excepthook\n"
                  "install_excepthook()\nraise KeyError('other')")
    assert "Traceback" in result.stderr and "KeyError: 'other'" in result.stderr


def test_a_tailored_error_is_not_a_value_error():
    """Other code's ``except ValueError`` (lm-eval's, a library's) must not swallow or reword it."""
    assert not issubclass(TailoredError, ValueError)
