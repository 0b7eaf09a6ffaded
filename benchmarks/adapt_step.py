"""The adapter training step, before and after: seconds per step and tokens per second, side by side.

Both steps train the same fresh LoRA adapter (same seed, same spec) on the same 50 shots of a task
for the same whole epochs, so each sees every shot equally often:

* ``old``: the step as it was until this benchmark was written: micro-batches of a random draw,
  logits at every position (written out here, since the library no longer has it);
* ``new``: the library's step (:func:`tailored_harness.adapt.train.epoch_batches` and
  :func:`~tailored_harness.adapt.train.continuation_loss`): length-grouped micro-batches and logits
  at the answer positions only.

Tokens per second counts real tokens (padding excluded); the ratio is old seconds per step over
new. Run it with nothing else on the machine. Data: lm-eval's stock task, offline from a folder
laid out like the hub (``--data-dir ../shared/data/hub``) or from the hub.

Usage: ``python benchmarks/adapt_step.py [--model DIR] [--task boolq] [--epochs 2] [--data-dir DIR]``
(default model: SmolLM2-135M from ``tailored real-model``).
"""

from __future__ import annotations

import argparse
import logging
import random
import time


def shots(task_name: str, data_dir: str | None, spec):
    """The ``spec.shots`` training examples the plugin would draw for ``task_name``, as (context, continuation)."""
    from adapt_recipe import load_tasks  # a sibling script: benchmarks/ is on sys.path when run as one

    from tailored_harness.adapt import shots as shots_mod

    task = load_tasks([task_name], data_dir)[task_name]
    _, _, pairs = shots_mod.examples(task, task_name, spec.shots, spec.seed, spec.draw)
    return pairs


def old_loss(model, ids, mask, labels):
    """The previous loss: the output layer at every position, then the labelled ones."""
    import torch

    from tailored_harness.taskio.task_format import IGNORE

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def old_groups(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """The previous micro-batches: a seeded shuffle cut into groups of ``batch_size``."""
    order = list(range(count))
    rng.shuffle(order)
    return [order[first:first + batch_size] for first in range(0, count, batch_size)]


def run(name: str, model_dir: str, encoded, spec, epochs: int, pad: int) -> dict:
    """Train a fresh adapter for ``epochs`` with the ``name`` step; returns timings and token counts."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from tailored_harness.adapt import train
    from tailored_harness.taskio.task_format import IGNORE, right_padded

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(spec.seed)
    peft_model = get_peft_model(model, train.lora_config(spec, model.config))
    peft_model.train()
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=spec.learning_rate)
    loss_fn = old_loss if name == "old" else train.continuation_loss
    lengths = [len(ids) for ids, _ in encoded]
    rng = random.Random(spec.seed)
    steps, real, padded, seconds = 0, 0, 0, 0.0
    for _ in range(epochs):
        groups = old_groups(len(encoded), spec.batch_size, rng) if name == "old" else \
            train.epoch_batches(lengths, spec.batch_size, rng)
        for first in range(0, len(groups), spec.grad_accum):
            started = time.perf_counter()
            step = [right_padded([encoded[i] for i in group], pad) for group in groups[first:first + spec.grad_accum]]
            tokens = sum(int((labels != IGNORE).sum()) for _, _, labels in step)
            for ids, mask, labels in step:
                (loss_fn(peft_model, ids, mask, labels) / tokens).backward()
                real += int(mask.sum())
                padded += int(mask.numel())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - started
            steps += 1
    return {"step": name, "steps": steps, "s/step": seconds / steps, "tokens/s": real / seconds,
            "padding": padded / real - 1, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: SmolLM2-135M from `tailored real-model`)")
    parser.add_argument("--task", default="boolq", help="lm-eval task whose shots train (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="whole epochs timed per step kind (default: %(default)s)")
    parser.add_argument("--data-dir", help="folder laid out like the hub (../shared/data/hub) for offline data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from tabulate import tabulate
    from transformers import AutoTokenizer

    from tailored_harness.adapt import AdaptSpec
    from tailored_harness.suite import real_models
    from tailored_harness.taskio.task_format import encode_pair, pad_id

    model_dir = args.model or str(real_models.materialize()[0])
    spec = AdaptSpec()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = [encode_pair(tokenizer, c, t, spec.max_len) for c, t in shots(args.task, args.data_dir, spec)]
    print(f"{args.task}: {len(encoded)} shots, {sum(len(i) for i, _ in encoded)} tokens, threads={torch.get_num_threads()}, "
          f"micro-batch {spec.batch_size} x {spec.grad_accum} accumulation, {args.epochs} epochs each", flush=True)
    rows = [run(name, model_dir, encoded, spec, args.epochs, pad_id(tokenizer)) for name in ("old", "new")]
    table = [[r["step"], r["steps"], f"{r['s/step']:.2f}", f"{r['tokens/s']:.0f}", f"{100 * r['padding']:.0f}%",
              f"{r['seconds']:.1f}"] for r in rows]
    print(tabulate(table, headers=["step", "steps", "s/step", "tokens/s", "padding", "seconds"], tablefmt="github",
                   disable_numparse=True))
    print(f"\nold / new seconds per step: {rows[0]['s/step'] / rows[1]['s/step']:.2f}")


if __name__ == "__main__":
    main()
