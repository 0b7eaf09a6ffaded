"""General recovery, LLM-Pruner's way (``adapt_scope=general``): one adapter per model, for every task.

LLM-Pruner restores a pruned model with one LoRA adapter trained on general instruction data
(Alpaca), and scores every task with it; Tailored-LLaMA's claim is measured against exactly that.
:class:`Recovery` is that baseline as an adaptation method: its examples do not depend on the task,
so its fingerprint leaves the task out and the first task of a run trains the adapter that every
other task (perplexity tasks too) reuses from the cache.

What is LLM-Pruner's here (its ``post_training.py`` and README command): the Alpaca prompt
template (:func:`alpaca_pair`), the loss on the response only, LoRA r 8, alpha 16, dropout 0.05 on
all seven projections, learning rate 1e-4, 2 epochs, 64 examples per optimizer step (4 x 16),
examples cut at 256 tokens. What is not, so that it fits a CPU session: :data:`RecoverySpec.examples`
examples of the data instead of all ~50k rows of ``yahma/alpaca-cleaned`` (LLM-Pruner holds out 2,000
for validation and trains on the rest), a warmup of a tenth of the steps instead of 100 steps (more
than such a run has), the cosine schedule this plugin trains with instead of a linear decay, and the
context cut from the left when an example is too long (LLM-Pruner cuts the end), and no record that
holds the text of an evaluated document of the run's tasks.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Mapping

from tailored_harness.adapt import general
from tailored_harness.adapt.methods import Training, method_for
from tailored_harness.adapt.spec import AdaptSpec, RecoverySpec, TellSpec
from tailored_harness.core.errors import TailoredError

logger = logging.getLogger(__name__)

#: The Alpaca prompt (Stanford Alpaca's format, which LLM-Pruner's recovery trains in), with and
#: without an input; the response follows the last line.
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n"
                "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def alpaca_pair(record: Mapping[str, Any], where: str) -> general.Pair:
    """``(prompt, response)`` of one record in the Alpaca template: ``instruction`` (+ ``input``) and
    ``output`` (Alpaca) or ``instruction`` and ``response`` (LaMini, which LLM-Pruner also trains on);
    records of another shape (``prompt``/``response``, ``text``) are taken as they are."""
    response = record.get("output", record.get("response"))
    if isinstance(record.get("instruction"), str) and isinstance(response, str):
        extra = record.get("input") or ""
        template = ALPACA_INPUT if extra else ALPACA_NO_INPUT
        return template.format(instruction=record["instruction"], input=extra), response
    return general.record_pair(dict(record), where)


class Recovery:
    """LLM-Pruner's recovery as an adaptation method: the same general examples for every task.

    ``shared``: the adapter does not depend on the task, so its fingerprint leaves the task out and
    every task (perplexity tasks included) is scored with it.
    ``tasks``: the run's tasks; a record holding the text of a document any of them is evaluated on
    is passed over (:class:`tailored_harness.adapt.general.Evaluated`), so the examples, and with
    them the adapter's fingerprint, differ from another run's only when such a record was dropped.
    """

    name = "general"
    shared = True

    def __init__(self, spec: RecoverySpec, tasks: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.tasks = dict(tasks or {})
        self.source = general.source_for(spec.data)  # RecoverySpec refuses tasks:A+B, the one source without records
        self._training = None

    def train_spec(self, spec: AdaptSpec) -> AdaptSpec:
        """The recipe this method trains with: LLM-Pruner's, whatever the per-task ``spec`` says."""
        return self.spec.train_spec()

    def training(self, task, name: str, spec: AdaptSpec, tokenizer):
        """The general examples (the same for every task: built once), in a seeded order."""
        if self._training is None:
            self._training = self._build(tokenizer)
        return self._training

    def _build(self, tokenizer) -> Training:
        from tailored_harness.taskio.task_format import encode_pair

        records = self.source.records()
        order = list(range(len(records)))
        random.Random(f"recovery-{self.spec.seed}").shuffle(order)
        evaluated = general.Evaluated([doc for task in self.tasks.values() for doc in task.eval_docs])
        indices, pairs, tokens, skipped = [], [], 0, 0
        for index in order:
            if len(pairs) == self.spec.examples:
                break
            pair = alpaca_pair(*records[index])
            if evaluated.holds(pair[0] + pair[1]):
                skipped += 1
                continue
            try:
                tokens += len(encode_pair(tokenizer, *pair, self.spec.max_len)[0])
            except TailoredError:  # a response that encodes to nothing has no loss
                skipped += 1
                continue
            indices.append(index)
            pairs.append(pair)
        if len(pairs) < self.spec.examples:
            raise TailoredError(f"recovery_examples={self.spec.examples} is more than {self.spec.data!r} holds "
                                f"({len(pairs)} usable records); valid: recovery_examples=1..{len(pairs)}")
        record = {"method": self.name, "scope": "general", "template": "alpaca", "recovery": self.spec.to_dict(),
                  "general": {"source": self.spec.data, "examples": len(pairs), "tokens": tokens,
                              "dropped_evaluated_or_empty": skipped, "available": len(records)}}
        logger.info("general adapter (LLM-Pruner's recovery): %d examples, %d tokens of %s, in the Alpaca template "
                    "(%d records passed over: an evaluated document's text, or no response)", len(pairs), tokens,
                    self.spec.data, skipped)
        return Training("general", indices, pairs, [], record, {"recovery": self.spec.to_dict()})


def adaptation_method(method: str, tell: TellSpec | None, tasks: dict[str, Any] | None,
                      recovery: RecoverySpec | None):
    """The run's adaptation method: the general :class:`Recovery` when ``recovery`` is given
    (``adapt_scope=general``), else the per-task method ``adapt_method`` names."""
    return Recovery(recovery, tasks) if recovery is not None else method_for(method, tell, tasks)
