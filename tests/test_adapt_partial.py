"""Multiple-input tasks (WinoGrande): one context per choice, one shared continuation.

The adapter must train on what lm-eval scores for the gold answer: the gold option's context and the
rest of the sentence after it, for the stock task and the plugin's. Shots come from the training
split only, so no evaluated sentence reaches an adapter.
"""

from __future__ import annotations

import pytest

from tailored_harness.adapt import shots
from tailored_harness.taskio.task_format import gold_label

WINOGRANDE = ("winogrande", "winogrande_tailored", "winogrande_tailored_t3")


def _gold_request(task, name: str, doc):
    """The request lm-eval builds for ``doc``'s gold answer (its loglikelihood arguments)."""
    from tailored_harness.taskio.task_format import zero_shot_context

    made = task.construct_requests(doc=doc, ctx=zero_shot_context(task, doc), metadata=(name, 0, 1),
                                   apply_chat_template=False, chat_template=None)
    return made[task.doc_to_text(doc)].arguments, made


@pytest.mark.shared
@pytest.mark.parametrize("name", WINOGRANDE)
def test_winogrande_shots_are_the_gold_request_lm_eval_scores(name, task_manager, hub_dir, monkeypatch):
    monkeypatch.chdir(hub_dir)
    task = task_manager.load([name])["tasks"][name]
    assert task.multiple_input == 2
    split, indices, pairs = shots.examples(task, name, 50, seed=0, draw="proportional")
    assert split == "train" and len(pairs) == 50
    train = list(task.training_docs())
    for index, (context, continuation) in zip(indices, pairs):
        doc = train[index]
        gold_args, made = _gold_request(task, name, doc)
        assert (context, continuation) == gold_args  # exactly the scored gold request
        others = [r.arguments for r in made if r.arguments != gold_args]
        assert len(others) == 1 and others[0][1] == continuation and others[0][0] != context  # shared continuation
        option = doc["option1"] if doc["answer"] == "1" else doc["option2"]
        assert context.endswith(doc["sentence"][:doc["sentence"].index("_")] + option)
        assert continuation == " " + doc["sentence"][doc["sentence"].index("_") + 1:].strip()
        assert gold_label(task, doc) == int(doc["answer"]) - 1
    # the draw keeps the training split's answer proportions (WinoGrande's are near even)
    share = sum(train[i]["answer"] == "1" for i in indices) / len(indices)
    expected = sum(d["answer"] == "1" for d in train) / len(train)
    assert abs(share - expected) <= 1 / len(indices)
    evaluated = {doc["sentence"] for doc in task.eval_docs}
    assert len(evaluated) == 1000 and not evaluated & {train[i]["sentence"] for i in indices}


@pytest.mark.shared
@pytest.mark.parametrize("name", ("hellaswag", "hellaswag_tailored"))
def test_hellaswag_shots_are_the_gold_request_lm_eval_scores(name, task_manager, hub_dir, monkeypatch):
    from tailored_harness.taskio.task_format import zero_shot_context

    monkeypatch.chdir(hub_dir)
    task = task_manager.load([name])["tasks"][name]
    split, indices, pairs = shots.examples(task, name, 20, seed=1, draw="proportional")
    train = list(task.training_docs())
    for index, pair in zip(indices, pairs):
        doc = train[index]
        made = task.construct_requests(doc=doc, ctx=zero_shot_context(task, doc), metadata=(name, 0, 1),
                                       apply_chat_template=False, chat_template=None)
        assert pair == made[int(doc["label"])].arguments
    evaluated = {doc["ctx_a"] for doc in task.eval_docs}
    assert not evaluated & {train[i]["ctx_a"] for i in indices}


def test_rewrites_refuse_a_task_with_one_context_per_choice():
    """prompt=best, prompt_select and TELL's anchor rewrite one plain context; a multiple-input task
    has one per choice, so they refuse it in one line instead of scoring something untrained."""
    from types import SimpleNamespace

    from tailored_harness.core.errors import TailoredError
    from tailored_harness.taskio.task_format import rewrite_plain_contexts

    task = SimpleNamespace(fewshot_context=lambda doc, num_fewshot, gen_prefix: ["ctx a", "ctx b"])
    request = SimpleNamespace(task_name="w", doc={}, arguments=("ctx a", " rest"))
    with pytest.raises(TailoredError, match="one context per choice"):
        rewrite_plain_contexts([request], {"w": task}, mark="_m", action="prompt=best cannot rewrite",
                               instead="prompt=default", task_of=lambda entry: entry,
                               new_context=lambda entry, req, ctx: ctx)
