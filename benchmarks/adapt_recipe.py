"""Choose the adapter recipe on evidence that never reads the evaluated split.

Each task's training split is cut in two with a fixed seed: ``--dev`` documents are held out and
scored, the shots are drawn from the rest. Every recipe (a name and ``model_args``-style adaptation
keys over the defaults, e.g. ``e5=epochs=5,lora_lr=3e-4``) trains one adapter per task and shot seed
on the same model (optionally pruned first, with the plugin's pruning and cache), and the held-out
documents are scored by lm-eval's own ``HFLM`` (accuracy: the choice of highest log-likelihood, as
lm-eval's ``acc``). Prints, per recipe, task and seed: optimizer steps, training seconds, final loss
and held-out accuracy; then the mean and range over seeds. A row ``none`` scores the model unadapted.

Usage::

    python benchmarks/adapt_recipe.py --data-dir ../shared/data/hub --prune ratio=0.2,layers=4-27 \\
        --recipe old=epochs=20,lora_lr=1e-4 --recipe e5=epochs=5,lora_lr=3e-4 --seeds 0,1,2

Model: ``--model DIR`` (default: SmolLM2-135M from ``tailored real-model``).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import time


def parse_pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if item)


def typed(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def load_tasks(names: list[str], data_dir: str | None) -> dict:
    if data_dir:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.chdir(data_dir)  # the datasets library reads a local folder named like the hub id
    from lm_eval.tasks import TaskManager, get_task_dict

    from tailored_harness.lmeval.run_context import flatten

    return flatten(get_task_dict(names, TaskManager()))


def split_training(task, name: str, dev: int, seed: int) -> tuple[list[dict], list[dict]]:
    """``(held-out documents, shot pool)`` of the task's training split, cut with ``seed``."""
    from tailored_harness.adapt.shots import training_split

    _, docs = training_split(task, name)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    return [docs[i] for i in order[:dev]], [docs[i] for i in order[dev:]]


def requests(task, name: str, docs: list[dict]):
    """lm-eval loglikelihood Instances, one per (document, choice), and the gold index per document."""
    from lm_eval.api.instance import Instance

    from tailored_harness.taskio.task_format import gold_label

    out, gold = [], []
    for doc_id, doc in enumerate(docs):
        context = task.fewshot_context(doc, num_fewshot=0)
        for index, choice in enumerate(task.doc_to_choice(doc)):
            out.append(Instance(request_type="loglikelihood", doc=doc, idx=index, metadata=(name, doc_id, 1),
                                arguments=(context, f"{task.config.target_delimiter}{choice}")))
        gold.append(gold_label(task, doc))
    return out, gold


def accuracy(lm, instances, gold: list[int]) -> float:
    scores = lm.loglikelihood(instances, disable_tqdm=True)
    per_doc: dict[int, list[float]] = {}
    for instance, (loglik, _) in zip(instances, scores):
        per_doc.setdefault(instance.metadata[1], []).append(loglik)
    right = sum(max(range(len(v)), key=v.__getitem__) == gold[d] for d, v in per_doc.items())
    return right / len(per_doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: SmolLM2-135M from `tailored real-model`)")
    parser.add_argument("--prune", default="", help="pruning first, e.g. ratio=0.2,layers=4-27 (PruneSpec fields)")
    parser.add_argument("--tasks", default="boolq,piqa")
    parser.add_argument("--data-dir", help="folder laid out like the hub (../shared/data/hub) for offline data")
    parser.add_argument("--dev", type=int, default=250, help="held-out training documents scored per task")
    parser.add_argument("--dev-seed", type=int, default=1234, help="seed of the held-out cut")
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                        help="adaptation model_args over the defaults (repeatable)")
    parser.add_argument("--seeds", default="0", help="adapt seeds (shot draw, LoRA init, order)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from lm_eval.models.huggingface import HFLM
    from tabulate import tabulate

    from tailored_harness.adapt import AdaptSpec, shots, train
    from tailored_harness.prune import PruneSpec, prune_pretrained
    from tailored_harness.spec.model import ModelSpec
    from tailored_harness.suite import real_models

    names = args.tasks.split(",")
    tasks = load_tasks(names, args.data_dir)
    model_dir = args.model or str(real_models.materialize()[0])
    if args.prune:
        spec = PruneSpec(**{k: typed(v) if k != "layers" else v for k, v in parse_pairs(args.prune).items()})
        model_dir = str(prune_pretrained(model_dir, spec, tasks=tasks, progress=False)[0])
    lm = HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=8)
    base = lm.model
    defaults = ModelSpec(pretrained="x").to_dict()  # every model_args default, the adaptation keys among them
    held_out = {}
    for name in names:
        dev_docs, pool = split_training(tasks[name], name, args.dev, args.dev_seed)
        held_out[name] = (requests(tasks[name], name, dev_docs), pool)
    rows = [["none", name, "-", 0, "0", "-", f"{accuracy(lm, *held_out[name][0]):.3f}"] for name in names]
    print(tabulate(rows, tablefmt="github", disable_numparse=True), flush=True)
    for item in args.recipe:
        label, _, overrides = item.partition("=")
        for seed in (int(s) for s in args.seeds.split(",")):
            values = {**defaults, **{k: typed(v) for k, v in parse_pairs(overrides).items()}, "adapt_seed": seed}
            spec = AdaptSpec.from_args(values)
            for name in names:
                task, (dev, pool) = tasks[name], held_out[name]
                _, pairs = shots.pick(task, pool, spec.shots, spec.seed, spec.draw)
                started = time.monotonic()
                peft_model, losses = train.train_adapter(base, lm.tokenizer, pairs, spec, progress=False)
                seconds = time.monotonic() - started
                lm._model = peft_model
                acc = accuracy(lm, *dev)
                lm._model = base = peft_model.unload()
                rows.append([label, name, seed, len(losses), f"{seconds:.0f}", f"{losses[-1]:.3f}", f"{acc:.3f}"])
                print(tabulate(rows[-1:], tablefmt="github", disable_numparse=True), flush=True)
    headers = ["recipe", "task", "seed", "steps", "train s", "last loss", "held-out acc"]
    print("\n" + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    summary = {}
    for label, name, _, steps, seconds, _, acc in rows:
        summary.setdefault((label, name), []).append((float(acc), float(seconds)))
    table = [[label, name, f"{statistics.mean(a for a, _ in v):.3f}", f"{min(a for a, _ in v):.3f} - {max(a for a, _ in v):.3f}",
              len(v), f"{statistics.mean(s for _, s in v):.0f}"] for (label, name), v in summary.items()]
    print("\n" + tabulate(table, headers=["recipe", "task", "mean acc", "range", "seeds", "mean train s"],
                          tablefmt="github", disable_numparse=True))
    print(f"\nmodel {model_dir}; held-out: {args.dev} training documents per task (seed {args.dev_seed}); "
          f"threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
