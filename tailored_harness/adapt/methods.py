"""Adaptation methods (``adapt_method``): what one task's adapter trains on, and what scoring adds.

A method turns a task into its :class:`Training`: the examples in training order, the anchor that
scoring must put before the task's requests, the record the adapter's ``adaptation.json`` keeps,
and what, beyond the :class:`~tailored_harness.adapt.spec.AdaptSpec`, names the adapter's
fingerprint. :class:`SFT` is plain fine-tuning on the shots: nothing added, so its fingerprint is
the one adapters had before methods existed (the same cached folders). :class:`TELL` anchors the
shots and shuffles them into general data (:mod:`tailored_harness.adapt.general`).
:class:`~tailored_harness.adapt.recovery.Recovery` (``adapt_scope=general``) trains one adapter on
general data alone and shares it among the tasks (``shared``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any

from tailored_harness.adapt import anchors, general
from tailored_harness.adapt import shots as shots_mod
from tailored_harness.adapt.spec import AdaptSpec, TellSpec
from tailored_harness.core.errors import TailoredError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Training:
    """One adapter's training set.

    ``pairs``: ``(context, continuation)`` examples in order (task examples and general ones);
    ``split`` and ``indices``: the task's shots; ``record``: method entries for ``adaptation.json``
    (TELL's ``anchor`` there is what scoring puts before every request of the task); ``key``:
    fingerprint entries beyond the adaptation spec (empty for SFT); ``task_pairs``: the task
    examples alone.
    """

    split: str
    indices: list[int]
    pairs: list[tuple[str, str]]
    task_pairs: list[tuple[str, str]]
    record: dict[str, Any] = dataclasses.field(default_factory=dict)
    key: dict[str, Any] = dataclasses.field(default_factory=dict)


class PerTask:
    """A method whose adapter is the task's own: trained with the run's per-task recipe, named by the task."""

    name = ""
    shared = False

    def train_spec(self, spec: AdaptSpec) -> AdaptSpec:
        return spec


class SFT(PerTask):
    """Supervised fine-tuning on the task's shots alone, in the task's own prompt."""

    name = "sft"

    def training(self, task, name: str, spec: AdaptSpec, tokenizer) -> Training:
        split, indices, pairs = shots_mod.examples(task, name, spec.shots, spec.seed, spec.draw)
        return Training(split, indices, pairs, pairs, record={"method": self.name})


class TELL(PerTask):
    """TELL: every shot behind the task's anchor, shuffled uniformly into up to ``tokens`` of general data.

    ``tasks``: the run's tasks (general data ``tasks:A+B`` takes them from here before loading).
    The general examples never hold text of a document the task is evaluated on
    (:class:`tailored_harness.adapt.general.Evaluated`).
    """

    name = "tell"

    def __init__(self, spec: TellSpec, tasks: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.tasks = dict(tasks or {})
        self.source = general.source_for(spec.data) if spec.tokens > 0 else None

    def training(self, task, name: str, spec: AdaptSpec, tokenizer) -> Training:
        if getattr(task.config, "num_fewshot", None):
            raise TailoredError(f"adapt_method=tell anchors task {name!r} zero-shot; it was asked for "
                                f"num_fewshot={task.config.num_fewshot}. Drop --num_fewshot or use adapt_method=sft")
        split, indices, shots = shots_mod.examples(task, name, spec.shots, spec.seed, spec.draw)
        anchor = anchors.anchor_for(name, self.spec.anchor)
        task_pairs = [(anchors.anchored(anchor, context), continuation) for context, continuation in shots]
        taken = self._general(task, name, spec, tokenizer)
        pairs = task_pairs + taken.pairs
        random.Random(f"tell-{spec.seed}").shuffle(pairs)
        record = {"method": self.name, "anchor": anchor, "tell": self.spec.to_dict(),
                  "general": {"source": self.spec.data, "examples": len(taken.pairs), "tokens": taken.tokens,
                              "dropped_evaluated_or_empty": taken.dropped, "available": taken.available}}
        logger.info("TELL for %s: %d anchored shots among %d general examples (%d tokens of %s, %d dropped)",
                    name, len(task_pairs), len(taken.pairs), taken.tokens, self.spec.data, taken.dropped)
        return Training(split, indices, pairs, task_pairs, record, {"tell": self.spec.to_dict()})

    def _general(self, task, name: str, spec: AdaptSpec, tokenizer) -> general.Taken:
        if self.source is None:
            return general.Taken([], 0, 0, 0)
        examples = self.source.examples(general.Context(name, task, self.tasks))
        evaluated = general.Evaluated(list(task.eval_docs))
        return general.take(examples, tokenizer, self.spec.tokens, spec.seed, spec.max_len, evaluated)


#: ``adapt_method`` name -> method class (``adapt_scope=general`` is
#: :class:`tailored_harness.adapt.recovery.Recovery`, which builds on these).
METHODS = {"sft": SFT, "tell": TELL}


def method_for(name: str, tell: TellSpec | None = None, tasks: dict[str, Any] | None = None):
    """The method object ``adapt_method=name`` asks for (``tell`` needs its :class:`TellSpec`)."""
    if name not in METHODS:
        raise TailoredError(f"adapt_method={name!r} is not a method; valid: {', '.join(METHODS)}")
    return TELL(tell or TellSpec(), tasks) if name == "tell" else SFT()
