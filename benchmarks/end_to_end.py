"""End to end: the plugin's overhead, the scoring speed pruning buys, and a repeated run, in one run.

Three parts, each measurement in a fresh subprocess (its peak RSS, ``ru_maxrss`` from ``wait4``, is
its own: this process loads no model, since a child's high-water mark starts at its parent's):

1. **Overhead.** ``lm_eval --model tailored`` (``shots=0``, no pruning) against ``lm_eval --model
   hf`` on the same model, tasks and documents: wall time and peak memory of the whole command,
   ``--pairs`` interleaved pairs, medians. Goal: at most 1.02 times on both.
2. **Scoring throughput.** Log-likelihood requests per second, pruned at each ratio against dense,
   in ``--rounds`` interleaved rounds (medians of the within-round ratios, and their range), after the
   model is loaded (and pruned, from the cache: pruning is not timed; ``importance=l2``,
   as widths alone set the speed), on the real model (float32; layers 4-27 pruned as the real suite
   prunes) and on a model shaped like LLaMA-7B (4096 wide, 32 heads, 11008 MLP channels, the LLaMA-2
   tokenizer) with ``--big-layers`` decoder layers of random weights in bfloat16, every layer pruned;
   for ``hf`` and, with ``--vllm-python``, ``vllm``. Goal on ``hf``: at least 1.25 times at 0.2 and
   1.6 times at 0.5.
3. **Repeated run.** The same ``lm_eval --model tailored`` command (pruning with Taylor scores and
   one ``shots``-shot adapter per task) twice on an empty cache: the first run prunes and trains, the
   second finds everything cached. Wall time and peak memory of both.

Usage (offline, from the shared data's hub folder, nothing else running)::

    M=$(tailored real-model smollm2)
    python benchmarks/end_to_end.py --model $M --vllm-python .venv-vllm/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATIOS = (0.2, 0.5)
GOALS = {0.2: 1.25, 0.5: 1.6}
OVERHEAD_GOAL = 1.02
BIG_SHAPE = dict(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32)


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Runs ``argv`` to the end: (wall seconds, peak RSS in MiB of the process, its stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})}, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode:
            raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def lm_eval_argv(model: str, model_args: str, tasks: str, limit: int) -> list[str]:
    return [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", model_args, "--tasks", tasks,
            "--limit", str(limit), "--batch_size", "8", "--device", "cpu"]


def overhead(model: str, tasks: str, limit: int, pairs: int) -> list[list]:
    """Median wall time and peak RSS of ``hf`` and ``tailored`` (shots=0), interleaved."""
    runs = {"hf": [], "tailored": []}
    for _ in range(pairs):
        for name, args in (("hf", f"pretrained={model},dtype=float32"),
                           ("tailored", f"pretrained={model},dtype=float32,shots=0")):
            runs[name].append(run_measured(lm_eval_argv(name, args, tasks, limit))[:2])
    med = {name: (statistics.median(r[0] for r in found), statistics.median(r[1] for r in found))
           for name, found in runs.items()}
    wall, peak = med["tailored"][0] / med["hf"][0], med["tailored"][1] / med["hf"][1]
    return [["overhead: wall s", f"{med['hf'][0]:.1f}", f"{med['tailored'][0]:.1f}", f"{wall:.3f}", "",
             f"<= {OVERHEAD_GOAL}", _met(wall <= OVERHEAD_GOAL)],
            ["overhead: peak MiB", f"{med['hf'][1]:.0f}", f"{med['tailored'][1]:.0f}", f"{peak:.3f}", "",
             f"<= {OVERHEAD_GOAL}", _met(peak <= OVERHEAD_GOAL)]]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def throughput_child(model: str, backend: str, dtype: str, extra: str, tasks: str, limit: int, repeats: int) -> dict:
    """In a child: log-likelihood requests per second of one freshly built ``--model tailored``
    (best of ``repeats``) and its parameter count."""
    from lm_eval.tasks import TaskManager, get_task_dict

    from tailored_harness.lmeval.model import TailoredLM

    requests = []
    for task in get_task_dict(tasks.split(","), TaskManager()).values():
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        requests += [i for i in task.instances if i.request_type == "loglikelihood"]
    args = f"pretrained={model},backend={backend},shots=0,dtype={dtype}" + (f",{extra}" if extra else "")
    lm = TailoredLM.create_from_arg_string(args, {"batch_size": "auto" if backend == "vllm" else 8, "device": "cpu"})
    lm._prepare()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        lm.loglikelihood(requests)
        best = min(best, time.perf_counter() - started)
    params = (lm.backend.pruning or {}).get("parameters_after")
    return {"rate": len(requests) / best, "requests": len(requests), "parameters": params}


def throughput(models: dict, backends: dict, tasks: str, limits: dict, repeats: int,
               rounds: int) -> tuple[list[list], list[list]]:
    """Rows of requests per second for every model, ratio and backend, and the pruned/dense ratios.

    The machine's speed drifts by more than the effect measured (on this 2-core box, dense SmolLM2 on
    ``hf`` ran at 8.5 to 9.5 requests per second in runs minutes apart), so each (model, backend) runs
    ``rounds`` interleaved rounds of dense, 0.2 and 0.5, each a fresh child, and a speed-up is the
    median over rounds of the ratio within one round. Rates are medians; peak is the largest child's.
    """
    rows, ratios = [], []
    for name, (folder, dtype, layers) in models.items():
        for backend, python in backends.items():
            found = {ratio: [] for ratio in (0.0, *RATIOS)}
            for _ in range(rounds):
                for ratio in found:
                    extra = f"prune_ratio={ratio},importance=l2,prune_layers={layers}" if ratio else ""
                    argv = [python, __file__, "--child-throughput", json.dumps(
                        [folder, backend, dtype, extra, tasks, limits[name], repeats])]
                    _, peak, out = run_measured(argv)
                    found[ratio].append({**json.loads(out.strip().splitlines()[-1]), "peak": peak})
            rates = {ratio: [run["rate"] for run in runs] for ratio, runs in found.items()}
            for ratio, runs in found.items():
                rows.append([name, backend, ratio, runs[0]["parameters"] or "dense", runs[0]["requests"],
                             f"{statistics.median(rates[ratio]):.2f}", " ".join(f"{r:.2f}" for r in rates[ratio]),
                             f"{max(run['peak'] for run in runs):.0f}"])
            for ratio in RATIOS:
                speeds = [rate / base for rate, base in zip(rates[ratio], rates[0.0])]
                speed = statistics.median(speeds)
                goal = GOALS[ratio] if backend == "hf" else None
                ratios.append([f"throughput {ratio} / dense: {name}, {backend}", f"{statistics.median(rates[0.0]):.2f}",
                               f"{statistics.median(rates[ratio]):.2f}", f"{speed:.2f}",
                               f"{min(speeds):.2f}-{max(speeds):.2f}", f">= {goal}" if goal else "(no goal)",
                               _met(speed >= goal) if goal else ""])
    return rows, ratios


def repeated(model: str, tasks: str, limit: int, shots: int, backends: dict) -> list[list]:
    """First and second run of one pruned and adapted ``lm_eval --model tailored`` on an empty cache."""
    out = []
    for backend, python in backends.items():
        with tempfile.TemporaryDirectory(prefix="tailored-repeat-") as cache:
            args = (f"pretrained={model},dtype=float32,shots={shots},prune_ratio=0.2,prune_layers=4-27,"
                    f"backend={backend}")
            argv = [python, *lm_eval_argv("tailored", args, tasks, limit)[1:]]
            first = run_measured(argv, {"TAILORED_HARNESS_CACHE": cache})
            second = run_measured(argv, {"TAILORED_HARNESS_CACHE": cache})
        out.append([f"repeated run, {backend}: wall s", f"{first[0]:.1f}", f"{second[0]:.1f}",
                    f"{second[0] / first[0]:.3f}", "", "", ""])
        out.append([f"repeated run, {backend}: peak MiB", f"{first[1]:.0f}", f"{second[1]:.0f}",
                    f"{second[1] / first[1]:.3f}", "", "", ""])
    return out


def big_model(folder: Path, tokenizer: str, layers: int) -> str:
    """A LLaMA-7B-shaped model with ``layers`` decoder layers of random weights (bfloat16), saved once."""
    if (folder / "config.json").is_file():
        return str(folder)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer)
    config = LlamaConfig(vocab_size=len(tok), num_hidden_layers=layers, torch_dtype="bfloat16",
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **BIG_SHAPE)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the real model's folder (required)")
    parser.add_argument("--tasks", default="boolq,piqa", help="tasks of the overhead and throughput parts")
    parser.add_argument("--limit", type=int, default=100, help="documents per task on the real model")
    parser.add_argument("--big-limit", type=int, default=20, help="documents per task on the LLaMA-7B-shaped model")
    parser.add_argument("--big-layers", type=int, default=4)
    parser.add_argument("--tokenizer", default=os.path.join(os.environ.get("TAILORED_SHARED_DIR", "../shared"),
                                                            "models", "llama2-tokenizer"))
    parser.add_argument("--pairs", type=int, default=3, help="interleaved hf/tailored pairs of the overhead part")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per throughput measurement; the best counts")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of dense, 0.2 and 0.5 per throughput row; medians count")
    parser.add_argument("--repeat-tasks", default="boolq_tailored")
    parser.add_argument("--repeat-limit", type=int, default=50)
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--vllm-python", help="a Python with vLLM installed: adds the vllm rows")
    parser.add_argument("--repeat-backends", default="hf", help="backends of the repeated-run part")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tailored-end-to-end"))
    parser.add_argument("--parts", default="overhead,throughput,repeated")
    parser.add_argument("--child-throughput", help=argparse.SUPPRESS)
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_throughput:
        print(json.dumps(throughput_child(*json.loads(args.child_throughput))))
        return
    if args.child_build:
        folder, tokenizer, layers = json.loads(args.child_build)
        big_model(Path(folder), tokenizer, layers)
        return
    if not args.model:
        parser.error("--model is required")
    from tabulate import tabulate

    parts = args.parts.split(",")
    backends = {"hf": sys.executable, **({"vllm": args.vllm_python} if args.vllm_python else {})}
    summary, detail = [], []
    if "overhead" in parts:
        summary += overhead(args.model, args.tasks, args.limit, args.pairs)
    if "throughput" in parts:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        # built in a child: a child's peak RSS starts at its parent's (the kernel carries the high-water
        # mark through fork and exec), so this process must never hold a model
        big = str(work / f"llama7b-shaped-{args.big_layers}")
        run_measured([sys.executable, __file__, "--child-build", json.dumps([big, args.tokenizer, args.big_layers])])
        models = {"SmolLM2-135M": (args.model, "float32", "4-27"),
                  f"LLaMA-7B-shaped, {args.big_layers} layers": (big, "bfloat16", f"0-{args.big_layers - 1}")}
        limits = {name: args.limit if name.startswith("SmolLM2") else args.big_limit for name in models}
        detail, ratios = throughput(models, backends, args.tasks, limits, args.repeats, args.rounds)
        summary += ratios
    if "repeated" in parts:
        chosen = {b: backends[b] for b in args.repeat_backends.split(",") if b in backends}
        summary += repeated(args.model, args.repeat_tasks, args.repeat_limit, args.shots, chosen)
    if detail:
        print(tabulate(detail, ["model", "backend", "ratio", "parameters", "requests", "req/s",
                                "req/s by round", "peak MiB"],
                       tablefmt="github"))
        print()
    print(tabulate(summary, ["measure", "reference", "measured", "ratio", "range", "goal", "verdict"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
