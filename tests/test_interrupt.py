"""Interrupted runs: a process killed while it writes a pruned checkpoint, an adapter or a merged model
leaves nothing that looks finished; the next run rebuilds exactly that entry, reuses the rest, and
scores what an uninterrupted run scores. Also: the same command twice gives bit-identical results.

A killed run is made deterministic by a ``sitecustomize`` module put first on ``PYTHONPATH``: it
holds the Nth sealed write of one kind of entry (the moment every file is written and the entry
still sits in its temporary folder) until the test kills the process with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, built_entries
from tailored_harness.core import cache, paths

pytestmark = pytest.mark.slow

HOLD = '''
import os, time
from pathlib import Path
from tailored_harness.core import paths
_seal, _seen = paths.write_checksums, []
def write_checksums(folder):
    if Path(folder).parent.name == os.environ["HOLD_KIND"]:
        _seen.append(folder)
        if len(_seen) == int(os.environ["HOLD_NTH"]):
            Path(os.environ["HOLD_MARKER"]).write_text(str(folder))
            time.sleep(600)
    return _seal(folder)
paths.write_checksums = write_checksums
'''


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, paths.CACHE_ENV: str(root), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra}


def _killed_while_writing(args: list[str], root: Path, tmp_path: Path, kind: str, nth: int) -> Path:
    """Run ``args`` until its ``nth`` write of a ``kind`` entry is held, SIGKILL it, return that temporary folder."""
    inject = tmp_path / "inject"
    inject.mkdir(exist_ok=True)
    (inject / "sitecustomize.py").write_text(HOLD)
    marker = tmp_path / f"held-{kind}-{nth}"
    env = _env(root, PYTHONPATH=f"{inject}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", HOLD_KIND=kind,
               HOLD_NTH=str(nth), HOLD_MARKER=str(marker))
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"{args} ended before its write was held: {process.stderr.read()[-3000:]}")
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
    return Path(marker.read_text())


def _run(args: list[str], root: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=_env(root), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _scores(out: Path) -> tuple[dict, dict]:
    (results,) = out.rglob("results_*.json")
    samples = {p.name.rsplit("_", 1)[0]: [json.loads(line)["resps"] for line in p.read_text().splitlines()]
               for p in results.parent.glob("samples_*.jsonl")}
    return json.loads(results.read_text())["results"], samples


def _lm_eval(model: Path, out: Path) -> list[str]:
    return ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={model},prune_ratio=0.5,shots=4,epochs=1",
            "--tasks", "synth_boolq,synth_piqa", "--limit", "4", "--log_samples", "--output_path", str(out)]


@pytest.mark.parametrize("kind,nth", [("pruned", 1), ("adapters", 2)])
def test_killed_while_writing_then_the_next_run_rebuilds_only_that_and_scores_the_same(kind, nth, tiny_model_dir,
                                                                                       tmp_path):
    root = tmp_path / "cache"
    held = _killed_while_writing(_lm_eval(tiny_model_dir, tmp_path / "killed"), root, tmp_path, kind, nth)
    assert held.is_dir() and held.name.startswith(".")  # the temporary folder, all files written
    built = sorted(e.kind for e in built_entries(root))
    assert built == ([] if kind == "pruned" else ["adapters", "pruned"])
    again = _run(_lm_eval(tiny_model_dir, tmp_path / "again"), root)
    assert not held.exists() and "left by an interrupted build" in again.stderr
    if kind == "pruned":
        assert "reusing cached pruned checkpoint" not in again.stderr
        assert again.stderr.count("training adapter for") == 2
    else:  # the first adapter was finished before the kill, the second was not
        assert "reusing cached pruned checkpoint" in again.stderr
        assert "reusing cached adapter for synth_boolq" in again.stderr
        assert again.stderr.count("training adapter for") == 1 and "training adapter for synth_piqa" in again.stderr
    assert paths.damage(held.parent / held.name.split(".")[1], deep=True) is None
    _run(_lm_eval(tiny_model_dir, tmp_path / "clean"), tmp_path / "clean-cache")
    assert _scores(tmp_path / "again") == _scores(tmp_path / "clean")


def test_killed_while_merging_then_the_next_merge_rebuilds_it(tiny_model_dir, tmp_path):
    root = tmp_path / "cache"
    made = _run(["tailored", "adapt", "--model", str(tiny_model_dir), "--tasks", "synth_boolq", "--shots", "4",
                 "--epochs", "1", "--quiet"], root)
    adapter = made.stdout.strip().split("\t")[1]
    merge = ["python", "-c", "import logging, sys; logging.basicConfig(level=logging.INFO); "
             "from tailored_harness.adapt.merge import merge_adapter; "
             "print(merge_adapter(sys.argv[1], sys.argv[2], sys.argv[1]))", str(tiny_model_dir), adapter]
    held = _killed_while_writing(merge, root, tmp_path, "merged", 1)
    assert held.is_dir() and not any(e.kind == "merged" for e in cache.entries(root))
    again = _run(merge, root)
    assert "merging adapter" in again.stderr and "left by an interrupted build" in again.stderr
    folder = Path(again.stdout.strip().split("'")[1])
    assert not held.exists() and paths.damage(folder, deep=True) is None and (folder / paths.CHECKSUMS).is_file()


def test_the_same_command_twice_gives_bit_identical_metrics_and_samples(tiny_model_dir, tmp_path):
    """Each run in its own empty cache, so both prune and train: nothing is shared but the command."""
    for side in ("first", "second"):
        _run(_lm_eval(tiny_model_dir, tmp_path / side), tmp_path / f"cache-{side}")
    first, second = _scores(tmp_path / "first"), _scores(tmp_path / "second")
    assert first == second and sum(map(len, first[1].values())) > 0
