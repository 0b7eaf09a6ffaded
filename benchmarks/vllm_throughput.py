"""Scoring throughput of backend=hf against backend=vllm, dense and pruned, on the same requests.

Builds the reference suite's requests once (``--limit`` documents per task: log-likelihood
requests from synth_boolq and synth_piqa, greedy generations from synth_qa), then for each model
(the reference model; the same pruned at ``--ratio`` with ``l2``, which needs no calibration,
uniformly and on the inner layers only, which gives per-layer widths)
and each backend times ``loglikelihood`` and ``generate_until`` through ``--model tailored`` after
the model is loaded (and pruned, from the cache), and prints requests per second with the ratios
vllm/hf and pruned/dense, then, per model, how far the two backends' outputs are apart (the
largest log-likelihood difference, identical ``is_greedy``, identical greedy generations).
Float32, no adapters. Run it where vLLM is installed (``.venv-vllm``).

Usage: ``python benchmarks/vllm_throughput.py [--limit 500] [--ratio 0.5] [--hf-batch-size 32] [--model DIR]``
"""

from __future__ import annotations

import argparse
import logging
import time


def load_tasks(names: list[str]) -> dict:
    """lm-eval's task dictionary for ``names``."""
    from lm_eval.tasks import TaskManager, get_task_dict

    return get_task_dict(names, TaskManager())


def build_requests(task_dict: dict, limit: int) -> dict[str, list]:
    """``{request type: [Instance, ...]}`` for the tasks of ``task_dict``, as lm-eval's evaluator builds them."""
    by_type: dict[str, list] = {}
    for task in task_dict.values():
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        for instance in task.instances:
            by_type.setdefault(instance.request_type, []).append(instance)
    return by_type


def time_backend(model: str, backend: str, extra: dict, requests: dict[str, list], hf_batch_size: int,
                 repeats: int) -> tuple[dict[str, float], list[str]]:
    """Requests per second of each request type (best of ``repeats``) on one freshly built
    ``--model tailored``, and generated tokens per second (``tokens``): a model that stops later
    generates more per request, so requests per second alone would mislead there. Also returns the
    outputs (``(loglik, is_greedy)`` pairs and generations), to compare across backends."""
    from tailored_harness.lmeval.model import TailoredLM

    batch_size = "auto" if backend == "vllm" else hf_batch_size
    lm = TailoredLM(pretrained=model, backend=backend, shots=0, dtype="float32", device="cpu", batch_size=batch_size,
                    **extra)
    lm._prepare()  # pruning (or the cache) and the engine start are not timed
    rates, outputs = {}, {}
    for kind in ("loglikelihood", "generate_until"):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            outputs[kind] = getattr(lm, kind)(requests[kind])
            best = min(best, time.perf_counter() - started)
        rates[kind] = len(requests[kind]) / best
    tokens = sum(len(lm.tokenizer.encode(text, add_special_tokens=False)) for text in outputs["generate_until"])
    rates["tokens"] = tokens / best  # best: the generation pass, the last one timed
    del lm
    return rates, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=500, help="documents per task")
    parser.add_argument("--ratio", type=float, default=0.5, help="prune ratio of the pruned model")
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--model", help="model folder (default: the reference model)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement; the best counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from tabulate import tabulate

    from tailored_harness.suite import reference

    model = args.model or str(reference.model_folder(progress=False)[0])
    requests = build_requests(load_tasks(["synth_boolq", "synth_piqa", "synth_qa"]), args.limit)
    layers = reference.ReferenceSpec().num_hidden_layers
    models = {"dense": {}, f"pruned {args.ratio}": {"prune_ratio": args.ratio, "importance": "l2"},
              f"pruned {args.ratio}, layers 1-{layers - 2}": {"prune_ratio": args.ratio, "importance": "l2",
                                                              "prune_layers": f"1-{layers - 2}"}}
    timed = {(name, backend): time_backend(model, backend, extra, requests, args.hf_batch_size, args.repeats)
             for name, extra in models.items() for backend in ("hf", "vllm")}
    rates = {key: value[0] for key, value in timed.items()}
    kinds = ("loglikelihood", "generate_until", "tokens")
    rows = [[name, backend, *(f"{rates[name, backend][k]:.1f}" for k in kinds)] for name, backend in rates]
    print(f"{len(requests['loglikelihood'])} loglikelihood and {len(requests['generate_until'])} generate_until requests")
    print(tabulate(rows, headers=["model", "backend", "loglikelihood req/s", "generate req/s", "generated tokens/s"],
                   tablefmt="github"))
    dense, pruned, _ = models
    ratio_rows = [[f"vllm / hf, {name}", *(f"{rates[name, 'vllm'][k] / rates[name, 'hf'][k]:.2f}" for k in kinds)]
                  for name in models]
    ratio_rows += [[f"pruned / dense, {backend}", *(f"{rates[pruned, backend][k] / rates[dense, backend][k]:.2f}"
                                                    for k in kinds)] for backend in ("hf", "vllm")]
    print(tabulate(ratio_rows, headers=["speed-up", "loglikelihood", "generate", "generated tokens"], tablefmt="github"))
    for name in models:
        print(f"{name}, hf vs vllm: {compare(timed[name, 'hf'][1], timed[name, 'vllm'][1])}")


def compare(ours: dict, theirs: dict) -> str:
    """How far two runs' outputs on the same requests are apart, in one line."""
    pairs = list(zip(ours["loglikelihood"], theirs["loglikelihood"]))
    delta = max(abs(a[0] - b[0]) for a, b in pairs)
    greedy = sum(a[1] == b[1] for a, b in pairs)
    same = sum(a == b for a, b in zip(ours["generate_until"], theirs["generate_until"]))
    return (f"max |Δ loglik| {delta:.2g}; is_greedy identical {greedy}/{len(pairs)}; "
            f"greedy generations identical {same}/{len(ours['generate_until'])}")


if __name__ == "__main__":
    main()
