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
from tailored_harness.taskio.task_format import gold_label, zero_shot_context


def primary_metric(task) -> str:
    """The first metric of the task's ``metric_list`` (``acc``, ``exact_match``): what templates are
    compared on."""
    metrics = getattr(task.config, "metric_list", None) or []
    if not metrics:
        raise TailoredError(f"task {task.config.task!r} names no metric to compare templates on")
    return metrics[0]["metric"]


def _requests(task, docs: Sequence[dict[str, Any]], contexts: Sequence[str] | None = None) -> list[list[Any]]:
    """One list of lm-eval ``Instance``s per document, as ``build_all_requests`` makes them: zero-shot,
    or with ``contexts[i]`` as document i's context (a selected prompt before its own)."""
    out = []
    for doc_id, doc in enumerate(docs):
        ctx = contexts[doc_id] if contexts is not None else zero_shot_context(task, doc)
        made = task.construct_requests(doc=doc, ctx=ctx, metadata=(task.config.task, doc_id, 1),
                                       apply_chat_template=False, chat_template=None)
        out.append(made if isinstance(made, list) else [made])
    return out


def document_results(lm, task, docs: Sequence[dict[str, Any]], contexts: Sequence[str] | None = None) -> list[list]:
    """Each document's filtered responses from ``lm`` (an lm-eval ``LM``), what ``process_results`` reads:
    ``(log-likelihood, is_greedy)`` per choice for multiple choice, the filtered answer for generation."""
    per_doc = _requests(task, docs, contexts)
    flat = [instance for instances in per_doc for instance in instances]
    kind = flat[0].request_type
    answers = getattr(lm, kind)(flat, disable_tqdm=True)
    for instance, answer in zip(flat, answers):
        instance.resps.append(answer)
    for ensemble in getattr(task, "_filters", []):
        ensemble.apply(flat)
    key = next(iter(flat[0].filtered_resps)) if flat[0].filtered_resps else None
    return [[inst.filtered_resps[key] if key is not None else inst.resps[0] for inst in instances]
            for instances in per_doc]


def score_documents(lm, task, docs: Sequence[dict[str, Any]]) -> list[float]:
    """The task's :func:`primary_metric` for each of ``docs``, scored by ``lm`` (an lm-eval ``LM``)."""
    metric = primary_metric(task)
    return [float(task.process_results(doc, results)[metric])
            for doc, results in zip(docs, document_results(lm, task, docs))]


def reward(task, doc: dict[str, Any], results: list) -> float:
    """How well a document was answered, for learning which prompt to give it.

    Multiple choice: the margin of the gold choice's log-likelihood over the best wrong choice's,
    the same raw log-likelihoods ``acc`` compares (positive exactly when ``acc`` is 1). Other tasks:
    their :func:`primary_metric` (``exact_match``: 0 or 1).
    """
    gold = gold_label(task, doc)  # None unless a single-input multiple-choice task
    if gold is not None:
        scores = [float(result[0]) for result in results]
        if len(scores) < 2:
            return scores[gold]
        return scores[gold] - max(score for i, score in enumerate(scores) if i != gold)
    return float(task.process_results(doc, results)[primary_metric(task)])
