"""The generated world and its three tasks: deterministic, balanced, correct, and cached atomically."""

from __future__ import annotations

import json

import pytest

from tailored_harness.suite import world

SMALL = world.WorldSpec(seed=3, people=30, train_size=200, validation_size=100)


@pytest.fixture(scope="module")
def small_world():
    return world.make_world(SMALL)


def test_world_is_a_pure_function_of_its_spec(small_world):
    again = world.make_world(SMALL)
    assert again.facts == small_world.facts
    assert world.make_world(world.WorldSpec(seed=4, people=30)).facts != small_world.facts
    assert len(set(small_world.people)) == 30


@pytest.mark.parametrize("task", world.TASKS)
def test_splits_are_sized_disjoint_and_balanced(small_world, task):
    splits = world.make_splits(small_world, task)
    assert [len(splits[s]) for s in world.SPLITS] == [200, 100]
    keys = [json.dumps({k: v for k, v in d.items() if k != "idx"}, sort_keys=True) for s in world.SPLITS for d in splits[s]]
    assert len(set(keys)) == len(keys)  # no document twice, and none shared by train and validation
    if task != "synth_qa":
        assert sum(d["label"] for d in splits["train"]) == 100  # alternating labels


def test_answers_follow_the_facts_and_passages_never_give_them_away(small_world):
    splits = {task: world.make_splits(small_world, task)["validation"] for task in world.TASKS}
    for doc in splits["synth_boolq"]:
        trait = next(t for t in world.TRAITS if t.name == doc["attribute"])
        assert doc["question"] == trait.question.format(p=doc["person"])
        assert doc["label"] == int(small_world.facts[doc["person"]][trait.name] == world.YES)
        for statement in trait.if_true + trait.if_false:
            assert statement.format(p=doc["person"]) not in doc["passage"], doc
    attributes = {a.name: a for a in world.ATTRIBUTES}
    for doc in splits["synth_qa"]:
        attribute, person = attributes[doc["attribute"]], doc["person"]
        assert doc["answer"] == small_world.facts[person][attribute.name]
        assert doc["question"] == attribute.ask.format(p=person)
        for statement in attribute.statements:  # no value of the asked attribute is stated, in any phrasing
            for value in attribute.values:
                assert statement.format(p=person, v=value) not in doc["passage"], doc
    for doc in splits["synth_piqa"]:
        attribute, person = attributes[doc["attribute"]], doc["person"]
        truth = small_world.facts[person][attribute.name]
        solution = next(sol for goal, sol in attribute.goals if goal.format(p=person) == doc["goal"])
        assert (doc["sol1"], doc["sol2"])[doc["label"]] == solution.format(p=person, v=truth)
        assert (doc["sol1"], doc["sol2"])[1 - doc["label"]] != solution.format(p=person, v=truth)


def test_every_fact_is_stated_in_the_pretraining_text(small_world):
    text = world.statements(small_world)
    for person, facts in small_world.facts.items():
        for attribute in world.ATTRIBUTES:
            for statement in attribute.statements:
                assert statement.format(p=person, v=facts[attribute.name]) in text
        for trait in world.TRAITS:
            said, unsaid = (trait.if_true, trait.if_false) if facts[trait.name] == world.YES else (trait.if_false, trait.if_true)
            assert all(s.format(p=person) in text for s in said)
            assert not any(s.format(p=person) in text for s in unsaid)


def test_materialize_writes_once_and_rebuilds_what_is_damaged(tmp_path):
    folder, reused = world.materialize(SMALL, root=tmp_path / "w")
    assert not reused and world.load_split(folder, "synth_piqa", "train")[0]["idx"] == 0
    assert world.materialize(SMALL, root=tmp_path / "w") == (folder, True)
    (folder / world.MANIFEST).write_text("{ truncated")  # an interrupted or corrupted cache entry
    folder2, reused = world.materialize(SMALL, root=tmp_path / "w")
    assert folder2 == folder and not reused
    assert json.loads((folder / world.MANIFEST).read_text())["fingerprint"] == SMALL.fingerprint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no temporary folder left behind


def test_bad_specs_name_the_field():
    with pytest.raises(ValueError, match="people=1"):
        world.WorldSpec(people=1)
    with pytest.raises(ValueError, match="context_facts=4"):
        world.WorldSpec(context_facts=4)
    with pytest.raises(ValueError, match="unknown synthetic task 'nope'"):
        world.make_splits(world.make_world(SMALL), "nope")
    with pytest.raises(ValueError, match="add people"):
        world.make_splits(world.make_world(world.WorldSpec(people=2, train_size=5000)), "synth_qa")
    with pytest.raises(ValueError, match="people=1 must be between"):
        world.WorldSpec(people=1)


def test_lm_eval_hook_returns_both_splits_and_ignores_model_args(isolated_cache):
    ds = world.qa_dataset(world_seed=0, pretrained="ignored", version=1.0)
    spec = world.WorldSpec()
    assert len(ds["train"]) == spec.train_size and len(ds["validation"]) == spec.validation_size
    assert set(ds["validation"].column_names) == {"passage", "question", "answer", "idx", "person", "attribute"}
