"""``prompt=best``: folds, the choice, the pools, and an end-to-end run that reads only training documents."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import refuse_evaluated_split
from tailored_harness.core.errors import TailoredError
from tailored_harness.select import crossval, pools
from tailored_harness.select.spec import PromptSpec
from tailored_harness.spec.model import ModelSpec
from tailored_harness.taskio import templates


@pytest.mark.parametrize("labels,k", [([0, 1] * 25, 3), ([1] * 30 + [0] * 20, 5), ([None] * 7, 2), ([0, 1, 1], 3)])
def test_folds_partition_the_shots_and_spread_each_label(labels, k):
    folds = crossval.folds(labels, k, seed=4)
    assert sorted(p for fold in folds for p in fold) == list(range(len(labels)))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for label, count in Counter(labels).items():  # each label as even as the deal allows
        per_fold = [sum(labels[p] == label for p in fold) for fold in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == count
    assert folds == crossval.folds(labels, k, seed=4)
    assert k == 3 or folds != crossval.folds(labels, k, seed=5) or len(set(labels)) == len(labels)


def test_folds_need_as_many_shots_as_folds():
    with pytest.raises(ValueError, match="3 folds need at least 3 shots"):
        crossval.folds([0, 1], 3, seed=0)


def test_choose_takes_the_best_mean_and_breaks_ties_toward_the_default():
    order = ["default", "t2", "t3"]
    assert crossval.choose({"default": [0.5, 0.5], "t2": [0.9, 0.3], "t3": [0.7, 0.6]}, order) == "t3"
    assert crossval.choose({"default": [0.6, 0.4], "t2": [0.5, 0.5], "t3": [0.4, 0.6]}, order) == "default"
    assert crossval.choose({"default": [0.1], "t2": [0.6], "t3": [0.6]}, order) == "t2"


def test_prompt_spec_validates_with_one_line_naming_the_choices():
    with pytest.raises(TailoredError, match=r"prompt='good' is not a prompt choice; valid: default, best"):
        ModelSpec(pretrained="x", prompt="good")
    with pytest.raises(TailoredError, match=r"prompt_folds=1 must be an integer of at least 2"):
        ModelSpec(pretrained="x", prompt="best", prompt_folds=1)
    with pytest.raises(TailoredError, match=r"prompt=best .* needs shots > 0"):
        ModelSpec(pretrained="x", prompt="best", shots=0)
    assert ModelSpec(pretrained="x", prompt="best").prompt_spec() == PromptSpec("best", 3)


def test_every_benchmark_pool_starts_with_its_default_task():
    found = pools.pools()
    assert set(found) == {f"{b}_tailored" for b in ("boolq", "piqa", "arc_easy", "arc_challenge", "openbookqa",
                                                   "hellaswag", "winogrande")}
    for default, members in found.items():
        assert members[0] == default and len(members) == 5 and len(set(members)) == 5
        assert all(pools.member_yaml(m).is_file() for m in members[1:])


# ---------------------------------------------------------------- end to end on local BoolQ documents (conftest's local_boolq)
@pytest.mark.slow
def test_prompt_best_reads_only_training_documents_records_and_caches_its_choice(
        tiny_model_dir, local_boolq, monkeypatch, tmp_path):
    import lm_eval

    from tailored_harness.adapt import train
    from tailored_harness.taskio import scoring

    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))
    trained, scored = [], []
    train_adapter, score_documents = train.train_adapter, scoring.score_documents
    monkeypatch.setattr(train, "train_adapter",
                        lambda model, tok, pairs, *a, **k: trained.append(pairs) or train_adapter(model, tok, pairs, *a, **k))
    real_scores = []

    def score_and_favour_t3(lm, task, docs):
        """Score for real, then report template 3 as the best, so that the choice is not the default."""
        scored.append(docs)
        real_scores.extend(score_documents(lm, task, docs))
        return [float(task.config.task == "boolq_tailored_t3")] * len(docs)

    monkeypatch.setattr(scoring, "score_documents", score_and_favour_t3)

    refuse_evaluated_split(monkeypatch, "choosing a template")
    args = f"pretrained={tiny_model_dir},dtype=float32,shots=6,epochs=1,prompt=best,prompt_folds=2"

    def run():
        return lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=["boolq_tailored"], device="cpu",
                                       batch_size=4, task_manager=local_boolq, log_samples=True)

    out = run()
    info = out["config"]["tailored"]["prompt"]["boolq_tailored"]
    members = list(pools.pools()["boolq_tailored"])
    assert info["templates"] == members and info["metric"] == "acc" and not info["reused"]
    assert set(info["scores"]) == set(members) and all(len(v) == 2 for v in info["scores"].values())
    assert info["chosen"] == "boolq_tailored_t3" and info["means"]["boolq_tailored_t3"] == 1.0
    assert len(real_scores) == 5 * 6 and set(real_scores) <= {0.0, 1.0}  # every template scored every shot once
    # 5 templates x 2 folds, each on the other fold's shots, then the chosen template on all 6 shots
    assert [len(pairs) for pairs in trained] == [3] * 10 + [6]
    texts = [c + a for pairs in trained for c, a in pairs] + [d["passage"] for docs in scored for d in docs]
    assert texts and all("train" in t and "validation" not in t for t in texts)
    record = json.loads(Path(info["record"]).read_text())
    assert sorted(d["idx"] for docs in scored[:2] for d in docs) == sorted(record["documents"])  # one template's folds
    # the evaluated requests were scored in the chosen template, with the adapter trained in it
    from lm_eval.tasks._yaml_loader import load_yaml

    template_name = load_yaml(str(pools.member_yaml(info["chosen"])))["doc_to_text"].__name__
    assert template_name == "boolq_t3"
    samples = out["samples"]["boolq_tailored"]
    assert len(samples) == 4
    for sample in samples:
        assert sample["arguments"][0][0] == templates.render(template_name, sample["doc"])
    assert out["config"]["tailored"]["adapters"]["boolq_tailored"]["shots"] == 6
    from conftest import boolq_docs

    train_docs = boolq_docs("train", 9)
    assert [context for context, _ in trained[-1]] == [templates.render("boolq_t3", train_docs[i])
                                                       for i in record["documents"]]
    # a second run reuses the choice and the adapter: nothing is trained or cross-validated again
    trained.clear(), scored.clear()
    again = run()["config"]["tailored"]
    assert again["prompt"]["boolq_tailored"]["reused"] and again["prompt"]["boolq_tailored"]["chosen"] == info["chosen"]
    assert trained == [] and scored == [] and again["adapters"]["boolq_tailored"]["reused"]


def test_rewrite_puts_requests_in_the_chosen_template_once_and_refuses_other_contexts(task_manager):
    from tailored_harness.select.best import rewrite

    task = task_manager.load(["synth_boolq"])["tasks"]["synth_boolq"]  # BoolQ's fields, offline
    variant = pools.in_template(task, "boolq_tailored_t2")
    docs = list(task.validation_docs())[:3]
    requests = [r for i, doc in enumerate(docs) for r in task.construct_requests(
        doc=doc, ctx=task.fewshot_context(doc, num_fewshot=0), metadata=("synth_boolq", i, 1))]
    answers = [r.arguments[1] for r in requests]
    rewrite(requests, {"synth_boolq": variant})
    rewrite(requests, {"synth_boolq": variant})  # lm-eval may hand the same requests over again
    assert [r.arguments[0] for r in requests] == [templates.render("boolq_t2", r.doc) for r in requests]
    assert [r.arguments[1] for r in requests] == answers and task.doc_to_text(docs[0]) == templates.render("boolq", docs[0])
    chat = task.construct_requests(doc=docs[0], ctx="<|user|>" + task.fewshot_context(docs[0], num_fewshot=0),
                                   metadata=("synth_boolq", 0, 1))
    with pytest.raises(TailoredError, match="prompt=best cannot rewrite task 'synth_boolq'"):
        rewrite(chat, {"synth_boolq": variant})
