"""The training step's pure parts: the loss on answer positions only equals the full-logits loss, and
length-grouped micro-batches cover every example once, in a seeded order."""

from __future__ import annotations

import random

import pytest
import torch

from numeric import assert_close_to_scale
from prune_helpers import VOCAB, tiny_llama
from tailored_harness.adapt.train import continuation_loss, epoch_batches, scored_positions
from tailored_harness.taskio.task_format import IGNORE, right_padded

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)


def _rows(seed: int = 0) -> list[tuple[list[int], int]]:
    """Examples of different lengths whose continuations (1 to 4 tokens) end each row."""
    rng = random.Random(seed)
    rows = []
    for length, answer in ((9, 1), (14, 3), (6, 2), (11, 4)):
        ids = [rng.randrange(VOCAB) for _ in range(length)]
        rows.append((ids, length - answer))
    return rows


def _full_logits_loss(model, ids, mask, labels):
    """The loss as it was computed before: logits at every position, then the labelled ones."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


@pytest.mark.parametrize("shape", ["gqa", "gqa_tied"])
def test_answer_positions_only_give_the_full_logits_loss_and_gradient(shape):
    ids, mask, labels = right_padded(_rows(), pad=0)
    losses, grads = [], []
    for compute in (continuation_loss, _full_logits_loss):
        model = tiny_llama(shape)
        loss = compute(model, ids, mask, labels)
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    # The two losses read the same logits through other shapes (all positions, or the answers'):
    # equal up to float32 rounding, compared relative to each tensor's scale (tests/numeric.py).
    assert_close_to_scale(losses[0], losses[1], what="loss")
    assert_close_to_scale(grads[0], grads[1], what="gradient")
    assert int((labels != IGNORE).sum()) == 10  # every continuation token is in the loss


def test_scored_positions_are_the_union_of_the_rows_answer_positions():
    _, _, labels = right_padded(_rows(), pad=0)
    # row answers start at 8, 11, 4, 7 and run to the row's end (9, 14, 6, 11): predicted from one position earlier
    assert scored_positions(labels).tolist() == [3, 4, 6, 7, 8, 9, 10, 11, 12]


def test_epoch_batches_cover_every_example_once_with_similar_lengths_together():
    lengths = [random.Random(i).randrange(20, 400) for i in range(50)]
    groups = epoch_batches(lengths, 4, random.Random(0))
    assert sorted(i for g in groups for i in g) == list(range(50)) and all(1 <= len(g) <= 4 for g in groups)
    spans = sorted((min(lengths[i] for i in g), max(lengths[i] for i in g)) for g in groups)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # groups are consecutive runs of the sorted lengths
    padded = sum(max(lengths[i] for i in g) * len(g) for g in groups)
    assert padded / sum(lengths) < 1.1
    assert epoch_batches(lengths, 4, random.Random(0)) == groups
    assert epoch_batches(lengths, 4, random.Random(1)) != groups
