"""A task document written exactly as lm-eval scores it: ``(context, continuation)``.

Pruning calibration (``calibration=tasks``) and few-shot adaptation both train or measure on the
scored text, so both read it here, from the task object itself: the context is the task's own
zero-shot ``fewshot_context`` (description, prompt, generation prefix), and the continuation is
what ``construct_requests`` would score for the gold answer (target delimiter plus gold choice for
multiple choice, plus the first target for generation). Both also tokenise and pad such pairs the
same way (:func:`encode_pair`, :func:`right_padded`). Light module: torch only inside the padder.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from tailored_harness.core.errors import TailoredError

SUPPORTED = ("multiple_choice", "generate_until", "loglikelihood")
IGNORE = -100  # label of a position that takes no loss (the convention of transformers and torch)


def _gold_index(task, doc: dict[str, Any], choices: list[str]) -> int:
    """The gold choice of a multiple-choice document, as lm-eval's ``process_results`` reads it."""
    gold = task.doc_to_target(doc)
    if isinstance(gold, list):
        gold = gold[0]
    if isinstance(gold, str):
        gold = choices.index(gold) if gold in choices else int(gold)
    return int(gold)


def gold_label(task, doc: dict[str, Any]) -> int | None:
    """The gold choice index of a multiple-choice document (for stratified sampling); ``None`` otherwise.

    A multiple-input task (WinoGrande: one context per choice, one shared continuation) names its gold
    context by ``doc_to_text``, which is what lm-eval's ``process_results`` reads for it.
    """
    if task.OUTPUT_TYPE != "multiple_choice":
        return None
    if getattr(task, "multiple_input", 0):
        return int(task.doc_to_text(doc))
    return _gold_index(task, doc, task.doc_to_choice(doc))


def zero_shot_context(task, doc: dict[str, Any]) -> str:
    """The context lm-eval writes for ``doc`` with no demonstrations: the task's own
    ``fewshot_context`` (description, prompt, generation prefix)."""
    prefix = task.doc_to_prefix(doc) if hasattr(task, "doc_to_prefix") else None
    return task.fewshot_context(doc, num_fewshot=0, gen_prefix=prefix)


def rewrite_plain_contexts(requests: Sequence[Any], entries: Mapping[str, Any], *, mark: str, action: str,
                           instead: str, task_of: Callable[[Any], Any],
                           new_context: Callable[[Any, Any, str], str]) -> None:
    """Replace, in place, the context of each request whose task has an entry in ``entries``.

    Used by everything that changes what a task's requests say (prompt=best's template, per-input
    picks, TELL's anchor): each was chosen or trained for the task's plain zero-shot context, so a
    context that is something else (``--apply_chat_template``, a system instruction, few-shot
    demonstrations) is refused in one line naming ``action`` and the option to use ``instead``,
    rather than silently dropped. ``task_of(entry)`` is the task whose zero-shot context the request
    must have, ``new_context(entry, request, context)`` the replacement; ``mark`` is the attribute
    set on a request once done, so a request seen twice is changed once.
    """
    for request in requests:
        entry = entries.get(request.task_name)
        if entry is None or getattr(request, mark, False):
            continue
        context, *rest = request.arguments
        plain = zero_shot_context(task_of(entry), request.doc)
        if isinstance(plain, list):  # one context per choice: nothing here was chosen or trained for that
            raise TailoredError(f"{action} task {request.task_name!r}: it writes one context per choice (multiple "
                                f"inputs, as WinoGrande), which {action.split()[0]} does not support yet; drop it for this task")
        if context != plain:
            raise TailoredError(f"{action} task {request.task_name!r}: its requests are not its plain zero-shot prompt "
                                f"(a chat template, system instruction or few-shot examples were added). "
                                f"Use {instead} with those options")
        request.arguments = (new_context(entry, request, context), *rest)
        setattr(request, mark, True)


def scores_whole_documents(task) -> bool:
    """True for a task scored on whole documents (``loglikelihood_rolling``, a perplexity task): its
    requests hold no answer to train on."""
    return task.OUTPUT_TYPE == "loglikelihood_rolling"


def scored_text(task, doc: dict[str, Any]) -> tuple[str, str]:
    """``(context, continuation)`` of everything the task's metric reads of ``doc``: the gold pair
    (:func:`scored_pair`) of a task with answers, or, for a perplexity task, an empty context and the
    whole document, every token of which it scores (what pruning calibrates on; adapters train on
    answers only)."""
    if scores_whole_documents(task):
        return "", str(task.doc_to_target(doc))
    return scored_pair(task, doc)


def scored_pair(task, doc: dict[str, Any]) -> tuple[str, str]:
    """``(context, continuation)`` of ``doc`` with its gold answer, as the task scores it zero-shot.

    A multiple-input task (WinoGrande) scores one context per choice against one shared
    continuation: its pair is the gold choice's context and that continuation, exactly the request
    lm-eval scores for the gold answer. Raises a :class:`TailoredError` for output types without a
    context/continuation split (``loglikelihood_rolling``).
    """
    kind = task.OUTPUT_TYPE
    name = getattr(task, "task_name", None) or getattr(getattr(task, "config", None), "task", None) or type(task).__name__
    if kind not in SUPPORTED:
        raise TailoredError(f"task {name!r} has output_type {kind!r}; training on scored examples supports "
                            f"{', '.join(SUPPORTED)}")
    context = zero_shot_context(task, doc)
    delimiter = task.config.target_delimiter
    if kind == "multiple_choice" and getattr(task, "multiple_input", 0):
        return context[gold_label(task, doc)], f"{delimiter}{task.doc_to_target(doc)}"
    if kind == "multiple_choice":
        choices = task.doc_to_choice(doc)
        return context, f"{delimiter}{choices[_gold_index(task, doc, choices)]}"
    target = task.doc_to_target(doc)
    if kind == "loglikelihood":
        return context, str(target)
    if isinstance(target, list):
        target = target[0]
    return context, f"{delimiter}{target}"


def encode_pair(tokenizer, context: str, continuation: str, max_len: int | None = None) -> tuple[list[int], int]:
    """Token ids of ``context + continuation`` and where the continuation starts, as ``HFLM`` scores them.

    Like lm-eval: trailing spaces of the context move to the continuation, the pair is encoded
    whole with the tokenizer's own special tokens (``<s>`` for LLaMA), and the context's own
    encoding length marks the split. With ``max_len``, a longer pair loses tokens from the left
    (as lm-eval cuts contexts at the model's length), so the continuation is kept.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    start = len(tokenizer(context)["input_ids"])
    if start >= len(whole):
        raise TailoredError(f"the continuation {continuation!r} of a training document "
                            f"encodes to no token, so there is nothing to score")
    cut = max(0, len(whole) - max_len) if max_len else 0
    return whole[cut:], max(0, start - cut)


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False):
    """A tokenizer as lm-eval's ``HFLM`` holds it: loaded, then given lm-eval's pad token when it has
    none (``configure_pad_token``: the unknown token, else EOS). Calibration and training batches are
    padded with :func:`pad_id`, and their tokens are part of what names a pruned checkpoint; loaded
    this way, ``tailored prune`` and ``tailored adapt`` build what an ``lm_eval`` run builds and name
    the same cache entries (a LLaMA-2 tokenizer has no pad token: plain loading padded with EOS)."""
    from lm_eval.models.utils import configure_pad_token
    from transformers import AutoTokenizer

    kwargs = {"revision": revision} if revision else {}
    return configure_pad_token(AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, **kwargs))


def pad_id(tokenizer) -> int:
    """The id that fills right padding: the tokenizer's pad token, else its EOS, else 0."""
    return next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)


def right_padded(rows: list[tuple[list[int], int]], pad: int):
    """``(ids, continuation start)`` rows -> ``(input_ids, attention_mask, labels)``, each (B, T).

    Rows are right-padded to the longest; ``labels`` is :data:`IGNORE` except on continuation
    tokens, so a loss over it is the continuation's negative log-likelihood given the context.
    Under causal attention no real token sees the padding, which is never a label.
    """
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for row, (ids, start) in enumerate(rows):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
        labels[row, start:len(ids)] = input_ids[row, start:len(ids)]
    return input_ids, mask, labels
