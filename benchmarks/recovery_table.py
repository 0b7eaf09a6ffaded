"""Tailored-LLaMA's comparison on a real model: pruned only, + LLM-Pruner's general adapter, + task adapters.

Every configuration is one ``lm_eval.simple_evaluate`` of ``--model tailored`` on the same tasks and
documents (``--limit``; stock ``boolq``, ``piqa``, ``winogrande``, ``hellaswag`` by default), pruned
as the real suite prunes (Taylor ``param_first`` on layers 4-27):

* ``dense``: the model as it is, the reference;
* ``pruned-R``: pruned at ratio R, no recovery;
* ``general-R``: + one adapter on general instruction data for every task (``adapt_scope=general``,
  LLM-Pruner's recovery; ``--recovery-data``, e.g. ``../shared/data/general/alpaca_small.json``);
* ``task-R``: + one adapter per task on 50 of its training documents (the plugin's default).

Rows go to ``--out`` after each configuration and are skipped when present (resumable); each row
keeps, per task, the accuracy, lm-eval's stderr, the documents scored, and each document's
correctness in document order (``correct``, and ``correct_norm`` for ``acc_norm``: strings of 0/1), so that two configurations can be
compared per document later (paired tests) without scoring again. ``--backend vllm`` scores with
vLLM (adapters still train on transformers; needs the vLLM environment). After the accuracy table it
prints the paired comparison at each ratio (general against pruned, task against pruned, task against
general): per task the difference in points, the documents only one of the two gets right, and the
exact McNemar p-value of that split.

Usage (offline, from the shared data's hub folder, nothing else running)::

    M=$(tailored real-model smollm2)
    cd ../shared/data/hub && python /path/to/benchmarks/recovery_table.py --model $M --limit 1000 \\
        --recovery-data ../general/alpaca_small.json --backend vllm --out /path/to/results/recovery_table.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import resumable

PRUNE = "prune_layers=4-27,importance=param_first"
TASKS = "boolq,piqa,winogrande,hellaswag"


def configurations(ratios: list[float]) -> list[dict]:
    """``dense``, then per ratio: pruned, + general adapter, + task adapters (the cheapest first)."""
    out = [{"label": "dense", "ratio": 0.0, "recovery": "none"}]
    for ratio in ratios:
        out += [{"label": f"{kind}-{ratio}", "ratio": ratio, "recovery": kind} for kind in ("pruned", "general", "task")]
    return out


def model_args(model: str, config: dict, recovery_data: str | None, backend: str) -> str:
    args = f"pretrained={model},dtype=float32,backend={backend}"
    if config["ratio"]:
        args += f",prune_ratio={config['ratio']},{PRUNE}"
    if config["recovery"] in ("none", "pruned"):
        return args + ",shots=0"
    if config["recovery"] == "general":
        return args + ",adapt_scope=general" + (f",recovery_data={recovery_data}" if recovery_data else "")
    return args  # task: the default per-task adapters


def run_one(model: str, tasks: list[str], limit: int | None, recovery_data: str | None, backend: str,
            config: dict) -> dict:
    import lm_eval

    args = model_args(model, config, recovery_data, backend)
    started = time.monotonic()
    out = lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=tasks, limit=limit, device="cpu",
                                  batch_size="auto" if backend == "vllm" else 8, log_samples=True)
    adapters = out["config"]["tailored"].get("adapters") or {}
    row = {**config, "model_args": args, "seconds": round(time.monotonic() - started, 1), "tasks": {}}
    for task in tasks:
        result = out["results"][task]
        samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
        row["tasks"][task] = {"acc": result["acc,none"], "stderr": result["acc_stderr,none"],
                              "acc_norm": result.get("acc_norm,none"), "n": len(samples),
                              "correct": "".join(str(int(s["acc"])) for s in samples),
                              "correct_norm": "".join(str(int(s["acc_norm"])) for s in samples if "acc_norm" in s),
                              "cost": (adapters.get(task) or {}).get("cost"),
                              "adapter": (adapters.get(task) or {}).get("fingerprint")}
    return row


def table(rows: list[dict], tasks: list[str]) -> str:
    """Accuracy per task (in %), the mean, and the mean as a share of dense's, per configuration."""
    from tabulate import tabulate

    dense = next((r for r in rows if r["label"] == "dense"), None)
    body = []
    for row in rows:
        accs = [row["tasks"][t]["acc"] for t in tasks]
        kept = (100 * statistics.mean(a / dense["tasks"][t]["acc"] for a, t in zip(accs, tasks))) if dense else None
        body.append([row["label"], *(f"{100 * a:.2f} ± {100 * row['tasks'][t]['stderr']:.2f}" for a, t in zip(accs, tasks)),
                     f"{100 * statistics.mean(accs):.2f}", "" if kept is None else f"{kept:.1f}%",
                     min(row["tasks"][t]["n"] for t in tasks)])
    return tabulate(body, ["configuration", *tasks, "mean", "mean % of dense", "docs"], tablefmt="github")


#: (better, worse) kinds compared per document at each ratio: what each recovery adds, and the paper's claim
PAIRS = (("general", "pruned"), ("task", "pruned"), ("task", "general"))


def mcnemar(first: str, second: str) -> tuple[int, int, float]:
    """The package's exact McNemar test (:func:`tailored_harness.suite.paired.mcnemar`) of two
    configurations' per-document correctness, strings of 0/1 over the same documents in one order."""
    import numpy as np

    from tailored_harness.suite.paired import mcnemar as exact

    if len(first) != len(second):
        raise SystemExit(f"paired rows score different documents ({len(first)} against {len(second)})")
    return exact(np.array([c == "1" for c in first], dtype=int), np.array([c == "1" for c in second], dtype=int))


def paired(rows: dict[str, dict], tasks: list[str]) -> str:
    """Per ratio, task and metric (``acc``, and ``acc_norm`` where the task has it): the accuracy
    difference of each pair of :data:`PAIRS` in points, the discordant documents and the exact
    McNemar p-value (no correction for the many tests)."""
    from tabulate import tabulate

    body = []
    for ratio in sorted({r["ratio"] for r in rows.values() if r["ratio"]}):
        for better, worse in PAIRS:
            one, two = rows.get(f"{better}-{ratio}"), rows.get(f"{worse}-{ratio}")
            if one is None or two is None:
                continue
            for task in tasks:
                for metric, field in (("acc", "correct"), ("acc_norm", "correct_norm")):
                    first, second = one["tasks"][task].get(field), two["tasks"][task].get(field)
                    if not first:
                        continue
                    b, c, pvalue = mcnemar(first, second)
                    body.append([ratio, f"{better} - {worse}", task, metric, f"{100 * (b - c) / len(first):+.2f}", b, c,
                                 f"{pvalue:.3g}", len(first)])
    return tabulate(body, ["ratio", "comparison", "task", "metric", "Δ (points)", "only first right",
                           "only second right", "McNemar p", "docs"], tablefmt="github", disable_numparse=True)


def yes_shares(rows: dict[str, dict], labels_file: Path) -> dict[str, float]:
    """How often each configuration answers "yes" on BoolQ, from its stored correctness and the labels
    (``label`` 1 is yes) of the first documents of ``labels_file`` (BoolQ's validation JSONL): a
    two-choice answer is the label when right, the other one when wrong."""
    labels = [json.loads(line)["label"] for line in labels_file.open()]
    shares = {}
    for label, row in rows.items():
        correct = row["tasks"].get("boolq", {}).get("correct")
        if correct:
            shares[label] = sum((gold == 1) == (c == "1") for gold, c in zip(labels, correct)) / len(correct)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", default=TASKS)
    parser.add_argument("--limit", type=int, default=1000, help="documents per task (0: all)")
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--recovery-data", help="general data of the general adapter (default: the plugin's)")
    parser.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    parser.add_argument("--out", default="results/recovery_table.json")
    parser.add_argument("--report-only", action="store_true", help="print the table of --out, run nothing")
    parser.add_argument("--boolq-labels", type=Path,
                        help="BoolQ's validation JSONL: also print how often each configuration answers yes")
    args = parser.parse_args()
    tasks, out = args.tasks.split(","), Path(args.out)
    recovery_data = str(Path(args.recovery_data).resolve()) if args.recovery_data else None
    if args.report_only:
        saved = resumable.load(out)
    else:
        plan = configurations([float(r) for r in args.ratios.split(",")])
        saved = resumable.run_missing(
            out, plan, lambda c: c["label"],
            lambda c: run_one(args.model, tasks, args.limit or None, recovery_data, args.backend, c),
            {"model": args.model, "tasks": tasks, "limit": args.limit, "recovery_data": recovery_data})
    print(table(list(saved["rows"].values()), tasks))
    print()
    print(paired(saved["rows"], tasks))
    if args.boolq_labels:
        print()
        for label, share in yes_shares(saved["rows"], args.boolq_labels).items():
            print(f"{label}: answers yes on {100 * share:.1f}% of BoolQ's documents")


if __name__ == "__main__":
    main()
