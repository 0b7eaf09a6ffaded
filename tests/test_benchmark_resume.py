"""The resumable rows shared by the long benchmarks: an interrupted run keeps what it measured, and a
rerun runs only what is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "resumable", Path(__file__).resolve().parent.parent / "benchmarks" / "resumable.py")
resumable = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resumable)

PLAN = [{"n": 1}, {"n": 2}, {"n": 3}]


def key(config: dict) -> str:
    return f"n={config['n']}"


def test_an_interrupted_run_keeps_its_rows_and_a_rerun_runs_only_the_rest(tmp_path):
    out = tmp_path / "rows.json"
    ran = []

    def failing(config):
        if config["n"] == 2:
            raise KeyboardInterrupt
        ran.append(config["n"])
        return {"value": config["n"] * 10}

    with pytest.raises(KeyboardInterrupt):
        resumable.run_missing(out, PLAN, key, failing, {"model": "m"})
    assert json.loads(out.read_text()) == {"rows": {"n=1": {"value": 10}}, "model": "m"}
    assert list(tmp_path.iterdir()) == [out]

    def working(config):
        ran.append(config["n"])
        return {"value": config["n"] * 10}

    saved = resumable.run_missing(out, PLAN, key, working, {"model": "m"})
    assert ran == [1, 2, 3]
    assert saved == resumable.load(out)
    assert sorted(saved["rows"]) == ["n=1", "n=2", "n=3"]


def test_no_file_loads_as_no_rows(tmp_path):
    assert resumable.load(tmp_path / "absent.json") == {"rows": {}}
