"""Tiny random models for the pruning tests: LLaMA with and without grouped-query attention, and one
of every supported family."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tailored_harness.suite.tiny import FAMILY_CONFIGS, family_config

# name -> (heads, kv heads, tied input and output embeddings); hidden 64, head_dim 16, three layers, MLP 96.
SHAPES = {"gqa": (4, 2, False), "mha": (4, 4, False), "gqa_tied": (4, 2, True)}
VOCAB = 101


def tiny_llama(shape: str = "gqa", seed: int = 0, layers: int = 3, bias: bool = False) -> LlamaForCausalLM:
    heads, kv, tied = SHAPES[shape]
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=128,
                         attention_bias=bias, mlp_bias=bias, tie_word_embeddings=tied)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    with torch.no_grad():  # random init leaves biases at zero; make them matter
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


FAMILIES = tuple(FAMILY_CONFIGS)


def tiny_family(family: str, seed: int = 0, layers: int = 3, tied: bool = False):
    """A tiny random model of ``family`` (:data:`tailored_harness.suite.tiny.FAMILY_CONFIGS`), float32,
    in eval mode; biases, where the family has them, drawn away from zero so that cutting them matters."""
    import transformers

    config = family_config(family, vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                           tie_word_embeddings=tied, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).to(torch.float32).eval()
    with torch.no_grad():
        for param_name, p in model.named_parameters():
            if param_name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def calibration(samples: int = 4, length: int = 12, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (samples, length), generator=generator)


def calibration_batch(samples: int = 4, length: int = 12, seed: int = 1):
    """A calibration batch shaped like ``calibration=tasks``: each sample takes its loss only on a
    tail of a different length (its "continuation"), the rest is context; the last sample is padded."""
    from tailored_harness.prune.calibration import Batch
    from tailored_harness.taskio.task_format import IGNORE

    ids = calibration(samples, length, seed)
    labels = ids.clone()
    for i in range(samples):
        labels[i, : length - 4 - i % 3] = IGNORE
    labels[-1, -2:] = IGNORE  # right padding: neither a label nor seen by any labelled token
    return Batch(ids, labels)


def probe() -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.randint(0, VOCAB, (2, 10), generator=generator)


@torch.no_grad()
def logits(model, ids=None) -> torch.Tensor:
    return model(input_ids=probe() if ids is None else ids).logits


def hand_count(config, heads: list[int], kv: list[int], mlp: list[int]) -> int:
    """Parameters of a LLaMA (no biases) from its config and per-layer widths, counted by hand:
    embedding, one output layer unless tied, per layer q/k/v/o, gate/up/down and two norms, final norm."""
    hidden, head_dim, vocab = config.hidden_size, config.head_dim or config.hidden_size // config.num_attention_heads, config.vocab_size
    total = vocab * hidden * (1 if config.tie_word_embeddings else 2) + hidden
    for h, k, m in zip(heads, kv, mlp):
        total += hidden * head_dim * (2 * h + 2 * k) + 3 * hidden * m + 2 * hidden
    return total


def bare_venv(root: Path) -> Path:
    """A venv that sees this one's packages (by symlink) except tailored_harness and its start-up hook."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    target = Path(subprocess.run([str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    for entry in site.iterdir():
        if entry.name.startswith(("tailored_harness", "tailored-harness", "tailored_harness_hook",
                                  "_editable_impl_tailored_harness", "__editable__")):  # and an editable install's hook
            continue
        (target / entry.name).symlink_to(entry)
    return root / "bin" / "python"


def load_without_plugin(folder: Path, expected: Path, tmp_path: Path, atol: float = 0.0) -> str:
    """Load ``folder`` with ``trust_remote_code=True`` in a :func:`bare_venv`, assert its logits on the
    ids stored in ``expected`` (``torch.save`` of ``{"ids", "logits"}``) equal the stored logits (bit
    for bit, or within ``atol`` for logits stored on another machine), and return what the script
    printed: ``loaded <class name> <top module of the class>``."""
    python = bare_venv(tmp_path / "bare")
    script = f"""
import importlib.util, torch
assert importlib.util.find_spec("tailored_harness") is None, "plugin visible"
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True)
stored = torch.load({str(expected)!r})
with torch.no_grad():
    got = model(input_ids=stored["ids"]).logits
assert (got - stored["logits"]).abs().max() <= {atol!r}, (got - stored["logits"]).abs().max()
print("loaded", type(model).__name__, type(model).__module__.split(".")[0])
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()
