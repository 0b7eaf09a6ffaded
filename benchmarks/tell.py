"""TELL against SFT on a real model: task shots, general-data budgets, the two ablations, and their cost.

Every configuration is one ``lm_eval.simple_evaluate`` of ``--model tailored`` on the same tasks and
documents (``--limit``), pruned at a ratio (LLM-Pruner's Taylor ``param_first`` on layers 4-27, as the
real suite prunes; the checkpoint is cached after the first run), with one adapter per task:

* ``sft``: ``shots`` documents alone (``adapt_method=sft``, today's adapters);
* ``tell-<G>``: the shots behind the task's anchor, shuffled into ``G`` tokens of general data;
* ``anchor-only``: the anchored shots without general data (``general_tokens=0``);
* ``general-only-<G>``: general data without the anchor (``tell_anchor=none``).

General data here, offline, is the training documents of the *other* task of the run
(``general_data=tasks:A+B``; an adapter of A never sees A's documents as general data). The
ablations run at the smallest shot count only. Configurations run in tiers, the comparisons the
goals need first (:func:`configurations`), and are written to ``--out`` (JSON) after each one;
configurations already there are skipped (trained adapters are cached too), so an interrupted run
resumes and a longer one extends it.

Prints per configuration, over seeds: the mean of the tasks' accuracies, lm-eval's standard error
of that mean (mean over seeds), the spread over seeds, and the cost columns summed over the tasks
(task tokens, general tokens, optimizer steps, training seconds), then the two goals of TELL.

Usage (offline, from the shared data's hub folder, nothing else running)::

    M=$(tailored real-model smollm2)
    python benchmarks/tell.py --model $M --tasks boolq_tailored,piqa_tailored --limit 100 \\
        --ratios 0.2 --shots 10,50 --budgets 2000,8000 --seeds 0,1,2 --out results/tell.json
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import resumable

PRUNE = "prune_layers=4-27,importance=param_first"


def configurations(ratios, shots, budgets, seeds) -> list[dict]:
    """Every configuration, in the order it runs: tier 0 (SFT and TELL at the smallest budget, at the
    smallest and largest shot counts) for every seed, then tier 1 (the other budgets at the smallest
    shot count, and the ablations there), then tier 2 (the rest); seed by seed within a tier."""
    out = []
    for seed in seeds:
        for ratio in ratios:
            for n in shots:
                rows = [("sft", None, "default")] + [(f"tell-{g}", g, "default") for g in budgets]
                if n == min(shots):
                    rows += [("anchor-only", 0, "default"), (f"general-only-{budgets[0]}", budgets[0], "none")]
                for label, budget, anchor in rows:
                    out.append({"label": label, "ratio": ratio, "shots": n, "budget": budget, "anchor": anchor,
                                "seed": seed, "tier": _tier(label, budget, n, shots, budgets)})
    return sorted(out, key=lambda c: c["tier"])  # stable: seed order within a tier


def _tier(label: str, budget: int | None, n: int, shots: list[int], budgets: list[int]) -> int:
    if n not in (min(shots), max(shots)):
        return 2
    if label == "sft" or (label.startswith("tell-") and budget == budgets[0]):
        return 0
    return 1 if n == min(shots) else 2


def model_args(model: str, tasks: list[str], config: dict) -> str:
    args = f"pretrained={model},dtype=float32,shots={config['shots']},adapt_seed={config['seed']}"
    if config["ratio"]:
        args += f",prune_ratio={config['ratio']},{PRUNE}"
    if config["budget"] is not None:
        args += (f",adapt_method=tell,general_data=tasks:{'+'.join(tasks)},general_tokens={config['budget']}"
                 f",tell_anchor={config['anchor']}")
    return args


def key(config: dict) -> str:
    return f"{config['label']}|{config['ratio']}|{config['shots']}|{config['seed']}"


def run_one(model: str, tasks: list[str], limit: int, config: dict) -> dict:
    import lm_eval

    args = model_args(model, tasks, config)
    started = time.monotonic()
    out = lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=tasks, limit=limit, device="cpu",
                                  batch_size=8)
    adapters = out["config"]["tailored"]["adapters"]
    row = {**config, "model_args": args, "seconds": round(time.monotonic() - started, 1), "tasks": {}}
    for task in tasks:
        result = out["results"][task]
        row["tasks"][task] = {"acc": result["acc,none"], "stderr": result["acc_stderr,none"],
                              "n": out["n-samples"][task]["effective"], "cost": adapters[task]["cost"],
                              "reused": adapters[task]["reused"]}
    return row


def summary(rows: list[dict], tasks: list[str]) -> list[dict]:
    """One line per (ratio, shots, label): means over seeds of the task mean and of the cost sums."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["ratio"], row["shots"], row["label"]), []).append(row)
    lines = []
    for (ratio, shots, label), found in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])):
        means = [statistics.mean(r["tasks"][t]["acc"] for t in tasks) for r in found]
        errors = [math.sqrt(sum(r["tasks"][t]["stderr"] ** 2 for t in tasks)) / len(tasks) for r in found]

        def cost(name: str) -> float:
            return statistics.mean(sum(r["tasks"][t]["cost"][name] for t in tasks) for r in found)

        lines.append({"ratio": ratio, "shots": shots, "label": label, "seeds": len(found),
                      "mean": statistics.mean(means), "stderr": statistics.mean(errors),
                      "seed_sd": statistics.stdev(means) if len(means) > 1 else 0.0,
                      "per_task": {t: statistics.mean(r["tasks"][t]["acc"] for r in found) for t in tasks},
                      "task_tokens": cost("task_tokens"), "general_tokens": cost("general_tokens"),
                      "steps": cost("optimizer_steps"), "train_seconds": cost("seconds")})
    return lines


def table(lines: list[dict], tasks: list[str]) -> str:
    from tabulate import tabulate

    body = [[line["ratio"], line["shots"], line["label"], line["seeds"],
             f"{line['mean']:.4f} ± {line['stderr']:.4f}", f"{line['seed_sd']:.4f}",
             *(f"{line['per_task'][t]:.4f}" for t in tasks), round(line["task_tokens"]),
             round(line["general_tokens"]), round(line["steps"]), round(line["train_seconds"])] for line in lines]
    head = ["ratio", "shots", "method", "seeds", "task mean ± stderr", "seed sd", *tasks, "task tok",
            "general tok", "steps", "train s"]
    return tabulate(body, head, tablefmt="github")


def goals(lines: list[dict]) -> list[str]:
    """TELL's two claims, checked on the means over seeds."""
    out = []
    index = {(line["ratio"], line["shots"], line["label"]): line for line in lines}
    for (ratio, shots, label), line in sorted(index.items()):
        sft = index.get((ratio, shots, "sft"))
        if label.startswith("tell-") and sft:
            verdict = "holds" if line["mean"] >= sft["mean"] else "does not hold"
            out.append(f"ratio {ratio}, {shots} shots: {label} {line['mean']:.4f} vs sft {sft['mean']:.4f} ({verdict})")
        top = max((s for r, s, lab in index if r == ratio and lab == "sft"), default=None)
        sft_top = index.get((ratio, top, "sft"))
        if label.startswith("tell-") and sft_top and shots < top:
            verdict = "holds" if line["mean"] >= sft_top["mean"] else "does not hold"
            out.append(f"ratio {ratio}: {label} with {shots} shots {line['mean']:.4f} vs sft with {top} shots "
                       f"{sft_top['mean']:.4f} ({verdict})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", default="boolq_tailored,piqa_tailored")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--ratios", default="0.2", help="comma-separated prune ratios (0: dense)")
    parser.add_argument("--shots", default="10,50")
    parser.add_argument("--budgets", default="2000,8000", help="comma-separated general_tokens of TELL")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="results/tell.json")
    parser.add_argument("--report-only", action="store_true", help="print the table of --out, run nothing")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    out = Path(args.out)
    if args.report_only:
        saved = resumable.load(out)
    else:
        plan = configurations([float(r) for r in args.ratios.split(",")], [int(s) for s in args.shots.split(",")],
                              [int(b) for b in args.budgets.split(",")], [int(s) for s in args.seeds.split(",")])
        saved = resumable.run_missing(out, plan, key, lambda c: run_one(args.model, tasks, args.limit, c),
                                      {"model": args.model, "tasks": tasks, "limit": args.limit})
    lines = summary(list(saved["rows"].values()), tasks)
    print(table(lines, tasks))
    print("\n".join(goals(lines)))


if __name__ == "__main__":
    main()
