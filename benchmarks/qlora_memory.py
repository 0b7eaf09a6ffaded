"""LoRA against QLoRA: peak memory and wall time of training one task's adapter, side by side.

Each measurement runs in a fresh subprocess (``ru_maxrss`` is per process, and a child's high-water
mark starts at its parent's, so this process never loads a model). A child loads the model (plain:
``from_pretrained`` in ``--dtype``; QLoRA: :func:`tailored_harness.adapt.quant.load_4bit`, NF4 with
double quantization, float32 compute), then trains one adapter with the library's trainer
(:func:`tailored_harness.adapt.train.train_adapter`) on ``--shots`` examples of ``--tokens`` tokens.
A sampler thread reads the process's resident memory every few milliseconds, so the child reports
the peak of each phase apart: loading, and training (forward, backward, optimizer).

Models: SmolLM2-135M (``--model``, the real model) and a model shaped like LLaMA-7B (4096 wide, 32
heads, 11008 MLP channels, the LLaMA-2 tokenizer's 32,000 tokens, untied) with ``--big-layers``
decoder layers of random weights, saved in bfloat16 as ``benchmarks/end_to_end.py`` builds it.
QLoRA computes in float32 (the CPU default); "weights dtype" is what the model is loaded in (LoRA's
weights, QLoRA's embeddings, norms and output layer). Every configuration runs under glibc's default
allocator and again with a fixed mmap threshold (:data:`ALLOCATORS`): QLoRA dequantizes each 4-bit
weight at every use, and how much of that churn stays resident is the allocator's doing.
Goal (issue 35): on the 7B shape, QLoRA's training peak at most 0.5 of LoRA's.

Usage (nothing else running, for the times)::

    python benchmarks/qlora_memory.py --model $(tailored real-model smollm2)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from end_to_end import big_model, run_measured  # a sibling script: benchmarks/ is on sys.path when run as one

GOAL = 0.5
SAMPLE_SECONDS = 0.005


class PeakRSS:
    """The largest resident memory (MiB) of this process since the last :meth:`take`, sampled from
    ``/proc/self/statm`` by a daemon thread: all of it (what ``top`` shows) and its anonymous part
    (all less file-backed pages: a checkpoint's memory-mapped file counts in the first only; the kernel
    can drop those clean pages under pressure, while anonymous memory must fit)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.peak = (0.0, 0.0)
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> tuple[float, float]:
        """(resident, anonymous) MiB now."""
        with open("/proc/self/statm") as statm:
            _, resident, shared = (int(field) for field in statm.read().split()[:3])
        return resident * self.page, (resident - shared) * self.page

    def _run(self) -> None:
        while True:
            now = self.now()
            self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))
            time.sleep(SAMPLE_SECONDS)

    def take(self) -> tuple[float, float]:
        """The peaks since the previous call (at least the current sizes), then start over."""
        now = self.now()
        peak, self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1])), (0.0, 0.0)
        return peak


def child(folder: str, method: str, dtype: str, shots: int, tokens: int) -> dict:
    """Load ``folder`` for ``method`` (``lora`` or ``qlora``), train one adapter; the phases' peaks."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.adapt.quant import QuantSpec, four_bit_linears, load_4bit
    from tailored_harness.adapt.spec import AdaptSpec
    from tailored_harness.adapt.train import train_adapter

    rss = PeakRSS()
    started = rss.take()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    clock = time.perf_counter()
    if method == "qlora":
        model = load_4bit(folder, QuantSpec(scheme="nf4", compute_dtype="float32"), dtype)
        assert four_bit_linears(model)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    load_seconds = time.perf_counter() - clock
    load_peak = rss.take()
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    word = " lorem"  # one token per word in both tokenizers; the context is cut to ``tokens`` from the left
    pairs = [(f"example {i}:" + word * tokens, " yes" if i % 2 else " no") for i in range(shots)]
    spec = AdaptSpec(shots=shots, epochs=1, batch_size=2, grad_accum=1, max_len=tokens)
    clock = time.perf_counter()
    _, losses = train_adapter(model, tokenizer, pairs, spec, progress=False)
    train_seconds = time.perf_counter() - clock
    return {"baseline": started, "load_peak": load_peak, "weights": weights,
            "train_peak": rss.take(), "load_seconds": load_seconds, "train_seconds": train_seconds,
            "steps": len(losses)}


#: (method, dtype of the weights loaded): each QLoRA row is compared with the LoRA row of its dtype
CONFIGS = (("lora", "float32"), ("qlora", "float32"), ("lora", "bfloat16"), ("qlora", "bfloat16"))


#: glibc settings of the children: its defaults, and big allocations always mapped apart, so that
#: freed tensors go back to the system (``MALLOC_MMAP_THRESHOLD_`` fixes the threshold glibc otherwise
#: raises as it frees, after which freed blocks stay in the process's heap and in its resident size)
ALLOCATORS = {"glibc default": {}, "1 MiB mmap threshold": {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}}


def measure(name: str, folder: str, shots: int, tokens: int, allocators: list[str]) -> list[list]:
    """One row per allocator and configuration of ``name``: each child's phases; QLoRA's against LoRA's
    of its dtype and allocator. Peaks are written ``resident / anonymous`` MiB."""
    rows = []
    for allocator in allocators:
        reference = {}
        for method, dtype in CONFIGS:
            argv = [sys.executable, __file__, "--child", json.dumps([folder, method, dtype, shots, tokens])]
            _, max_rss, out = run_measured(argv, env=ALLOCATORS[allocator])
            got = json.loads(out.strip().splitlines()[-1])
            base = reference.setdefault(dtype, got)
            ratios = [got["train_peak"][i] / base["train_peak"][i] for i in (0, 1)]
            goal = ""
            if method == "qlora" and "7B" in name:
                goal = f"<= {GOAL}: {'met' if max(ratios) <= GOAL else 'NOT met'}"
            label = "QLoRA (NF4, double quant.)" if method == "qlora" else "LoRA"
            rows.append([name, allocator, label, dtype, f"{got['weights']:.0f}", _pair(got["load_peak"]),
                         _pair(got["train_peak"]), f"{max_rss:.0f}", f"{ratios[0]:.2f} / {ratios[1]:.2f}",
                         f"{got['train_seconds'] / base['train_seconds']:.2f}", f"{got['load_seconds']:.1f}",
                         f"{got['train_seconds']:.1f}", goal])
    return rows


def _pair(peaks: list[float]) -> str:
    return f"{peaks[0]:.0f} / {peaks[1]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="SmolLM2-135M's folder (tailored real-model smollm2)")
    parser.add_argument("--big-layers", default="4,8", help="decoder layers of the LLaMA-7B-shaped models, "
                        "comma-separated: the embeddings' share falls as layers grow (default: %(default)s)")
    parser.add_argument("--tokenizer", default=os.path.join(os.environ.get("TAILORED_SHARED_DIR", "../shared"),
                                                            "models", "llama2-tokenizer"))
    parser.add_argument("--shots", type=int, default=4, help="training examples (one epoch, two per step)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per example")
    parser.add_argument("--allocators", default=",".join(ALLOCATORS),
                        help="comma-separated allocator settings of the children (default: %(default)s)")
    parser.add_argument("--work", default=os.path.join("/tmp", "tailored-qlora-memory"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    if args.child_build:
        folder, tokenizer, layers = json.loads(args.child_build)
        big_model(Path(folder), tokenizer, layers)
        return
    from tabulate import tabulate

    allocators = args.allocators.split(",")
    unknown = sorted(set(allocators) - set(ALLOCATORS))
    if unknown:
        parser.error(f"--allocators {','.join(unknown)}: valid: {', '.join(ALLOCATORS)}")
    rows = []
    if args.model:
        rows += measure("SmolLM2-135M", args.model, args.shots, args.tokens, allocators)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for layers in (int(count) for count in args.big_layers.split(",")):
        big = str(work / f"llama7b-shaped-{layers}")
        run_measured([sys.executable, __file__, "--child-build", json.dumps([big, args.tokenizer, layers])])
        rows += measure(f"LLaMA-7B-shaped, {layers} layers", big, args.shots, args.tokens, allocators)
    print(tabulate(rows, ["model", "allocator", "method", "weights dtype", "parameters MiB", "load peak MiB", "train peak MiB",
                          "process peak MiB", "train peak / LoRA's", "train time / LoRA's", "load s", "train s",
                          "goal"], tablefmt="github"))
    print("Peaks: resident / anonymous (resident less file-backed pages) MiB, sampled every "
          f"{SAMPLE_SECONDS * 1000:.0f} ms; process peak: the child's ru_maxrss.")


if __name__ == "__main__":
    main()
