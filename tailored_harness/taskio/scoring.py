"""Score documents outside an lm-eval run, exactly as the task scores them inside one.

``prompt=best`` compares templates on held-out training shots. Each document's requests come from
the task's own ``construct_requests`` (zero-shot context), are answered by an lm-eval ``LM`` (the
backend's ``HFLM`` with a fold's adapter), pass the task's own filters, and are scored by its own
``process_results``: the per-document metric lm-eval would report (``acc`` for multiple choice,
``exact_match`` after the normalisation for generation tasks). Light module: no torch.
"""

from __future__ import annotations

from typing import Any, Sequence

from tailored_harness.core.errors import TailoredError
from tailored_harness.taskio.task_format import zero_shot_context


def primary_metric(task) -> str:
    """The first metric of the task's ``metric_list`` (``acc``, ``exact_match``): what templates are
    compared on."""
    metrics = getattr(task.config, "metric_list", None) or []
    if not metrics:
        raise TailoredError(f"task {task.config.task!r} names no metric to compare templates on")
    return metrics[0]["metric"]


def _requests(task, docs: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One list of lm-eval ``Instance``s per document, zero-shot, as ``build_all_requests`` makes them."""
    out = []
    for doc_id, doc in enumerate(docs):
        made = task.construct_requests(doc=doc, ctx=zero_shot_context(task, doc), metadata=(task.config.task, doc_id, 1),
                                       apply_chat_template=False, chat_template=None)
        out.append(made if isinstance(made, list) else [made])
    return out


def score_documents(lm, task, docs: Sequence[dict[str, Any]]) -> list[float]:
    """The task's :func:`primary_metric` for each of ``docs``, scored by ``lm`` (an lm-eval ``LM``)."""
    per_doc = _requests(task, docs)
    flat = [instance for instances in per_doc for instance in instances]
    kind = flat[0].request_type
    answers = getattr(lm, kind)(flat, disable_tqdm=True)
    for instance, answer in zip(flat, answers):
        instance.resps.append(answer)
    for ensemble in getattr(task, "_filters", []):
        ensemble.apply(flat)
    key = next(iter(flat[0].filtered_resps)) if flat[0].filtered_resps else None
    metric = primary_metric(task)
    scores = []
    for doc, instances in zip(docs, per_doc):
        results = [inst.filtered_resps[key] if key is not None else inst.resps[0] for inst in instances]
        scores.append(float(task.process_results(doc, results)[metric]))
    return scores
