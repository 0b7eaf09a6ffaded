"""Bad input, a matrix: each row is one ``lm_eval --model tailored`` run that must end in one ``error:``
line naming the bad value and what is valid, with no traceback and nothing left in the cache.

Most rows run lm-eval in this process (``simple_evaluate``): the run must raise a
:class:`TailoredError` whose message is one line holding the needles, which is what the start-up hook
prints as ``error: --model tailored: ...``. A few rows (:data:`CLI_ROWS`) run the real ``lm_eval``
command, to show that the one line is all a user sees: errors raised while lm-eval builds the model,
while it resolves the tasks, while the model loads and while the cache is written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT, built_entries, run_cli
from tailored_harness.core import paths
from tailored_harness.core.errors import TailoredError


def _unwritable(tmp_path: Path) -> Path | None:
    """A cache folder this process cannot write: read-only permissions, or (as root, who ignores them)
    a folder under sysfs, which refuses new entries to everyone."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return folder / "cache"
    sysfs = Path("/sys/tailored-harness-cache")
    return sysfs if _refuses(sysfs) else None


def _refuses(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True)
    except OSError:
        return True
    folder.rmdir()
    return False


def _fixtures(tiny: Path, tmp_path: Path) -> dict[str, str]:
    """Files some rows point at: an empty calibration file, a fake GGUF, a model whose weights do not
    fit its config, and a task with no training split."""
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny, mismatched)
    config = json.loads((mismatched / "config.json").read_text())
    config["intermediate_size"] *= 2
    (mismatched / "config.json").write_text(json.dumps(config))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "notrain.yaml").write_text(f"include: {REPO_ROOT / 'tasks' / 'synth_boolq.yaml'}\n"
                                        "task: synth_boolq_notrain\ntraining_split: null\n")
    return {"tmp": str(tmp_path), "mismatched": str(mismatched), "tasks": str(tasks), "gpt2": str(_gpt2(tiny, tmp_path))}


def _gpt2(tiny: Path, tmp_path: Path) -> Path:
    """A tiny random GPT-2 on the tiny model's tokenizer: an architecture outside the families."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer) + 8, n_embd=32, n_layer=2, n_head=2,
                               n_positions=256)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


ROWS = {  # name: (model_args after pretrained=, tasks, needles the one error line must hold)
    "unknown key": ("{model},foo=1", "synth_boolq", ["foo=1", "valid keys: pretrained"]),
    "bad dtype": ("{model},dtype=float8", "synth_boolq", ["dtype='float8'", "valid: auto, float32"]),
    "prune_ratio -0.1": ("{model},prune_ratio=-0.1", "synth_boolq", ["prune_ratio=-0.1", "in [0, 1)"]),
    "prune_ratio 1": ("{model},prune_ratio=1", "synth_boolq", ["prune_ratio=1 ", "in [0, 1)"]),
    "prune_ratio abc": ("{model},prune_ratio=abc", "synth_boolq", ["prune_ratio='abc'", "in [0, 1)"]),
    "prune_layers out of range": ("{model},prune_ratio=0.5,prune_layers=0-99", "synth_boolq",
                                  ["prune_layers='0-99'", "layers 0-1"]),
    "prune_layers reversed": ("{model},prune_ratio=0.5,prune_layers=1-0", "synth_boolq", ["'1-0'", "A <= B"]),
    "unknown importance": ("{model},prune_ratio=0.5,importance=bogus", "synth_boolq", ["'bogus'", "valid: l1, l2"]),
    "calibration missing": ("{model},prune_ratio=0.5,calibration={tmp}/none.txt", "synth_boolq",
                            ["none.txt", "valid: tasks, or an existing .txt/.jsonl file"]),
    "calibration empty": ("{model},prune_ratio=0.5,calibration={tmp}/empty.txt", "synth_boolq",
                          ["empty.txt", "gives only 0 tokens"]),
    "shots beyond the split": ("{model},shots=100000", "synth_boolq", ["shots=100000", "valid: shots=1.."]),
    "shots -1": ("{model},shots=-1", "synth_boolq", ["shots=-1", "non-negative integer"]),
    "no training split": ("{model},shots=4", "synth_boolq_notrain", ["synth_boolq_notrain", "shots=0"]),
    "unknown task": ("{model},shots=0", "nosuchtask", ["nosuchtask", "lm_eval ls tasks"]),
    "lora_r 0": ("{model},shots=4,lora_r=0", "synth_boolq", ["lora_r=0", "positive integer"]),
    "not a GGUF file": ("{tmp}/fake.gguf", "synth_boolq", ["fake.gguf", "not a GGUF file"]),
    "weights do not fit config": ("{mismatched}", "synth_boolq", ["mismatched", "do not fit its config.json"]),
    "unknown architecture, pruned": ("{gpt2},prune_ratio=0.5", "synth_boolq",
                                     ["'gpt2'", "llama, mistral, qwen2, qwen3, gemma3_text, phi3"]),
    "unknown architecture, adapted": ("{gpt2},shots=4", "synth_boolq", ["'gpt2'", "supported"]),
    "vllm without vllm": ("{model},backend=vllm", "synth_boolq", ["backend=vllm", "vllm"]),
    "TELL with prompt=best": ("{model},shots=4,adapt_method=tell,prompt=best", "synth_boolq",
                              ["adapt_method=tell", "prompt=best", "plain (sft) adapters", "prompt=default"]),
    "TELL with prompt=best on vllm": ("{model},shots=4,adapt_method=tell,prompt=best,backend=vllm", "synth_boolq",
                                      ["adapt_method=tell", "prompt=best", "plain (sft) adapters", "prompt=default"]),
    "TELL with prompt_select": ("{model},shots=4,adapt_method=tell,prompt_select=match", "synth_boolq",
                                ["adapt_method=tell", "prompt_select", "plain (sft) adapters"]),
    "adapter_strategy on hf": ("{model},adapter_strategy=native", "synth_boolq", ["adapter_strategy", "backend=vllm"]),
    "read-only cache": ("{model},prune_ratio=0.5", "synth_boolq", ["cannot write", "TAILORED_HARNESS_CACHE"]),
    "full disk": ("{model},prune_ratio=0.5", "synth_boolq", ["cannot write", "No space left on device (ENOSPC)"]),
}

#: The rows run as a real ``lm_eval`` process (the rest run in this process).
CLI_ROWS = ("unknown key", "unknown task", "weights do not fit config", "full disk")

#: Put first on PYTHONPATH for the "full disk" row: the disk fills up as the pruned checkpoint's last
#: file is written, after its weights (the way a real full disk interrupts a write).
FULL_DISK = """
import errno
from tailored_harness.core import paths
def write_checksums(folder):
    raise OSError(errno.ENOSPC, "No space left on device")
paths.write_checksums = write_checksums
"""


def _left_in(root: Path) -> list[str]:
    """What a refused run left in the cache: built entries and temporary folders (lock files are bookkeeping)."""
    if not root.is_dir():
        return []
    left = [str(e.folder) for e in built_entries(root)]
    left += [str(p) for p in root.rglob(".*") if p.is_dir()]
    return left


def _setup(row: str, tiny: Path, tmp_path: Path) -> tuple[str, str, Path, dict[str, str]]:
    """The row's ``model_args``, its tasks, the cache root it runs on, and the folder of its extra tasks."""
    if row == "vllm without vllm" and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    model_args, tasks, _ = ROWS[row]
    values = _fixtures(tiny, tmp_path)
    root = tmp_path / "cache"
    if row == "read-only cache":
        root = _unwritable(tmp_path)
        if root is None:
            pytest.skip("no folder here refuses writes to this user")
    return "pretrained=" + model_args.format(model=tiny, **values), tasks, root, values


@pytest.mark.parametrize("row", [row for row in ROWS if row not in CLI_ROWS])
def test_bad_input_raises_one_line_naming_it_and_leaves_nothing(row, tiny_model_dir, tmp_path, monkeypatch):
    import lm_eval
    from lm_eval.tasks import TaskManager

    model_args, tasks, root, values = _setup(row, tiny_model_dir, tmp_path)
    monkeypatch.setenv(paths.CACHE_ENV, str(root))
    with pytest.raises(TailoredError) as raised:
        lm_eval.simple_evaluate(model="tailored", model_args=model_args, tasks=tasks.split(","), limit=2,
                                device="cpu", task_manager=TaskManager(include_path=values["tasks"]))
    message = str(raised.value)
    assert "\n" not in message.strip(), message
    for needle in ROWS[row][2]:
        assert needle in message, message
    assert _left_in(root) == []


@pytest.mark.slow
@pytest.mark.parametrize("row", CLI_ROWS)
def test_bad_input_is_one_error_line_naming_it_and_leaves_nothing(row, tiny_model_dir, tmp_path):
    model_args, tasks, root, values = _setup(row, tiny_model_dir, tmp_path)
    args = ["lm_eval", "--model", "tailored", "--model_args", model_args, "--tasks", tasks, "--limit", "2",
            "--include_path", values["tasks"]]
    env = {paths.CACHE_ENV: str(root)}
    if row == "full disk":
        (tmp_path / "inject").mkdir()
        (tmp_path / "inject" / "sitecustomize.py").write_text(FULL_DISK)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path / "inject"), os.environ.get("PYTHONPATH")]))
    result = run_cli(args, env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    for needle in ROWS[row][2]:
        assert needle in errors[0], errors[0]
    assert _left_in(root) == []
