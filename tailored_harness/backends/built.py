"""What a run scores, built once before its first request: every stage's artifacts in one record.

The pipeline is :meth:`tailored_harness.backends.hf.HFBackend.build`, in one place and one order: prune
(or find the checkpoint in the cache), choose each task's template (``prompt=best``), train or find one
adapter per task (TELL's anchors with them), then pick each document's prompts (``prompt_select``). It
returns a :class:`Built`; ``backend=hf`` scores it on the model in memory, ``backend=vllm`` takes it
from its transformers workshop and serves the same adapters from saved folders. Backends only score.

What the artifacts do to a request is :meth:`Built.rewrite`, also in one place, in the order the
stages were built: the chosen template replaces a task's context, TELL's anchor goes before it, the
per-input picks before that. Which combinations may meet is decided before anything is built
(:meth:`tailored_harness.spec.model.ModelSpec`'s checks refuse TELL with ``prompt=best`` or
``prompt_select``, and say why).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping, Sequence

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class Built:
    """The artifacts of one run, ``{task name: ...}`` each; empty where a stage is off.

    pruning: what ``config.tailored.pruning`` shows of the pruned checkpoint (its folder, fingerprint,
        parameter counts), or ``None`` without pruning.
    adapters: ``{task: tailored_harness.adapt.pipeline.Adapter}``, the saved adapter of every adapted task.
    prompt_choices: ``{task: tailored_harness.select.best.Choice}`` under ``prompt=best``.
    anchors: ``{task: (anchor, task object)}`` under ``adapt_method=tell``.
    selections: ``{task: tailored_harness.select.per_input.TaskSelection}`` under ``prompt_select``.
    unadapted: ``{task: why}``, tasks scored without an adapter although adapters were asked for.
    """

    pruning: Mapping[str, Any] | None = None
    adapters: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)
    prompt_choices: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)
    anchors: Mapping[str, tuple[str, Any]] = dataclasses.field(default_factory=lambda: _EMPTY)
    selections: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)
    unadapted: Mapping[str, str] = dataclasses.field(default_factory=lambda: _EMPTY)

    def but(self, **changes: Any) -> "Built":
        """A copy with ``changes`` (each mapping frozen), as the next stage adds its artifacts."""
        frozen = {key: MappingProxyType(dict(value)) if isinstance(value, Mapping) else value
                  for key, value in changes.items()}
        return dataclasses.replace(self, **frozen)

    def rewrite(self, requests: Sequence[Any]) -> None:
        """Write each of lm-eval's ``requests`` as its task is scored: in the chosen template (``prompt=best``),
        behind TELL's anchor, behind the document's picks (``prompt_select``). Requests of tasks without
        such artifacts are left as they are; with every stage off nothing is touched."""
        if self.prompt_choices:
            from tailored_harness.select import best

            best.rewrite(requests, {task: choice.variant for task, choice in self.prompt_choices.items()})
        if self.anchors:
            from tailored_harness.adapt import anchors

            anchors.apply(requests, self.anchors)
        if self.selections:
            from tailored_harness.select import per_input

            per_input.apply(requests, self.selections)

    def annotate(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        """Add each logged sample's record of its picks (``tailored.prompt_selection``), under ``prompt_select``."""
        if self.selections:
            from tailored_harness.select import per_input

            per_input.annotate(samples, self.selections)
