"""Where ``backend=vllm`` spends its time on log-likelihood requests, next to ``backend=hf``.

Builds the log-likelihood requests of ``--tasks`` (``--limit`` documents each) and, on one model
(float32, no pruning, no adapters), prints:

* the tokens each backend runs through the model: lm-eval's ``VLLM`` sends every (context,
  continuation) pair as a prompt of its own, while ``HFLM`` runs a context once for all of its
  one-token continuations (its Collator groups them), so BoolQ's two one-token answers cost vLLM
  the passage twice;
* requests per second (best of ``--repeats``, models loaded beforehand) of ``hf``, of vLLM through
  lm-eval's own ``VLLM._loglikelihood_tokens`` and through the plugin's
  (:mod:`tailored_harness.backends.vllm_scoring`: one prompt per context of one-token answers), with
  how far each is from ``hf`` per request;
* with ``--profile``, both vLLM passes under ``cProfile`` (the engine runs in the scoring process on
  the CPU, so one profile holds the model, the scheduler and the logprob bookkeeping): the top
  functions by own time, and the share spent inside the model's forward.

Run it where vLLM is installed (``.venv-vllm``), from the shared data's hub folder::

    python benchmarks/vllm_loglikelihood.py --model $M --tasks boolq,piqa --limit 100 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import time


def requests_of(tasks: list[str], limit: int) -> list:
    from lm_eval.tasks import TaskManager, get_task_dict

    out = []
    for task in get_task_dict(tasks, TaskManager()).values():
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        out += [i for i in task.instances if i.request_type == "loglikelihood"]
    return out


def token_counts(lm, requests: list) -> tuple[int, int]:
    """Tokens run through the model: (vLLM: every pair in full; HF: once per distinct context plus
    continuation less its last token, the key lm-eval's HFLM groups requests by)."""
    pairs = [lm._encode_pair(*r.args) for r in requests]
    grouped = {tuple(context + continuation[:-1]): len(context) + len(continuation) for context, continuation in pairs}
    return sum(len(c) + len(k) for c, k in pairs), sum(grouped.values())


def timed(score, repeats: int) -> tuple[float, list]:
    """Best seconds of ``repeats`` calls of ``score()``, and its answers."""
    best, answers = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        answers = score()
        best = min(best, time.perf_counter() - started)
    return best, answers


def build(model: str, backend: str):
    from tailored_harness.lmeval.model import TailoredLM

    lm = TailoredLM(pretrained=model, backend=backend, shots=0, dtype="float32", device="cpu",
                    batch_size="auto" if backend == "vllm" else 8)
    lm._prepare()
    return lm


def profile(score, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    score()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    forward = max((value[3] for (file, _, name), value in stats.stats.items()
                   if name == "forward" and "model_executor/models/llama" in file), default=0.0)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())
    print(f"under the profiler: {total:.1f} s; inside the model's forward: {forward:.1f} s ({100 * forward / total:.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", default="boolq,piqa")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    requests = requests_of(args.tasks.split(","), args.limit)
    hf = build(args.model, "hf")
    pairs = [(None, *hf.backend.lm._encode_pair(*r.args)) for r in requests]
    vllm_tokens, hf_tokens = token_counts(hf.backend.lm, requests)
    seconds = {"hf": timed(lambda: hf.loglikelihood(requests), args.repeats)}
    vllm = build(args.model, "vllm")
    inner = vllm.backend.default_lm
    lm_eval_path = type(inner).__mro__[2]._loglikelihood_tokens  # lm-eval's VLLM, under the plugin's mixin
    seconds["vllm, lm-eval's path"] = timed(lambda: lm_eval_path(inner, pairs), args.repeats)
    seconds["vllm, one prompt per context"] = timed(lambda: inner._loglikelihood_tokens(pairs), args.repeats)
    if args.profile:
        for name, score in (("lm-eval's path", lambda: lm_eval_path(inner, pairs)),
                            ("one prompt per context", lambda: inner._loglikelihood_tokens(pairs))):
            print(f"## vLLM, {name}")
            profile(score, args.top)
    print(f"{len(requests)} log-likelihood requests ({args.tasks}, {args.limit} documents each); tokens through the "
          f"model: lm-eval's vLLM path {vllm_tokens}, hf {hf_tokens} ({vllm_tokens / hf_tokens:.2f}x)")
    reference = seconds["hf"][1]
    for name, (best, answers) in seconds.items():
        delta = max(abs(a[0] - b[0]) for a, b in zip(answers, reference))
        same = sum(a[1] == b[1] for a, b in zip(answers, reference))
        print(f"{name:30s} {len(requests) / best:8.2f} req/s  {seconds['hf'][0] / best:5.2f}x hf   "
              f"max |Δ loglik| vs hf {delta:.2g}, is_greedy identical {same}/{len(requests)}")


if __name__ == "__main__":
    main()
