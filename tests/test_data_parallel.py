"""Data parallel on CPUs: ``torchrun --nproc_per_node 2 -m lm_eval --model tailored`` (``accelerate launch
--cpu`` starts a single process without MPI) shards the requests over two processes (gloo), prunes and
trains each adapter once between them, and scores exactly what one process scores."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BIN
from tailored_harness.core import paths

pytestmark = pytest.mark.slow

MODEL_ARGS = "prune_ratio=0.5,shots=4,epochs=1"
TASKS = "synth_boolq,synth_piqa"


def _scores(out: Path) -> tuple[dict, dict]:
    (results,) = out.rglob("results_*.json")
    samples = {}
    for path in results.parent.glob("samples_*.jsonl"):
        rows = sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["doc_id"])
        samples[path.name.rsplit("_", 1)[0]] = [(r["doc_id"], r["resps"]) for r in rows]
    return json.loads(results.read_text())["results"], samples


def test_two_cpu_processes_build_once_and_score_like_one(tiny_model_dir, tmp_path):
    launcher = BIN / "torchrun"
    if not launcher.exists():
        pytest.skip("torch's launcher torchrun is not installed")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    lm_eval = ["--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},{MODEL_ARGS}", "--tasks", TASKS,
               "--limit", "6", "--log_samples"]
    parallel = subprocess.run(
        [str(launcher), "--nproc_per_node", "2", "-m", "lm_eval", *lm_eval, "--output_path", str(tmp_path / "parallel")],
        env={**env, paths.CACHE_ENV: str(tmp_path / "cache-parallel")}, capture_output=True, text=True, timeout=900)
    assert parallel.returncode == 0, parallel.stderr[-4000:]
    log = parallel.stderr
    assert "data parallel: rank 0 of 2" in log and "data parallel: rank 1 of 2" in log
    for task in TASKS.split(","):
        assert log.count(f"training adapter for {task} ") == 1, log[-4000:]
    assert log.count("reusing cached pruned checkpoint") == 1  # the other rank built it
    # torchrun gives each worker one OpenMP thread; the single process gets one too, since on some CPUs
    # a reduction split over two threads rounds differently, which pruning and training carry on
    single = subprocess.run(["lm_eval", *lm_eval, "--output_path", str(tmp_path / "single")],
                            env={**env, paths.CACHE_ENV: str(tmp_path / "cache-single"), "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    assert _scores(tmp_path / "parallel") == _scores(tmp_path / "single")
