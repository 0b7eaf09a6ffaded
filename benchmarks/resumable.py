"""Resumable benchmark rows: a JSON file of finished configurations, saved after each one.

Long benchmarks (``attention_units.py``, ``tell.py``) run one configuration at a time for minutes
each. An interrupted run must lose at most the configuration in progress, and a rerun must skip what
is already measured, so the file is rewritten atomically (the package's ``write_text_atomic``) after
every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from tailored_harness.core.paths import write_text_atomic


def load(out: Path) -> dict:
    """The saved rows of ``out`` (``{"rows": {}}`` when there is no file yet)."""
    return json.loads(out.read_text()) if out.is_file() else {"rows": {}}


def save(out: Path, saved: dict) -> None:
    """Write ``saved`` to ``out`` atomically."""
    write_text_atomic(out, json.dumps(saved, indent=1))


def run_missing(out: Path, plan: list[dict], key: Callable[[dict], str], run: Callable[[dict], dict],
                meta: dict) -> dict:
    """Run every configuration of ``plan`` whose ``key`` is not in ``out`` yet, saving after each.

    ``meta`` (model, tasks, documents) is stored beside the rows. Returns all saved rows' document.
    """
    saved = load(out)
    for number, config in enumerate(plan, 1):
        if key(config) in saved["rows"]:
            continue
        print(f"[{number}/{len(plan)}] {key(config)}", flush=True)
        saved["rows"][key(config)] = run(config)
        saved.update(meta)
        save(out, saved)
    return saved
