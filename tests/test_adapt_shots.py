"""AdaptSpec validation, the stratified shot draw, and the leakage guard (never train on the evaluated split)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from tailored_harness.adapt import shots
from tailored_harness.adapt.spec import AdaptSpec
from tailored_harness.core.errors import TailoredError
from tailored_harness.spec.model import ModelSpec


@pytest.mark.parametrize(
    "field,value,needle",
    [("shots", -1, "shots=-1"), ("r", 0, "lora_r=0"), ("learning_rate", 2.0, "lora_lr=2.0"),
     ("dropout", 1.0, "lora_dropout=1.0"), ("epochs", 0, "epochs=0"), ("targets", ("qkv",), "valid: q_proj"),
     ("batch_size", True, "train_batch_size=True"), ("alpha", float("nan"), "lora_alpha=nan")],
)
def test_bad_adapt_fields_are_named_with_the_valid_range(field, value, needle):
    with pytest.raises(TailoredError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        AdaptSpec(**{field: value})


def test_model_args_defaults_are_the_adapt_spec_defaults():
    spec = ModelSpec.from_model_args({"pretrained": "m"})
    assert spec.adapt_spec() == AdaptSpec()
    assert ModelSpec.from_model_args({"pretrained": "m", "shots": 0}).adapt_spec() is None
    assert ModelSpec.from_model_args({"pretrained": "m", "lora_alpha": 16}).adapt_spec().to_dict() == AdaptSpec().to_dict()
    with pytest.raises(TailoredError, match="lora_r=0"):
        ModelSpec.from_model_args({"pretrained": "m", "lora_r": 0})


def test_stratified_draw_is_balanced_seeded_and_without_repeats():
    labels = [0] * 80 + [1] * 20 + [2] * 5
    picked = shots.stratified(labels, 30, seed=0)
    assert len(picked) == len(set(picked)) == 30
    counts = Counter(labels[i] for i in picked)
    assert counts[2] == 5 and sorted((counts[0], counts[1])) == [12, 13]  # small class used up, the rest shared evenly
    assert picked == shots.stratified(labels, 30, seed=0)
    assert picked != shots.stratified(labels, 30, seed=1)
    assert sorted(shots.stratified(labels, 500, seed=0)) == list(range(len(labels)))
    assert len(shots.stratified([None] * 10, 4, seed=0)) == 4  # generation tasks: no strata


class _Task:
    """The slice of lm-eval's Task that the shot source reads."""

    OUTPUT_TYPE = "multiple_choice"

    def __init__(self, training=None, validation="validation", test=None, fewshot=None):
        self.config = SimpleNamespace(training_split=training, validation_split=validation, test_split=test,
                                      fewshot_split=fewshot, target_delimiter=" ")
        self.fewshot_cfg = SimpleNamespace(split=fewshot)
        self.data = {name: [{"q": f"{name} {i}", "label": i % 2}] for i, name in
                     enumerate(n for n in (training, validation, test, fewshot) if n)}

    def has_training_docs(self):
        return self.config.training_split is not None

    def has_test_docs(self):
        return self.config.test_split is not None

    def training_docs(self):
        return self.data[self.config.training_split]

    def fewshot_docs(self):
        return self.data[self.fewshot_cfg.split]


def test_shots_come_from_the_training_split_else_a_separate_fewshot_split():
    assert shots.training_split(_Task(training="train"), "t")[0] == "train"
    assert shots.training_split(_Task(fewshot="dev", validation="validation"), "t")[0] == "dev"
    assert shots.training_split(_Task(fewshot="validation", test="test"), "t")[0] == "validation"


@pytest.mark.parametrize(
    "task,needle",
    [(_Task(), "has no training split"),
     (_Task(fewshot="validation"), "fewshot_split='validation', evaluated split='validation'"),
     (_Task(training="test", test="test"), "trains and evaluates on the same split 'test'")],
)
def test_a_task_whose_only_split_is_the_evaluated_one_is_refused(task, needle):
    with pytest.raises(TailoredError, match=needle) as error:
        shots.training_split(task, "only_eval")
    assert "only_eval" in str(error.value) and "shots=0" in str(error.value)


def test_training_and_evaluated_documents_are_disjoint_on_a_real_task(task_manager):
    """synth_boolq through lm-eval: the 50 shots come from train, none of them is scored."""
    from lm_eval.tasks import get_task_dict

    task = get_task_dict(["synth_boolq"], task_manager)["synth_boolq"]
    split, indices, pairs = shots.examples(task, "synth_boolq", 50, seed=0, draw="stratified")
    assert split == "train" and len(indices) == len(set(indices)) == 50
    trained = {pairs[i][0] for i in range(50)}
    evaluated = {task.fewshot_context(doc, num_fewshot=0) for doc in task.eval_docs}
    assert shots.evaluated_split(task) == "validation" and len(evaluated) > 100
    assert not trained & evaluated
    assert Counter(pair[1] for pair in pairs) == {" yes": 25, " no": 25}  # stratified by gold answer
    _, _, drawn = shots.examples(task, "synth_boolq", 50, seed=0, draw="proportional")
    train_yes = sum(doc["label"] for doc in task.training_docs()) / len(task.training_docs())
    assert abs(Counter(pair[1] for pair in drawn)[" yes"] - 50 * train_yes) <= 1  # the training split's proportion


def test_proportional_draw_keeps_the_training_splits_label_proportions_for_every_seed():
    labels = [1] * 298 + [0] * 202  # BoolQ's training split here: 59.6% "yes"
    for seed in range(5):
        picked = shots.proportional(labels, 50, seed)
        assert len(set(picked)) == 50 and Counter(labels[i] for i in picked) == {1: 30, 0: 20}
    assert shots.proportional(labels, 50, 0) == shots.proportional(labels, 50, 0)
    assert shots.proportional(labels, 50, 0) != shots.proportional(labels, 50, 1)
    three = [0] * 5 + [1] * 3 + [2] * 2  # 10 shots of 4: exact 2.0, 1.2, 0.8 -> largest remainders give 2, 1, 1
    assert Counter(three[i] for i in shots.proportional(three, 4, 0)) == {0: 2, 1: 1, 2: 1}
    assert sorted(shots.proportional(labels, 600, 0)) == list(range(500))
    assert len(shots.proportional([None] * 10, 4, seed=0)) == 4


def test_shot_draw_is_a_model_arg_with_named_choices():
    from tailored_harness.spec.model import ModelSpec

    assert ModelSpec(pretrained="x", shot_draw="proportional").adapt_spec().draw == "proportional"
    with pytest.raises(TailoredError, match="shot_draw='balanced' is not a shot draw; valid: stratified, proportional"):
        ModelSpec(pretrained="x", shot_draw="balanced")
