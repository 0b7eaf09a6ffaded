"""How many epochs make 50 shots train: accuracy of pruned + adapted reference models against epochs.

For each prune ratio the reference model is pruned once (the plugin's defaults, cached), then
scored through ``--model tailored`` with ``shots=0`` (pruned only) and with ``shots=50`` at every
epoch count, on the reference suite's tasks (all three run together, as in the suite, since
``calibration=tasks`` prunes on the requested tasks); accuracy is shown for the classification tasks. Adapters and pruned checkpoints land in
the plugin's cache, so the suite reuses what this trained. Prints one table: ratio, task, pruned-only
accuracy, then the accuracy after each epoch count, with the optimizer steps and training seconds.

Usage: ``python benchmarks/adapt_epochs.py [--ratios 0.2,0.5] [--epochs 1,3,5,10,20] [--limit 500] [--lr 1e-4]``
"""

from __future__ import annotations

import argparse
import json
import logging
import time


def evaluate(pretrained: str, extra: str, tasks: list[str], limit: int | None, task_manager) -> dict:
    import lm_eval

    results = lm_eval.simple_evaluate(model="tailored", model_args=f"pretrained={pretrained},dtype=float32,{extra}",
                                      tasks=tasks, limit=limit, device="cpu", batch_size=8, task_manager=task_manager)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--epochs", default="1,3,5,10,20")
    parser.add_argument("--tasks", default="synth_boolq,synth_piqa,synth_qa",
                        help="tasks run together, as in the suite (calibration=tasks prunes on all of them)")
    parser.add_argument("--limit", type=int, default=500, help="validation documents per task")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the spec's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from lm_eval.tasks import TaskManager
    from tabulate import tabulate

    from tailored_harness.suite import reference

    model, _ = reference.model_folder(progress=False)
    tasks = args.tasks.split(",")
    task_manager = TaskManager()
    epochs = [int(e) for e in args.epochs.split(",")]
    rows = []
    for ratio in (float(r) for r in args.ratios.split(",")):
        pruned_only = evaluate(str(model), f"prune_ratio={ratio},shots=0", tasks, args.limit, task_manager)
        scored = [t for t in tasks if "acc,none" in pruned_only["results"][t]]  # the classification tasks
        scores = {task: [pruned_only["results"][task]["acc,none"]] for task in scored}
        notes = []
        for count in epochs:
            lr = f",lora_lr={args.lr}" if args.lr else ""
            started = time.monotonic()
            adapted = evaluate(str(model), f"prune_ratio={ratio},shots=50,epochs={count}{lr}", tasks, args.limit,
                               task_manager)
            info = adapted["config"]["tailored"]["adapters"]
            steps = {t: len(json.loads(open(f"{info[t]['folder']}/adaptation.json").read())["losses"]) for t in tasks}
            notes.append(f"{count} epochs: {max(steps.values())} steps, {time.monotonic() - started:.0f} s")
            for task in scored:
                scores[task].append(adapted["results"][task]["acc,none"])
        for task in scored:
            rows.append([ratio, task, *(f"{v:.3f}" for v in scores[task])])
        print(f"ratio {ratio}: " + "; ".join(notes), flush=True)
    headers = ["ratio", "task", "pruned only", *(f"{e} epochs" for e in epochs)]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
