"""One table of a benchmark's template pool, without and with adapters, and what ``prompt=best`` chose.

Reads the ``results_*.json`` that ``lm_eval --output_path`` wrote for three runs on the same
documents (same ``--limit``):

- ``--plain``: ``--tasks <b>_tailored_pool,... --model_args ...,shots=0`` (every template, no adapter);
- ``--adapted``: the same with adapters (``shots=50``, the default);
- ``--best``: ``--tasks <b>_tailored,... --model_args ...,prompt=best``.

Prints, per benchmark, every template's accuracy without and with its adapter, the fold scores
``prompt=best`` recorded, and the chosen template's score against the best and worst adapted
template.

Usage: ``python benchmarks/template_table.py --plain DIR --adapted DIR --best DIR [--benchmarks boolq,piqa]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def results(folder: Path) -> dict:
    (path,) = sorted(folder.rglob("results_*.json"))[-1:]
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("plain", "adapted", "best"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--benchmarks", default="boolq,piqa")
    parser.add_argument("--metric", default="acc,none")
    args = parser.parse_args()
    from tabulate import tabulate

    from tailored_harness.select import pools

    plain, adapted, best = results(args.plain), results(args.adapted), results(args.best)
    for benchmark in args.benchmarks.split(","):
        task = f"{benchmark}_tailored"
        members = pools.pools()[task]
        record = best["config"]["tailored"]["prompt"][task]
        rows = [[member + (" (default)" if member == task else ""),
                 f"{plain['results'][member][args.metric]:.4f}", f"{adapted['results'][member][args.metric]:.4f}",
                 " ".join(f"{s:.3f}" for s in record["scores"][member]), f"{record['means'][member]:.3f}",
                 "chosen" if member == record["chosen"] else ""] for member in members]
        print(f"\n{benchmark} ({args.metric}, {plain['n-samples'][task]['effective']} documents)\n")
        print(tabulate(rows, headers=["template", "no adapter", "50-shot adapter", "prompt=best fold scores",
                                      "fold mean", ""], tablefmt="github"))
        scores = {member: adapted["results"][member][args.metric] for member in members}
        top, bottom = max(scores, key=scores.get), min(scores, key=scores.get)
        print(f"\nprompt=best chose {record['chosen']} ({len(record['folds'])} folds; "
              f"reused: {record['reused']}): {best['results'][task][args.metric]:.4f} on the evaluated documents; "
              f"best adapted template {top} {scores[top]:.4f}, worst {bottom} {scores[bottom]:.4f}")


if __name__ == "__main__":
    main()
