"""What 50 shots change on the reference model: answer bias, and facts seen or not seen in the shots.

For the suite's pruning (element-wise Taylor on the tasks, seed 0) at each ratio, scores the
reference model dense, pruned only and pruned + adapted (the plugin's defaults) through
``--model tailored`` with ``log_samples``, and prints, per two-choice task:

* ``acc``: accuracy over the validation documents;
* ``picks 2nd``: how often the second choice wins (``yes`` on synth_boolq, ``sol2`` on synth_piqa);
  gold is 0.5 on both, so a distance from 0.5 is a bias toward one answer;
* ``acc, fact in shots`` / ``acc, fact not in shots``: accuracy over the documents that ask about a
  (person, attribute) one of the task adapter's 50 training documents asks about too, and over the
  rest. The shots depend on the task and seed only, so the split is the same on every row.

It reads what the suite leaves in the cache, so after ``./run_suite.sh`` it trains nothing.

Usage: ``python benchmarks/adapt_diagnosis.py [--ratios 0.2,0.5] [--limit 500]``
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

TASKS = ["synth_boolq", "synth_piqa", "synth_qa"]
CLASSIFICATION = ["synth_boolq", "synth_piqa"]


def _logliks(sample: dict) -> list[float]:
    """One log-likelihood per choice from a logged lm-eval sample (``filtered_resps``: ``(ll, greedy)`` each)."""
    out = []
    for resp in sample["filtered_resps"]:
        value = resp[0] if isinstance(resp, (list, tuple)) else resp
        out.append(float(value[0] if isinstance(value, (list, tuple)) else value))
    return out


def _shot_facts(folder: str, task: str) -> set[tuple[str, str]]:
    """(person, attribute) of every training document of the adapter in ``folder``."""
    from tailored_harness.suite import reference, world

    indices = json.loads((Path(folder) / "adaptation.json").read_text())["documents"]
    world_folder, _ = world.materialize(reference.ReferenceSpec().world)
    train = world.load_split(world_folder, task, "train")
    return {(train[i]["person"], train[i]["attribute"]) for i in indices}


def summarise(results: dict, name: str, facts: dict[str, set[tuple[str, str]]]) -> list[list[str]]:
    rows = []
    for task in CLASSIFICATION:
        samples = results["samples"][task]
        picks = [max(range(2), key=_logliks(s).__getitem__) for s in samples]
        acc = [float(s["acc"]) for s in samples]
        seen = [a for s, a in zip(samples, acc) if (s["doc"]["person"], s["doc"]["attribute"]) in facts[task]]
        unseen = [a for s, a in zip(samples, acc) if (s["doc"]["person"], s["doc"]["attribute"]) not in facts[task]]
        rows.append([name, task, f"{sum(acc) / len(acc):.3f}", f"{sum(picks) / len(picks):.3f}",
                     f"{sum(seen) / max(1, len(seen)):.3f} (n={len(seen)})",
                     f"{sum(unseen) / max(1, len(unseen)):.3f} (n={len(unseen)})"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--limit", type=int, default=500, help="validation documents per task")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import lm_eval
    from lm_eval.tasks import TaskManager
    from tabulate import tabulate

    from tailored_harness.suite import reference

    model, _ = reference.model_folder(progress=False)
    task_manager = TaskManager()
    configs = [("dense", "shots=0")]
    for ratio in args.ratios.split(","):
        configs += [(f"p{ratio} pruned", f"prune_ratio={ratio},shots=0"), (f"p{ratio} adapted", f"prune_ratio={ratio},shots=50")]
    runs = {}
    for name, extra in configs:
        runs[name] = lm_eval.simple_evaluate(model="tailored", model_args=f"pretrained={model},dtype=float32,{extra}",
                                             tasks=TASKS, limit=args.limit, device="cpu", batch_size=8,
                                             task_manager=task_manager, log_samples=True)
    # The shots depend on the task and the seed only, not on the model: one adapted run names them all.
    adapters = runs[configs[-1][0]]["config"]["tailored"]["adapters"]
    facts = {task: _shot_facts(adapters[task]["folder"], task) for task in CLASSIFICATION}
    rows = [row for name, results in runs.items() for row in summarise(results, name, facts)]
    headers = ["configuration", "task", "acc", "picks 2nd", "acc, fact in shots", "acc, fact not in shots"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
