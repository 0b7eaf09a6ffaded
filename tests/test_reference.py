"""The reference model recipe: validated, cached by fingerprint, rebuilt on change, deterministic."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tailored_harness.suite import reference, tiny, world

# A recipe small enough to train in seconds; the real one is ReferenceSpec().
SMALL = reference.ReferenceSpec(
    world=world.WorldSpec(seed=5, people=20, train_size=60, validation_size=20),
    vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, seq_len=64, batch_size=4, steps=6, warmup_steps=2,
    statement_repeats=1,
)


def _weights(folder):
    return (folder / "model.safetensors").read_bytes()


def test_same_seed_gives_bit_identical_builds(tmp_path):
    first, reused = reference.build(SMALL, out=tmp_path / "a", progress=False)
    second, _ = reference.build(SMALL, out=tmp_path / "b", progress=False)
    assert not reused
    assert _weights(first) == _weights(second)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    other, _ = reference.build(dataclasses.replace(SMALL, seed=1), out=tmp_path / "c", progress=False)
    assert _weights(other) != _weights(first)


def test_cache_is_reused_and_rebuilt_when_the_recipe_changes(tmp_path):
    folder, reused = reference.build(SMALL, out=tmp_path / "m", progress=False)
    assert not reused
    assert reference.build(SMALL, out=tmp_path / "m", progress=False) == (folder, True)
    longer = dataclasses.replace(SMALL, steps=7)
    assert longer.fingerprint() != SMALL.fingerprint()
    _, reused = reference.build(longer, out=tmp_path / "m", progress=False)
    assert not reused
    recipe = json.loads((folder / tiny.RECIPE_FILE).read_text())
    assert recipe["reference_spec"]["steps"] == 7 and recipe["fingerprint"] == longer.fingerprint()
    log = json.loads((folder / reference.TRAINING_LOG).read_text())
    assert len(log["losses"]) == 7


def test_default_cache_folder_is_named_by_the_fingerprint(isolated_cache):
    assert reference.reference_dir(SMALL) == isolated_cache / "reference" / SMALL.fingerprint()
    assert reference.ReferenceSpec().fingerprint() != SMALL.fingerprint()


def test_a_change_to_world_generation_changes_the_fingerprint(monkeypatch):
    # The world spec's fields stay the same when only its generation code changes; the model trained
    # on the old documents must not be reused for the new ones.
    before = SMALL.fingerprint()
    monkeypatch.setattr(world, "FORMAT_VERSION", world.FORMAT_VERSION + 1)
    assert SMALL.fingerprint() != before


def test_interrupted_build_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reference, "train", boom)
    with pytest.raises(KeyboardInterrupt):
        reference.build(SMALL, out=tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_saved_folder_loads_as_plain_llama_with_gqa(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = reference.build(SMALL, out=tmp_path / "m", progress=False)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (4, 2)
    assert tokenizer("hello")["input_ids"][0] == tokenizer.bos_token_id


def test_answer_tokens_carry_the_answer_weight():
    pairs = [("is it so?\nAnswer:", " yes"), ("a plain statement.", "")]
    tokenizer = tiny.train_tokenizer([p + a for p, a in pairs] * 20, vocab_size=300)
    (ids, weights), (ids2, weights2) = reference.encode(tokenizer, pairs, answer_weight=5.0)
    assert len(ids) == len(weights) and ids[-1] == tokenizer.eos_token_id
    answer = [i for i, w in zip(ids, weights) if w == 5.0]
    assert tokenizer.decode(answer) == " yes\n"
    assert set(weights2) == {1.0}


@pytest.mark.parametrize(
    "field,value", [("steps", 0), ("hidden_size", 30), ("num_key_value_heads", 3), ("learning_rate", 2.0),
                    ("answer_weight", 0.0), ("warmup_steps", -1)]
)
def test_bad_recipes_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}={value}"):
        reference.ReferenceSpec(**{field: value})


def test_bad_pretrain_tasks_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"pretrain_tasks=\['synth_nope'\].*synth_boolq, synth_piqa, synth_qa"):
        reference.ReferenceSpec(pretrain_tasks=("synth_nope",))
    with pytest.raises(ValueError, match="each must appear once"):
        reference.ReferenceSpec(pretrain_tasks=("synth_qa", "synth_qa"))


def test_held_out_tasks_stay_out_of_the_corpus(tmp_path):
    folder, _ = world.materialize(SMALL.world, root=tmp_path / "w")
    spec = dataclasses.replace(SMALL, pretrain_tasks=("synth_boolq",))
    texts = [text + answer for text, answer in reference.corpus(folder, spec)]
    boolq, piqa = (world.load_split(folder, t, "train") for t in ("synth_boolq", "synth_piqa"))
    assert any(boolq[0]["question"] in t for t in texts)
    assert not any(doc["goal"] in t for doc in piqa for t in texts)  # no held-out prompt, in any form
    assert len(texts) == len(world.statements(world.make_world(SMALL.world))) * SMALL.statement_repeats + len(boolq)
    full = reference.corpus(folder, SMALL)  # the default: every task's train documents
    assert len(full) == len(texts) + sum(len(world.load_split(folder, t, "train")) for t in ("synth_piqa", "synth_qa"))


def test_cli_names_a_bad_held_out_task_and_builds_nothing(isolated_cache, capsys):
    from tailored_harness.cli import main as cli

    assert cli.main(["reference", "--pretrain-tasks", "synth_boolq,synth_nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: pretrain_tasks=['synth_boolq', 'synth_nope']" in err and "synth_piqa" in err
    assert not (isolated_cache / "reference").exists()


def test_the_shipped_model_serves_its_recipe_only_and_refuses_altered_weights(tmp_path, monkeypatch):
    from tailored_harness.core.errors import TailoredError

    assert reference.shipped(SMALL) is None  # a recipe nobody shipped is trained
    folder, _ = reference.build(SMALL, out=tmp_path / "built", progress=False)
    monkeypatch.setattr(reference, "shipped_dir", lambda: tmp_path / "package" / "reference_model")
    reference.ship(folder, SMALL, reference.shipped_dir())
    assert reference.model_folder(SMALL) == (reference.shipped_dir(), "shipped")
    assert reference.model_folder(SMALL, retrain=True)[1] in ("cached", "trained")
    assert reference.shipped(dataclasses.replace(SMALL, seed=1)) is None
    weights = reference.shipped_dir() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(TailoredError, match="not the .* it was shipped with"):
        reference.shipped(SMALL)


def test_the_package_ships_the_default_recipes_weights():
    folder = reference.shipped(reference.ReferenceSpec())
    assert folder is not None and (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
