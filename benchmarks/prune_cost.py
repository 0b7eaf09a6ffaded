"""Cost of Taylor scoring and pruning on layers shaped like LLaMA-7B (random weights, bfloat16, CPU).

Each measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own:

* ``ours``: the plugin's engine (frozen weights, gradients rebuilt per block from activations);
* ``autograd``: the usual way, ``loss.backward()`` with every weight's ``.grad`` materialised
  (LLM-Pruner additionally keeps a squared-gradient accumulator per weight for its second order).

Peak memory is reported as a multiple of the weights' size: (peak RSS - RSS before the weights were
allocated) / weight bytes. Runs with 2 and 4 decoder layers give the per-layer cost (RSS is noisy
at the scale of one layer, so the slope is taken over two), extrapolated to LLaMA-7B's 32 layers. Usage: ``python benchmarks/prune_cost.py [--samples 10 --seq-len 64]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SMALL, LARGE = 2, 4  # decoder layers of the two measured models
SHAPE = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def measure(mode: str, layers: int, samples: int, seq_len: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tailored_harness.prune import PruneSpec
    from tailored_harness.prune.importance import score_units
    from tailored_harness.prune.plan import apply, finalize, select

    torch.manual_seed(0)
    config = LlamaConfig(num_hidden_layers=layers, **SHAPE)
    with torch.device("meta"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    before = rss_mb()
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    model.model.rotary_emb.__init__(config)  # real inv_freq (to_empty left it uninitialised)
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    ids = torch.randint(0, SHAPE["vocab_size"], (samples, seq_len))
    start = time.perf_counter()
    if mode == "ours":
        scores = score_units(model, "param_first", list(range(layers)), input_ids=ids, progress=False)
    else:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        scores = None
    scoring_s = time.perf_counter() - start
    scoring_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    prune_s = None
    if scores is not None:
        start = time.perf_counter()
        apply(model, select(scores, PruneSpec(ratio=0.25)))
        finalize(model)
        prune_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "layers": layers, "weights_mb": weights_mb, "peak_over_weights": (peak_mb - before) / weights_mb,
            "scoring_peak_over_weights": (scoring_peak_mb - before) / weights_mb, "scoring_s": scoring_s, "prune_s": prune_s}


def run_child(mode: str, layers: int, args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--layers", str(layers), "--samples", str(args.samples),
                          "--seq-len", str(args.seq_len)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--child")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.layers, args.samples, args.seq_len)))
        return
    from tabulate import tabulate

    rows = [run_child(mode, layers, args) for layers in (SMALL, LARGE) for mode in ("ours", "autograd")]
    print(tabulate([[r["mode"], r["layers"], f"{r['weights_mb']:.0f}", f"{r['scoring_peak_over_weights']:.2f}x",
                     f"{r['peak_over_weights']:.2f}x", f"{r['scoring_s']:.1f}", "" if r["prune_s"] is None else f"{r['prune_s']:.2f}"]
                    for r in rows],
                   headers=["engine", "layers", "weights MB", "peak / weights (scoring)", "peak / weights (all)", "scoring s",
                            "prune s"], tablefmt="github"))
    by = {(r["mode"], r["layers"]): r for r in rows}
    step = LARGE - SMALL
    layer_mb = (by["ours", LARGE]["weights_mb"] - by["ours", SMALL]["weights_mb"]) / step
    full_mb = by["ours", SMALL]["weights_mb"] + (32 - SMALL) * layer_mb
    print()
    for mode, key, what in (("ours", "scoring_peak_over_weights", "scoring"), ("ours", "peak_over_weights", "scoring + pruning"),
                            ("autograd", "peak_over_weights", "backward")):
        # memory above the weights: what one layer adds, extrapolated from the 1- and 2-layer runs
        over = {n: by[mode, n][key] * by[mode, n]["weights_mb"] - by[mode, n]["weights_mb"] for n in (SMALL, LARGE)}
        full_over = over[SMALL] + (32 - SMALL) * (over[LARGE] - over[SMALL]) / step
        print(f"{mode:8s} {what:18s} extrapolated to LLaMA-7B (32 layers, {full_mb / 1024:.1f} GiB bf16 weights): "
              f"peak {(full_mb + full_over) / full_mb:.2f}x the weights")
    per_layer_s = (by["ours", LARGE]["scoring_s"] - by["ours", SMALL]["scoring_s"]) / step
    print(f"Taylor scoring: {per_layer_s:.2f} s per decoder layer, about "
          f"{by['ours', SMALL]['scoring_s'] + (32 - SMALL) * per_layer_s:.0f} s for 32 layers on this CPU "
          f"(N={args.samples}, L={args.seq_len})")
    ratio = by["autograd", LARGE]["peak_over_weights"] / by["ours", LARGE]["peak_over_weights"]
    print(f"peak ratio autograd / ours at {LARGE} layers: {ratio:.2f}  (target for ours: at most 1.5x the weights)")


if __name__ == "__main__":
    main()
