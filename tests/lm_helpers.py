"""lm-eval runs on the synthetic tasks, as several test files make and compare them."""

from __future__ import annotations


def evaluate(model: str, model_args: str, tasks: list[str], task_manager, device: str = "cpu"):
    """``lm_eval.simple_evaluate`` on the first 8 documents of each task, samples logged."""
    import lm_eval

    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks, limit=8, device=device,
                                   batch_size=4, log_samples=True, task_manager=task_manager)


def per_request(results, task: str) -> dict:
    """``{(doc_id, request index): log-likelihood}`` of ``task``'s logged samples."""
    return {(s["doc_id"], i): float(r[0][0]) for s in results["samples"][task] for i, r in enumerate(s["resps"])}
