"""backend=vllm with per-task adapters: the ``merged`` strategy against ``native``, side by side.

Builds the reference suite's requests once (``--limit`` documents per task: log-likelihood
requests from synth_boolq and synth_piqa, greedy generations from synth_qa), prunes the reference
model at ``--ratio`` (``l2``) and trains one adapter per task with ``--shots`` and ``--epochs``
(once; later runs take pruned model and adapters from the cache). Then for each strategy it builds
a fresh ``--model tailored`` and times, separately:

- ``prepare``: what happens before the first request once the adapters exist (``merged`` writes
  one merged model folder per task, or finds them in the cache);
- ``scoring``: ``loglikelihood`` on all log-likelihood requests, then ``generate_until`` on all
  generation requests, as lm-eval calls them, engine starts included: ``merged`` starts one engine
  per task, ``native`` one in all.

Prints seconds and requests per second per strategy, the ratio native/merged, and how far the two
strategies' outputs are apart (largest log-likelihood difference, identical ``is_greedy`` and
generations). Float32. Run it where vLLM is installed (``.venv-vllm``).

Usage: ``python benchmarks/vllm_adapter_strategies.py [--limit 200] [--ratio 0.2] [--shots 50] [--epochs 5] [--model DIR]``
"""

from __future__ import annotations

import argparse
import logging
import time

from vllm_throughput import build_requests, compare, load_tasks


def run_strategy(model: str, strategy: str, extra: dict, task_dict: dict,
                 requests: dict[str, list]) -> tuple[dict[str, float], dict]:
    """Seconds of prepare and of scoring on one freshly built ``--model tailored``, and the outputs."""
    from tailored_harness.lmeval.model import TailoredLM
    from tailored_harness.lmeval.run_context import tasks_scope

    lm = TailoredLM(pretrained=model, backend="vllm", adapter_strategy=strategy, dtype="float32", device="cpu",
                    batch_size="auto", **extra)
    started = time.perf_counter()
    with tasks_scope(task_dict):  # the adapters are found by the run's tasks, as under lm-eval
        lm._prepare()
    prepared = time.perf_counter()
    outputs = {kind: getattr(lm, kind)(requests[kind]) for kind in ("loglikelihood", "generate_until")}
    seconds = {"prepare": prepared - started, "scoring": time.perf_counter() - prepared}
    lm.backend.close()  # the next strategy's engine starts in this process
    return seconds, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="documents per task")
    parser.add_argument("--ratio", type=float, default=0.2, help="prune ratio (0: the dense model)")
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", help="model folder (default: the reference model)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from tabulate import tabulate

    from tailored_harness.lmeval.model import TailoredLM
    from tailored_harness.lmeval.run_context import tasks_scope
    from tailored_harness.suite import reference

    model = args.model or str(reference.model_folder(progress=False)[0])
    task_dict = load_tasks(["synth_boolq", "synth_piqa", "synth_qa"])
    requests = build_requests(task_dict, args.limit)
    extra = {"shots": args.shots, "epochs": args.epochs, "prune_ratio": args.ratio, "importance": "l2"}
    with tasks_scope(task_dict):  # prune and train once, on transformers: neither strategy's timing includes it
        TailoredLM(pretrained=model, dtype="float32", device="cpu", **extra)._prepare()
    timed = {strategy: run_strategy(model, strategy, extra, task_dict, requests) for strategy in ("merged", "native")}
    count = sum(len(value) for value in requests.values())
    rows = [[strategy, f"{s['prepare']:.1f}", f"{s['scoring']:.1f}", f"{count / s['scoring']:.1f}"]
            for strategy, (s, _) in timed.items()]
    print(f"{len(requests['loglikelihood'])} loglikelihood and {len(requests['generate_until'])} generate_until "
          f"requests; prune_ratio={args.ratio}, shots={args.shots}, epochs={args.epochs}")
    print(tabulate(rows, headers=["strategy", "prepare s", "scoring s (engine starts included)", "requests/s"],
                   tablefmt="github"))
    merged, native = timed["merged"][0], timed["native"][0]
    print(f"native / merged: prepare {native['prepare'] / merged['prepare']:.2f}, "
          f"scoring {native['scoring'] / merged['scoring']:.2f} (below 1: native is faster)")
    print(f"native vs merged: {compare(timed['native'][1], timed['merged'][1])}")


if __name__ == "__main__":
    main()
