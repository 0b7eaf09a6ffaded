"""A small BoolQ-shaped task generated from a seed, for machines with no hub and no data.

Each document states two counts in a one-sentence passage and asks whether the first is larger, so
the fields (``passage``, ``question``, ``label`` with 1 = yes) match BoolQ and the BoolQ prompt
template applies unchanged. Labels are balanced. Generation is pure and deterministic, so nothing is
written to disk.
"""

from __future__ import annotations

import random
from typing import Any

NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lea")
ITEMS = ("apples", "books", "coins", "pens", "shells", "stamps", "marbles", "cards", "keys", "cups")
MAX_COUNT = 20


def make_doc(rng: random.Random, label: int, idx: int) -> dict[str, Any]:
    """One document; ``label`` 1 means the first count is the larger one."""
    name = rng.choice(NAMES)
    first, second = rng.sample(ITEMS, 2)
    small, large = sorted(rng.sample(range(1, MAX_COUNT + 1), 2))
    a, b = (large, small) if label else (small, large)
    return {
        "passage": f"{name} has {a} {first} and {b} {second}.",
        "question": f"does {name.lower()} have more {first} than {second}",
        "label": label,
        "idx": idx,
    }


def make_split(seed: int, size: int) -> list[dict[str, Any]]:
    """``size`` documents with alternating labels in a seeded random order."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(size)]
    rng.shuffle(labels)
    return [make_doc(rng, label, i) for i, label in enumerate(labels)]


def corpus(seed: int = 0, size: int = 400) -> list[str]:
    """Plain text in the demo's vocabulary, for training a tokenizer."""
    return [f"{d['passage']} {d['question']}? {'yes' if d['label'] else 'no'}" for d in make_split(seed, size)]


def dataset(demo_seed: int = 1234, demo_train_size: int = 200, demo_validation_size: int = 200, **_metadata: Any):
    """lm-eval ``custom_dataset`` hook: a ``DatasetDict`` with ``train`` and ``validation``.

    lm-eval also passes the task metadata and the run's ``model_args`` as keyword arguments;
    they do not affect the data and are ignored.
    """
    import datasets

    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(make_split(demo_seed, demo_train_size)),
            "validation": datasets.Dataset.from_list(make_split(demo_seed + 1, demo_validation_size)),
        }
    )
