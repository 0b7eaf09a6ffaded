"""Log-likelihoods on vLLM: one forward per context for one-token continuations.

lm-eval's ``VLLM`` scores every (context, continuation) pair as a prompt of its own with
``prompt_logprobs=1``: vLLM then runs the whole pair through the model, projects every prompt
position onto the vocabulary and builds a Python ``Logprob`` entry for each, while prefix caching
is off for such requests. A multiple-choice task with one-token answers (BoolQ's " yes"/" no")
thus pays its passage once per answer, and the vocabulary projection once per passage token;
lm-eval's ``HFLM`` runs a shared context once (its Collator groups one-token continuations).

:class:`ContextScoring` sends each distinct context of one-token continuations once, as a prompt
of its own with ``max_tokens=1``, greedy, and ``logprob_token_ids`` set to the answers asked for:
vLLM projects the last position alone and returns the log-probability of each answer and the
greedy token. The answer is lm-eval's: the continuation's log-probability given the (left-
truncated) context, and whether it is the greedy token. Longer continuations, and data-parallel
engines, go through lm-eval's own path unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

logger = logging.getLogger(__name__)

#: vLLM's bound on ``SamplingParams.logprob_token_ids`` (``vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS``)
MAX_ANSWERS = 128


@dataclasses.dataclass(frozen=True)
class Grouped:
    """``contexts``: ``{context tokens: [(request index, answer token), ...]}`` for one-token
    continuations; ``rest``: indices of the requests lm-eval's path scores."""

    contexts: dict[tuple[int, ...], list[tuple[int, int]]]
    rest: list[int]


def group(requests: list[tuple[Any, list[int], list[int]]], max_context: int) -> Grouped:
    """Requests ``(cache key, context tokens, continuation tokens)`` grouped by the context a
    one-token continuation is scored after: ``(context + continuation)[-max_context:]`` less its last
    token, the very tokens lm-eval's path conditions on. A context with more distinct answers than
    vLLM returns at once (:data:`MAX_ANSWERS`) goes the other way whole."""
    contexts: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    rest = []
    for index, (_, context, continuation) in enumerate(requests):
        if len(continuation) != 1:
            rest.append(index)
            continue
        scored = (context + continuation)[-max_context:]
        contexts.setdefault(tuple(scored[:-1]), []).append((index, continuation[0]))
    for context, members in list(contexts.items()):
        if len({token for _, token in members}) > MAX_ANSWERS:
            rest += [index for index, _ in contexts.pop(context)]
    return Grouped(contexts, sorted(rest))


def scoring_class(base: type) -> type:
    """``base`` (lm-eval's ``VLLM``) with :meth:`ContextScoring._loglikelihood_tokens`."""
    return type("TailoredVLLM", (ContextScoring, base), {})


class ContextScoring:
    """Mixin over lm-eval's ``VLLM``: see the module docstring."""

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False):
        if getattr(self, "data_parallel_size", 1) > 1:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm)
        grouped = group(requests, self.max_length - 1)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if grouped.rest:
            answers = super()._loglikelihood_tokens([requests[i] for i in grouped.rest], disable_tqdm=disable_tqdm)
            for index, answer in zip(grouped.rest, answers, strict=True):
                results[index] = answer
        if grouped.contexts:
            for index, answer in self._score_contexts(grouped.contexts):
                results[index] = answer
                key = requests[index][0]
                if key is not None:
                    self.cache_hook.add_partial("loglikelihood", key, answer)
        return results

    def _score_contexts(self, contexts: dict[tuple[int, ...], list[tuple[int, int]]]):
        """``(request index, (log-probability, is_greedy))`` for every one-token continuation: one
        vLLM request per context, longest first (as lm-eval orders its own)."""
        from vllm import SamplingParams, TokensPrompt

        order = sorted(contexts, key=len, reverse=True)
        params = [SamplingParams(temperature=0, max_tokens=1, detokenize=False,
                                 logprob_token_ids=sorted({token for _, token in contexts[c]})) for c in order]
        outputs = self.model.generate([TokensPrompt(prompt_token_ids=list(c)) for c in order], sampling_params=params,
                                      use_tqdm=self.batch_size == "auto", lora_request=self.lora_request)
        for context, output in zip(order, outputs, strict=True):
            sample = output.outputs[0]
            greedy, logprobs = sample.token_ids[0], sample.logprobs[0]
            for index, token in contexts[context]:
                yield index, (float(getattr(logprobs[token], "logprob", logprobs[token])), token == greedy)
