"""A repeated run served from the cache reads no dense weights (issue 20's first item).

The run is ``lm_eval --model tailored`` with pruning and per-task adapters, twice on one cache. Between
the runs the dense weight file is overwritten with zeros of the same size and given back its
modification time, so the base model's content identity (memoised by path, size and mtime) is
unchanged while any read of its weights would fail: the second run must reuse everything and score
exactly what the first scored. Where ``strace`` works, the second run is traced too: it never opens
the dense weights while it does open what it scores (the pruned checkpoint's weights and the
adapters, so the tracer is seen to catch safetensors opens), and, with ``backend=vllm`` and the merged
adapters cached, transformers opens no weights at all (neither the dense nor the pruned
checkpoint's; vLLM opens the merged folders').
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from tailored_harness.core import paths
from tailored_harness.spec.model import ModelSpec

TASKS = "synth_boolq,synth_piqa"
ARGS = "prune_ratio=0.5,shots=4,epochs=1"
STRACE = shutil.which("strace")
OPENED = re.compile(r'open(?:at2?)?\((?:[^,]+, )?"([^"]+)"')


def _strace_works(tmp_path: Path) -> bool:
    if STRACE is None:
        return False
    probe = subprocess.run([STRACE, "-f", "-o", str(tmp_path / "probe.trace"), "true"], capture_output=True)
    return probe.returncode == 0


def _lm_eval(model_dir: Path, extra: str, out: Path, cache: Path, trace: Path | None):
    args = ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={model_dir},{ARGS}{extra}",
            "--tasks", TASKS, "--limit", "6", "--log_samples", "--output_path", str(out)]
    if trace is not None:
        from conftest import BIN

        args = [STRACE, "-f", "-qq", "-s", "4096", "-e", "trace=open,openat,openat2", "-o", str(trace),
                str(BIN / "lm_eval"), *args[1:]]
    return run_cli(args, env={paths.CACHE_ENV: str(cache)}, timeout=1200)


def _scores(out: Path) -> tuple[dict, dict]:
    (results,) = out.rglob("results_*.json")
    samples = {path.name.rsplit("_", 1)[0]: sorted(json.loads(line)["resps"] for line in path.read_text().splitlines())
               for path in results.parent.glob("samples_*.jsonl")}
    return json.loads(results.read_text())["results"], samples


def _assert_same_scores(first: tuple[dict, dict], second: tuple[dict, dict], rel_tol: float) -> None:
    """Equal results and samples; with ``rel_tol``, each log-likelihood within that relative distance
    and each accuracy within one document of the first run's (a near tie may flip)."""
    if rel_tol == 0.0:
        assert first == second
        return
    (results, samples), (results2, samples2) = first, second
    assert samples.keys() == samples2.keys() and results.keys() == results2.keys()
    for name in samples:
        ours = [float(x) for doc in samples[name] for choice in doc for x, _ in choice]
        theirs = [float(x) for doc in samples2[name] for choice in doc for x, _ in choice]
        assert len(ours) == len(theirs) and all(math.isclose(a, b, rel_tol=rel_tol) for a, b in zip(ours, theirs)), name
    for task, metrics in results.items():
        for key, value in metrics.items():
            if key.startswith("acc") and "stderr" not in key:
                assert abs(value - results2[task][key]) <= 1.0 / metrics["sample_len"] + 1e-12, (task, key)


def _opened(trace: Path) -> set[str]:
    """Paths the traced processes opened, resolved: every open call but those that failed (a call
    interrupted by another thread's, ``<unfinished ...>``, counts: its path is on that line)."""
    found = set()
    for line in trace.read_text(errors="replace").splitlines():
        match = OPENED.search(line)
        if match and "= -1 " not in line:
            found.add(os.path.realpath(match.group(1)))
    return found


def _zero_keeping_identity(files: list[Path]) -> None:
    """Overwrite each file with zeros of its size, then give it back its mtime: its memoised content
    identity is unchanged, its weights unreadable."""
    for path in files:
        stat = path.stat()
        path.write_bytes(bytes(stat.st_size))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def repeated_run_reads_no_dense_weights(model_dir: Path, tmp_path: Path, extra: str,
                                        rel_tol: float = 0.0) -> tuple[set, Path]:
    """Run twice (see the module docstring); returns the files the second run opened (empty without
    strace) and the cache. Asserts the second run reused everything, scored what the first scored
    (each log-likelihood within ``rel_tol`` of the first run's; 0 asks for equal strings) and, where
    traced, never opened the dense weights."""
    local = tmp_path / "model"
    shutil.copytree(model_dir, local)
    cache = tmp_path / "cache"
    trace = tmp_path / "second.trace" if _strace_works(tmp_path) else None
    first = _lm_eval(local, extra, tmp_path / "first", cache, None)
    assert first.returncode == 0, first.stderr[-4000:]
    weights = sorted(local.glob("*.safetensors"))
    assert weights
    _zero_keeping_identity(weights)
    second = _lm_eval(local, extra, tmp_path / "second", cache, trace)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "reusing cached pruned checkpoint" in second.stderr
    assert "training adapter" not in second.stderr
    _assert_same_scores(_scores(tmp_path / "first"), _scores(tmp_path / "second"), rel_tol)
    opened = _opened(trace) if trace else set()
    if trace:
        assert not {os.path.realpath(p) for p in weights} & opened
    return opened, cache


def _weights_under(opened: set[str], folder: Path) -> list[str]:
    return [path for path in opened if path.startswith(str(folder)) and path.endswith(".safetensors")]


@pytest.mark.slow
def test_repeated_hf_run_reads_no_dense_weights(tiny_model_dir, tmp_path):
    opened, cache = repeated_run_reads_no_dense_weights(tiny_model_dir, tmp_path, "")
    if opened:  # what is scored is read, and the tracer sees it: the pruned checkpoint's weights, the adapters
        assert _weights_under(opened, cache / "pruned") and _weights_under(opened, cache / "adapters")


@pytest.mark.parametrize("dtype,config_dtype", [("auto", "float32"), ("auto", "bfloat16"), ("float32", "bfloat16"),
                                                ("bfloat16", "float32")])
def test_precision_told_before_loading_is_the_loaded_one(tiny_model_dir, tmp_path, dtype, config_dtype):
    """The adapters' cache key holds the training precision; a run that reads no weights must name
    the same precision as one that loads them, or a cached adapter would be missed (or misused)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.backends.hf import HFBackend

    folder = tmp_path / config_dtype
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=getattr(torch, config_dtype)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    backend = HFBackend(ModelSpec(pretrained=str(folder), dtype=dtype, device="cpu", shots=0, prune_ratio=0.5))
    assert not backend.lm.materialized
    told = backend.precision()
    backend.weights()
    assert backend.lm.materialized and told == backend.precision() == f"cpu:{dtype if dtype != 'auto' else config_dtype}"


def test_deferred_model_refuses_to_score_before_its_weights_load(tiny_model_dir):
    from tailored_harness.backends.deferred import DeferredHFLM

    lm = DeferredHFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1)
    assert not lm.materialized and not list(lm.model.parameters())
    with pytest.raises(RuntimeError, match="weights were not loaded"):
        lm.model(input_ids=None)
    model = lm.materialize()
    assert lm.materialized and model is lm.model and sum(p.numel() for p in model.parameters()) > 0
