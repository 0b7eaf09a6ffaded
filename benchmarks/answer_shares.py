"""What a suite run's configurations answer, from lm-eval's logged samples: not a timing benchmark.

For every configuration folder under ``--runs`` (written by ``run_suite.sh``, which logs samples) and
every task: documents, accuracy, and, for tasks whose choices are the same for every document
(BoolQ's " no" / " yes"), the share of documents on which each choice scored highest. Then, for each
``--pair OTHER=BASE`` (default: every ``*_adapt50_sN`` against its ``*_param_first``, or ``dense``), how many answers
OTHER changed against BASE, and how many of those went from wrong to right and from right to wrong.
This is where docs/suites.md's "answers yes on 9% of documents" and "flips 43 to 47 answers" come from.

Usage: ``python benchmarks/answer_shares.py [--runs results/runs/smollm2] [--pair p20_adapt50_s0=p20_param_first]``
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ADAPTED = re.compile(r"^(?P<prefix>.+)_adapt\d+_s\d+$")


def answers(run_dir: Path) -> dict[str, dict[int, tuple[int, bool, tuple[str, ...]]]]:
    """``{task: {doc_id: (chosen index, correct, choice continuations)}}`` of one lm-eval output folder."""
    from tailored_harness.suite import run_files

    out = {}
    for task, path in run_files.samples_files(run_files.latest_results_file(run_dir)).items():
        per_doc = {}
        for line in path.read_text().splitlines():
            sample = json.loads(line)
            scores = [float(resp[0]) for resp in sample["filtered_resps"]]
            continuations = tuple(str(arg["arg_1"]) for arg in sample["arguments"].values())
            chosen = max(range(len(scores)), key=scores.__getitem__)
            per_doc[sample["doc_id"]] = (chosen, bool(sample.get("acc")), continuations)
        out[task] = per_doc
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="results/runs/smollm2", help="folder of configuration folders")
    parser.add_argument("--pair", action="append", default=[], metavar="OTHER=BASE",
                        help="compare OTHER's answers with BASE's (repeatable; default: adapted against pruned)")
    args = parser.parse_args()
    from tabulate import tabulate

    runs = {d.name: answers(d) for d in sorted(Path(args.runs).iterdir()) if d.is_dir()}
    shares = []
    for name, tasks in runs.items():
        for task, docs in sorted(tasks.items()):
            labels = {c for _, _, c in docs.values()}
            share = ""
            if len(labels) == 1:  # the same choices for every document: report how often each won
                (choices,) = labels
                share = ", ".join(f"{choice.strip()!r} {sum(c == i for c, _, _ in docs.values()) / len(docs):.2f}"
                                  for i, choice in enumerate(choices))
            shares.append([name, task, len(docs), f"{sum(ok for _, ok, _ in docs.values()) / len(docs):.3f}", share])
    print(tabulate(shares, headers=["configuration", "task", "n", "acc", "share answered"], tablefmt="github",
                   disable_numparse=True))

    pairs = [item.split("=", 1) for item in args.pair] or [
        [name, base] for name in runs if (m := ADAPTED.match(name))
        for base in [f"{m['prefix']}_param_first" if f"{m['prefix']}_param_first" in runs else m["prefix"]]]
    flips = []
    for other, base in pairs:
        if other not in runs or base not in runs:
            raise SystemExit(f"--pair {other}={base}: no such configuration under {args.runs} (have: {', '.join(runs)})")
        for task, docs in sorted(runs[other].items()):
            before = runs[base][task]
            changed = [d for d in docs if docs[d][0] != before[d][0]]
            flips.append([other, base, task, len(changed), sum(docs[d][1] and not before[d][1] for d in changed),
                          sum(before[d][1] and not docs[d][1] for d in changed)])
    if flips:
        print("\n" + tabulate(flips, headers=["configuration", "against", "task", "answers changed", "wrong -> right",
                                              "right -> wrong"], tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
