"""The two attention units of pruning (``kv_group`` and ``query_head``) side by side on a real model.

Every configuration is one ``lm_eval.simple_evaluate`` of ``--model tailored`` on the same tasks and
documents (``--limit``): the dense model, then each unit at each ratio (LLM-Pruner's Taylor
``param_first`` on layers 4-27, as the real suite prunes), pruned only (``shots=0``) and adapted
(``shots`` examples per task, one adapter per task). Rows are written to ``--out`` (JSON) after each
configuration and skipped when already there, so an interrupted run resumes.

Prints per configuration: parameters, each task's accuracy, the task mean with lm-eval's standard
error, and the mean as a percentage of the dense model's (same shots: pruned-only against dense
``shots=0``, adapted against dense adapted), then which unit keeps more at each ratio.

On SmolLM2 (3 KV groups of 3 query heads per layer) both units keep the same number of query heads
per layer at 0.2 and 0.5: ``kv_group`` drops whole groups (with their KV heads), ``query_head``
keeps every KV head and drops heads inside each group.

Usage (offline, from the shared data's hub folder, nothing else running)::

    M=$(tailored real-model smollm2)
    python benchmarks/attention_units.py --model $M --out results/attention_units.json
"""

from __future__ import annotations

import argparse
import statistics
import math
import time
from pathlib import Path

import resumable

PRUNE = "prune_layers=4-27,importance=param_first"
UNITS = ("kv_group", "query_head")


def configurations(ratios: list[float], shots: int) -> list[dict]:
    """Dense first (pruned-only and adapted), then every unit and ratio, pruned only before adapted."""
    out = [{"unit": "dense", "ratio": 0.0, "shots": n} for n in (0, shots)]
    for n in (0, shots):
        for ratio in ratios:
            out += [{"unit": unit, "ratio": ratio, "shots": n} for unit in UNITS]
    return out


def key(config: dict) -> str:
    return f"{config['unit']}|{config['ratio']}|{config['shots']}"


def model_args(model: str, config: dict, seed: int) -> str:
    args = f"pretrained={model},dtype=float32,shots={config['shots']},adapt_seed={seed}"
    if config["ratio"]:
        args += f",prune_ratio={config['ratio']},{PRUNE},attention_unit={config['unit']}"
    return args


def run_one(model: str, tasks: list[str], limit: int, config: dict, seed: int) -> dict:
    import lm_eval

    args = model_args(model, config, seed)
    started = time.monotonic()
    out = lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=tasks, limit=limit, device="cpu",
                                  batch_size=8)
    tailored = out["config"]["tailored"]
    pruning = tailored.get("pruning") or {}
    row = {**config, "model_args": args, "seconds": round(time.monotonic() - started, 1),
           "parameters": pruning.get("parameters_after") or out["config"].get("model_num_parameters"),
           "checkpoint": pruning.get("fingerprint"), "tasks": {}}
    for task in tasks:
        result = out["results"][task]
        row["tasks"][task] = {"acc": result["acc,none"], "stderr": result["acc_stderr,none"],
                              "n": out["n-samples"][task]["effective"]}
    return row


def report(rows: dict, tasks: list[str]) -> tuple[str, list[str]]:
    """The table, and one verdict line per ratio and shot count."""
    from tabulate import tabulate

    def mean(row):
        return statistics.mean(row["tasks"][t]["acc"] for t in tasks)

    def stderr(row):
        return math.sqrt(sum(row["tasks"][t]["stderr"] ** 2 for t in tasks)) / len(tasks)

    dense = {r["shots"]: mean(r) for r in rows.values() if r["unit"] == "dense"}
    body = []
    for row in sorted(rows.values(), key=lambda r: (r["shots"], r["ratio"], r["unit"])):
        base = dense.get(row["shots"])
        # an adapted dense model counts its LoRA weights too: show the dense model's own count
        params = rows.get("dense|0.0|0", row)["parameters"] if row["unit"] == "dense" else row["parameters"]
        body.append([row["unit"], row["ratio"], row["shots"], params,
                     *(f"{row['tasks'][t]['acc']:.4f}" for t in tasks), f"{mean(row):.4f} ± {stderr(row):.4f}",
                     f"{100 * mean(row) / base:.1f}" if base else "", row["seconds"]])
    head = ["unit", "ratio", "shots", "parameters", *tasks, "mean ± stderr", "% of dense", "wall s"]
    verdicts = []
    found = {(r["unit"], r["ratio"], r["shots"]): r for r in rows.values()}
    for (unit, ratio, shots), row in sorted(found.items()):
        other = found.get(("query_head", ratio, shots))
        if unit == "kv_group" and other:
            gap = mean(other) - mean(row)
            verdicts.append(f"ratio {ratio}, shots {shots}: query_head {mean(other):.4f} vs kv_group {mean(row):.4f} "
                            f"({gap:+.4f}; {abs(gap) / max(stderr(row), stderr(other)):.1f} stderr)")
    return tabulate(body, head, tablefmt="github"), verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", default="boolq_tailored,piqa_tailored")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--shots", type=int, default=50, help="examples per task of the adapted rows")
    parser.add_argument("--seed", type=int, default=0, help="adapt_seed of the adapted rows")
    parser.add_argument("--out", default="results/attention_units.json")
    parser.add_argument("--report-only", action="store_true", help="print the table of --out, run nothing")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    out = Path(args.out)
    if args.report_only:
        saved = resumable.load(out)
    else:
        plan = configurations([float(r) for r in args.ratios.split(",")], args.shots)
        saved = resumable.run_missing(out, plan, key, lambda c: run_one(args.model, tasks, args.limit, c, args.seed),
                                      {"model": args.model, "tasks": tasks, "limit": args.limit, "seed": args.seed})
    text, verdicts = report(saved["rows"], tasks)
    print(text)
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
