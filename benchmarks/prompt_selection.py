"""Per-input prompt selection on a real model: ``none``, ``random``, ``knn`` and ``match`` side by side.

Every configuration is one ``lm_eval.simple_evaluate`` of ``--model tailored`` on the same tasks and
documents (``--limit``), with the task's 50-shot adapter (the default ``shots``; cached after the
first run) and ``prompt_select=<selector>,prompt_m=<m>,prompt_seed=<seed>``. ``none`` does not
depend on m or the seed and ``knn`` not on the seed, so each runs once per m; ``random`` and
``match`` run once per seed. Results are written after every configuration to ``--out`` (JSON), and
configurations already there are not run again, so an interrupted run resumes.

Prints per task and on the mean of the tasks: accuracy (mean over seeds), lm-eval's standard error
of that accuracy (mean over seeds) and the spread over seeds (standard deviation), and for
``match`` the matcher's mean training reward in its first and last three steps.

Usage (offline, from the shared data's hub folder)::

    M=$(tailored real-model smollm2)
    python benchmarks/prompt_selection.py --model $M --tasks boolq_tailored,piqa_tailored --limit 200 \
        --out results/prompt_selection.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

SELECTORS = ("none", "random", "knn", "match")


def configurations(ms: list[int], seeds: list[int]) -> list[tuple[str, int, int]]:
    out = [("none", 0, 0)]
    for m in ms:
        out += [("knn", m, 0)] + [(name, m, seed) for name in ("random", "match") for seed in seeds]
    return out


def run_one(model: str, tasks: list[str], limit: int, selector: str, m: int, seed: int, extra: str) -> dict:
    import lm_eval

    args = f"pretrained={model},dtype=float32{extra}"
    if selector != "none":
        args += f",prompt_select={selector},prompt_m={m},prompt_seed={seed}"
    started = time.monotonic()
    out = lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=tasks, limit=limit, device="cpu",
                                  batch_size=1)
    row = {"selector": selector, "m": m, "seed": seed, "seconds": round(time.monotonic() - started, 1),
           "model_args": args, "tasks": {}}
    selections = out["config"]["tailored"].get("prompt_select", {})
    for task in tasks:
        result = out["results"][task]
        entry = {"acc": result["acc,none"], "stderr": result["acc_stderr,none"],
                 "n": out["n-samples"][task]["effective"]}
        matcher = selections.get(task, {}).get("matcher")
        if matcher:
            rewards = [step["mean_reward"] for step in matcher["curve"]]
            entry["matcher"] = {"curve": rewards, "seconds": matcher["seconds"], "reused": matcher["reused"]}
        if task in selections:
            entry["picked"] = selections[task]["picked"]
        row["tasks"][task] = entry
    return row


def key(selector: str, m: int, seed: int) -> str:
    return f"{selector}|{m}|{seed}"


def table(rows: dict, tasks: list[str], ms: list[int]) -> str:
    from tabulate import tabulate

    def cell(values: list[float], errors: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {statistics.mean(errors):.4f} (seeds sd {spread:.4f}, n={len(values)})"

    lines = []
    for selector in SELECTORS:
        for m in ([0] if selector == "none" else ms):
            found = [row for row in rows.values() if row["selector"] == selector and row["m"] == m]
            if not found:
                continue
            cells = [cell([r["tasks"][t]["acc"] for r in found], [r["tasks"][t]["stderr"] for r in found])
                     for t in tasks]
            means = [statistics.mean(r["tasks"][t]["acc"] for t in tasks) for r in found]
            errors = [statistics.mean(r["tasks"][t]["stderr"] for t in tasks) / len(tasks) ** 0.5 for r in found]
            curve = ""
            if selector == "match":  # per task, one first→last pair per seed
                curve = "; ".join(t.split("_")[0] + " " + ", ".join(
                    f"{statistics.mean(c[:3]):+.2f}→{statistics.mean(c[-3:]):+.2f}"
                    for c in (r["tasks"][t]["matcher"]["curve"] for r in found)) for t in tasks)
            lines.append([selector, m or "-", *cells, cell(means, errors), curve])
    return tabulate(lines, headers=["selector", "m", *tasks, "mean of tasks", "matcher reward first→last 3 steps"],
                    tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or GGUF file (tailored real-model smollm2)")
    parser.add_argument("--tasks", default="boolq_tailored,piqa_tailored")
    parser.add_argument("--limit", type=int, default=200, help="evaluated documents per task")
    parser.add_argument("--m", default="1,2", help="entries joined per document")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--extra", default="", help="more model_args, e.g. ',prune_ratio=0.2'")
    parser.add_argument("--out", type=Path, default=Path("results/prompt_selection.json"))
    args = parser.parse_args()
    from tailored_harness.core.paths import read_json, write_text_atomic

    tasks, ms = args.tasks.split(","), [int(m) for m in args.m.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    saved = read_json(args.out) or {}
    same = saved.get("setup") == {"model": args.model, "tasks": tasks, "limit": args.limit, "extra": args.extra}
    rows = saved.get("rows", {}) if same else {}
    for selector, m, seed in configurations(ms, seeds):
        if key(selector, m, seed) in rows:
            continue
        rows[key(selector, m, seed)] = run_one(args.model, tasks, args.limit, selector, m, seed, args.extra)
        write_text_atomic(args.out, json.dumps({"setup": {"model": args.model, "tasks": tasks, "limit": args.limit,
                                                          "extra": args.extra}, "rows": rows}, indent=1))
        print(f"done {selector} m={m} seed={seed}: {rows[key(selector, m, seed)]['seconds']} s", flush=True)
    print(f"\n{args.limit} documents per task; accuracy ± lm-eval stderr, mean over seeds\n")
    print(table(rows, tasks, ms))


if __name__ == "__main__":
    main()
