"""The cache shared by processes: one builder per entry, a lock its dead holder does not keep, damaged
entries rebuilt instead of scored, and ``tailored cache ls|verify|rm``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, run_cli
from tailored_harness.core import cache, paths


def _adapt_args(model: Path, seed: int) -> list[str]:
    return ["tailored", "adapt", "--model", str(model), "--tasks", "synth_boolq,synth_piqa", "--shots", "4",
            "--epochs", "1", "--seed", str(seed), "--quiet"]


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, paths.CACHE_ENV: str(root), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_sealed_folder_records_every_file_and_damage_finds_size_and_content(tmp_path):
    folder = tmp_path / "entry"
    with paths.atomic_dir(folder, seal=True) as tmp:
        (tmp / "weights.bin").write_bytes(b"\x01" * 100)
        (tmp / "report.json").write_text("{}")
    record = json.loads((folder / paths.CHECKSUMS).read_text())
    assert sorted(record) == ["report.json", "weights.bin"] and record["weights.bin"]["size"] == 100
    assert paths.damage(folder) is None and paths.damage(folder, deep=True) is None
    (folder / "weights.bin").write_bytes(b"\x01" * 99 + b"\x02")
    assert paths.damage(folder) is None  # same size: only reading the bytes finds it
    assert paths.damage(folder, deep=True) == f"{folder / 'weights.bin'} has another sha256 than when written"
    (folder / "weights.bin").write_bytes(b"\x01" * 10)
    assert paths.damage(folder) == f"{folder / 'weights.bin'} has 10 bytes, 100 when written"
    (folder / "weights.bin").unlink()
    assert paths.damage(folder) == f"{folder / 'weights.bin'} is missing"


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_two_processes_on_one_empty_cache_train_each_adapter_once(tiny_model_dir, tmp_path):
    env = _env(tmp_path / "cache")
    runs = [subprocess.Popen(_adapt_args(tiny_model_dir, 31), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    logs = outputs[0][1] + outputs[1][1]
    for task in ("synth_boolq", "synth_piqa"):
        assert logs.count(f"training adapter for {task} ") == 1, logs[-4000:]
    assert outputs[0][0] == outputs[1][0]  # both name the same two folders
    for line in outputs[0][0].splitlines():
        folder = Path(line.split("\t")[1])
        assert paths.damage(folder, deep=True) is None and (folder / paths.CHECKSUMS).is_file()


def test_a_lock_held_by_a_killed_process_does_not_block_the_next_builder(tmp_path):
    from filelock import FileLock, Timeout

    folder = tmp_path / "cache" / "adapters" / "abc"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tailored_harness.core.cache import entry_lock\n"
         f"with entry_lock({str(folder)!r}, 'adapter'):\n    print('held', flush=True)\n    time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            FileLock(str(cache.lock_path(folder))).acquire(timeout=0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        with cache.entry_lock(folder, "adapter"):  # would wait forever if the dead holder kept it
            assert cache.lock_path(folder).exists()
    finally:
        holder.kill()


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_a_truncated_adapter_is_rebuilt_and_a_changed_byte_is_found_when_asked(tiny_model_dir, tmp_path):
    env = _env(tmp_path / "cache")
    first = subprocess.run(_adapt_args(tiny_model_dir, 32), env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    folders = dict(line.split("\t") for line in first.stdout.splitlines())
    weights = Path(folders["synth_boolq"]) / "adapter_model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])  # as a full disk or a killed copy would leave it
    second = subprocess.run(_adapt_args(tiny_model_dir, 32), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"damaged adapter: {weights} has {size // 2} bytes, {size} when written; it will be rebuilt" in second.stderr
    assert second.stderr.count("training adapter for") == 1 and weights.stat().st_size == size
    data = bytearray(weights.read_bytes())
    data[size // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    reused = subprocess.run(_adapt_args(tiny_model_dir, 32), env=env, capture_output=True, text=True, timeout=600)
    assert "training adapter for" not in reused.stderr  # sizes only, by default
    checked = subprocess.run(["tailored", "cache", "verify"], env=env, capture_output=True, text=True, timeout=600)
    assert checked.returncode == 1
    assert f"DAMAGED adapters {weights.parent.name}: {weights} has another sha256 than when written" in checked.stderr
    deep = subprocess.run(_adapt_args(tiny_model_dir, 32), env={**env, paths.VERIFY_ENV: "1"}, capture_output=True,
                          text=True, timeout=600)
    assert deep.returncode == 0 and "has another sha256 than when written; it will be rebuilt" in deep.stderr
    assert deep.stderr.count("training adapter for") == 1
    assert subprocess.run(["tailored", "cache", "verify"], env=env, capture_output=True, text=True).returncode == 0


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_cache_ls_and_rm(tiny_model_dir, tmp_path):
    env = _env(tmp_path / "cache")
    made = subprocess.run(_adapt_args(tiny_model_dir, 33), env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    folders = dict(line.split("\t") for line in made.stdout.splitlines())
    listed = subprocess.run(["tailored", "cache", "ls", "--kind", "adapters"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "2 entries" in listed.stdout
    assert "synth_boolq: 4 shots of train, sft" in listed.stdout and "synth_piqa: 4 shots of train, sft" in listed.stdout
    name = Path(folders["synth_boolq"]).name
    removed = subprocess.run(["tailored", "cache", "rm", name[:6]], env=env, capture_output=True, text=True)
    assert removed.returncode == 0 and "1 entries removed" in removed.stdout
    assert not Path(folders["synth_boolq"]).exists() and Path(folders["synth_piqa"]).exists()
    for args, needle in ((["rm"], "name the entries to remove"), (["rm", "zzz"], "'zzz' names 0 cache entries"),
                         (["ls", "--kind", "bogus"], "invalid choice: 'bogus'")):
        refused = run_cli(["tailored", "cache", *args], env={paths.CACHE_ENV: str(tmp_path / "cache")})
        assert refused.returncode == 2 and needle in refused.stderr and "Traceback" not in refused.stderr


def test_a_pruned_entry_names_its_attention_unit():
    """Checkpoints written before ``attention_unit`` existed (no field) pruned whole KV groups."""
    from tailored_harness.core.cache import _describe

    spec = {"ratio": 0.2, "importance": "param_first", "layers": "4-27"}
    assert _describe("pruned", {"spec": spec}) == "ratio 0.2 param_first, layers 4-27, kv_group units"
    assert _describe("pruned", {"spec": dict(spec, attention_unit="query_head")}).endswith(", query_head units")


def test_atomic_writes_give_new_files_the_umask_mode_and_keep_an_existing_files(tmp_path):
    """``mkstemp`` makes 0600 files; what the package writes atomically is readable as ``open`` would
    make it (0666 less the umask), and a rewrite keeps the mode the file had."""
    old = os.umask(0o022)
    try:
        target = paths.write_text_atomic(tmp_path / "atomic.txt", "one")
        assert target.stat().st_mode & 0o777 == 0o644 and target.read_text() == "one"
        target.chmod(0o600)
        paths.write_text_atomic(target, "two")
        assert target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "two"
    finally:
        os.umask(old)


@pytest.mark.slow  # lm_eval end to end: pruning, adapters, prompt=best and a matcher
def test_cache_ls_knows_every_kind_a_run_builds(tiny_model_dir, local_boolq, monkeypatch, tmp_path):
    """Nothing a run writes into the cache is invisible to ``tailored cache ls|verify|rm``."""
    import lm_eval

    root = tmp_path / "cache"
    monkeypatch.setenv(paths.CACHE_ENV, str(root))
    args = (f"pretrained={tiny_model_dir},dtype=float32,prune_ratio=0.5,importance=l2,shots=6,epochs=1,"
            f"prompt=best,prompt_folds=2,prompt_select=match,match_steps=2,match_batch=2")
    lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=["boolq_tailored"], device="cpu",
                            batch_size=4, task_manager=local_boolq)
    listed = {entry.folder for entry in cache.entries(root)}
    written = {path for kind in root.iterdir() if kind.name != cache.LOCKS for path in kind.iterdir()
               if not path.name.startswith(".")}
    assert written == listed and {p.parent.name for p in written} >= {"pruned", "adapters", "prompt-choices", "matchers"}
    shown = run_cli(["tailored", "cache", "ls"], env={paths.CACHE_ENV: str(root)})
    assert shown.returncode == 0 and f"{len(listed)} entries" in shown.stdout
    assert all(kind in shown.stdout for kind in ("pruned", "adapters", "prompt-choices", "matchers"))
