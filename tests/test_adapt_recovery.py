"""General recovery (``adapt_scope=general``): LLM-Pruner's template and recipe, one adapter shared by
every task of a run (perplexity tasks included), cached without the task in its name."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from tailored_harness.adapt import general, recovery
from tailored_harness.core.errors import TailoredError
from tailored_harness.spec.model import ModelSpec


@pytest.mark.parametrize("args, message", [
    ({"adapt_scope": "model"}, "adapt_scope='model' is not a scope; valid: task, general"),
    ({"recovery_examples": 10}, "recovery_examples configure the general adapter and need adapt_scope=general"),
    ({"adapt_scope": "general", "adapt_method": "tell"}, "does not combine with adapt_method=tell (use sft)"),
    ({"adapt_scope": "general", "shots": 0}, "shots=0 turns adaptation off"),
    ({"adapt_scope": "general", "prompt": "best"}, "prompt=best and prompt_select choose prompts on per-task"),
    ({"adapt_scope": "general", "recovery_examples": 0}, "recovery_examples=0 must be a positive integer"),
    ({"adapt_scope": "general", "recovery_lr": 2}, "recovery_lr=2 must be a number in (0, 1)"),
    ({"adapt_scope": "general", "recovery_data": "tasks:piqa"}, "tasks:A+B is TELL's, not general data"),
])
def test_bad_recovery_arguments_are_one_line_naming_the_value(args, message):
    with pytest.raises(TailoredError, match=re.escape(message)) as err:
        ModelSpec.from_model_args({"pretrained": "x", **args})
    assert "\n" not in str(err.value)


def test_default_recipe_is_llm_pruners():
    """LLM-Pruner's README recovery: yahma/alpaca-cleaned, r 8 (alpha 16, dropout 0.05, the seven
    projections: its post_training.py defaults), 2 epochs at 1e-4, 64 examples per step, 256 tokens."""
    spec = ModelSpec.from_model_args({"pretrained": "x", "adapt_scope": "general"}).recovery_spec()
    assert spec.data == "yahma/alpaca-cleaned"
    train = spec.train_spec()
    assert (train.r, train.alpha, train.dropout, train.learning_rate, train.epochs) == (8, 16.0, 0.05, 1e-4, 2)
    assert train.batch_size * train.grad_accum == 64 and train.max_len == 256
    assert set(train.targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert ModelSpec.from_model_args({"pretrained": "x"}).recovery_spec() is None


def test_alpaca_template_with_and_without_input():
    prompt, response = recovery.alpaca_pair({"instruction": "Add 2 and 3.", "input": "", "output": "5"}, "r")
    assert response == "5" and prompt == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nAdd 2 and 3.\n\n### Response:\n")
    prompt, _ = recovery.alpaca_pair({"instruction": "Translate.", "input": "Hallo", "output": "Hello"}, "r")
    assert prompt.startswith("Below is an instruction that describes a task, paired with an input")
    assert prompt.endswith("### Instruction:\nTranslate.\n\n### Input:\nHallo\n\n### Response:\n")
    assert recovery.alpaca_pair({"instruction": "Name one.", "response": "x"}, "r")[0].endswith("Name one.\n\n### Response:\n")
    assert recovery.alpaca_pair({"text": "plain"}, "r") == ("", "plain")


def test_json_file_holds_a_list_of_records(tmp_path):
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}, {"text": "t"}]))
    source = general.source_for(str(data))
    assert source.examples(None) == [("a\n", "b"), ("", "t")]
    assert [where for _, where in source.records()] == [f"{data}[0]", f"{data}[1]"]
    data.write_text(json.dumps({"instruction": "a"}))
    with pytest.raises(TailoredError, match="holds a JSON dict; a .json file must hold a list of records"):
        source.records()


def _alpaca_file(tmp_path: Path, n: int) -> Path:
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps([{"instruction": f"Count to {i}.", "input": "" if i % 2 else f"start {i}",
                                 "output": " ".join(str(k) for k in range(i + 1))} for i in range(n)]))
    return data


def test_examples_are_whole_records_in_a_seeded_order_and_too_many_is_refused(tmp_path):
    from tailored_harness.suite import tiny, world

    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    data = _alpaca_file(tmp_path, 20)
    method = recovery.Recovery(recovery.RecoverySpec(data=str(data), examples=7, seed=3))
    training = method.training(None, "any", None, tokenizer)
    assert method.training(None, "other", None, tokenizer) is training  # the same examples for every task
    rows = json.loads(data.read_text())
    assert len(set(training.indices)) == 7 and training.split == "general"
    assert training.pairs == [recovery.alpaca_pair(rows[i], "") for i in training.indices]
    assert training.indices != sorted(training.indices)  # shuffled, by the seed
    again = recovery.Recovery(recovery.RecoverySpec(data=str(data), examples=7, seed=3)).training(None, "x", None, tokenizer)
    assert again.indices == training.indices
    with pytest.raises(TailoredError, match=r"recovery_examples=21 is more than .* \(20 usable records\); valid: "
                                            r"recovery_examples=1\.\.20"):
        recovery.Recovery(recovery.RecoverySpec(data=str(data), examples=21)).training(None, "x", None, tokenizer)


def test_records_holding_an_evaluated_document_of_any_task_of_the_run_are_passed_over(tmp_path):
    """The general adapter serves every task of the run, so no record may carry the text of a document
    any of them is evaluated on (a passage in the input, an ending in the output); without such a
    record the examples are those of a run that had no tasks to check against (same fingerprint)."""
    from types import SimpleNamespace

    from tailored_harness.suite import tiny, world

    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    passage = "the evaluated passage number one says the sky is blue today."
    ending = "an evaluated ending that only the second task scores."
    rows = json.loads(_alpaca_file(tmp_path, 12).read_text())
    rows[3]["input"] = f"Read this: {passage} Then answer."
    rows[8]["output"] = ending
    data = tmp_path / "leaky.json"
    data.write_text(json.dumps(rows))
    tasks = {"first": SimpleNamespace(eval_docs=[{"passage": passage, "label": 0}]),
             "second": SimpleNamespace(eval_docs=[{"ctx": "short", "endings": ["no", ending]}])}
    spec = recovery.RecoverySpec(data=str(data), examples=10, seed=0)
    training = recovery.adaptation_method("sft", None, tasks, spec).training(None, "first", None, tokenizer)
    assert sorted(training.indices) == [i for i in range(12) if i not in (3, 8)]
    assert not any(passage in p + r or ending in p + r for p, r in training.pairs)
    assert training.record["general"]["dropped_evaluated_or_empty"] == 2
    with pytest.raises(TailoredError, match=r"\(10 usable records\); valid: recovery_examples=1\.\.10"):
        recovery.Recovery(dataclasses.replace(spec, examples=11), tasks).training(None, "x", None, tokenizer)
    clean = recovery.RecoverySpec(data=str(_alpaca_file(tmp_path, 12)), examples=10, seed=0)
    assert (recovery.Recovery(clean, tasks).training(None, "x", None, tokenizer).pairs
            == recovery.Recovery(clean).training(None, "x", None, tokenizer).pairs)


@pytest.mark.slow
def test_one_general_adapter_serves_every_task_and_perplexity_and_is_reused(tiny_model_dir, boolq_and_piqa,
                                                                             monkeypatch, tmp_path):
    import lm_eval

    from tailored_harness.adapt import train
    from tailored_harness.taskio import perplexity

    manager, _ = boolq_and_piqa
    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))
    ptb = tmp_path / "ptb"
    ptb.mkdir()
    (ptb / "ptb.test.txt").write_text("".join(f" a sentence {i} of text\n" for i in range(5)))
    monkeypatch.setenv(perplexity.PTB_ENV, str(ptb))
    trained = []
    real = train.train_adapter
    monkeypatch.setattr(train, "train_adapter", lambda model, tok, pairs, spec, desc="", progress=True:
                        trained.append((desc, list(pairs), spec)) or real(model, tok, pairs, spec, desc, progress))
    data = _alpaca_file(tmp_path, 30)
    args = (f"pretrained={tiny_model_dir},dtype=float32,adapt_scope=general,recovery_data={data},"
            f"recovery_examples=12,recovery_epochs=1")

    def run(tasks):
        return lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=tasks, device="cpu", batch_size=4,
                                       task_manager=manager, limit=2)

    first = run(["boolq_tailored", "piqa_tailored"])
    info = first["config"]["tailored"]["adapters"]
    assert [desc for desc, _, _ in trained] == ["adapting general"]  # trained once, for both tasks
    (_, pairs, spec), = trained
    assert len(pairs) == 12 and all(p.startswith("Below is an instruction") for p, _ in pairs)
    assert (spec.r, spec.learning_rate, spec.max_len, spec.epochs) == (8, 1e-4, 256, 1)
    boolq, piqa = info["boolq_tailored"], info["piqa_tailored"]
    assert boolq["folder"] == piqa["folder"] and boolq["fingerprint"] == piqa["fingerprint"]
    assert boolq["scope"] == "general" and boolq["shots"] == 12
    report = json.loads((Path(boolq["folder"]) / "adaptation.json").read_text())
    assert report["method"] == "general" and report["task"] == "general" and report["template"] == "alpaca"
    assert report["cost"]["optimizer_steps"] == math.ceil(math.ceil(12 / 4) / 16)
    assert report["general"] == {"source": str(data), "examples": 12, "tokens": report["cost"]["general_tokens"],
                                 "dropped_evaluated_or_empty": 0, "available": 30}
    # other tasks, a perplexity task among them: the same adapter from the cache, nothing trained, nothing unadapted
    second = run(["piqa_tailored", "ptb_tailored"])
    info = second["config"]["tailored"]
    assert len(trained) == 1 and "unadapted" not in info
    assert {task: a["folder"] for task, a in info["adapters"].items()} == {
        "piqa_tailored": boolq["folder"], "ptb_tailored": boolq["folder"]}
    assert all(a["reused"] for a in info["adapters"].values())
