"""TELL (``adapt_method=tell``): anchors, general data, the budget, leaks, and SFT unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import boolq_docs
from tailored_harness.adapt import anchors, general
from tailored_harness.adapt.spec import TellSpec
from tailored_harness.core.errors import TailoredError
from tailored_harness.spec.model import ModelSpec


# ---------------------------------------------------------------- specs
@pytest.mark.parametrize("args, message", [
    ({"adapt_method": "lora"}, "adapt_method='lora' is not a method; valid: sft, tell"),
    ({"general_data": "x.txt"}, "general_data configure TELL and need adapt_method=tell"),
    ({"adapt_method": "tell", "general_tokens": -5}, "general_tokens=-5 must be a non-negative integer"),
    ({"adapt_method": "tell", "shots": 0}, "needs shots > 0"),
    ({"adapt_method": "tell", "prompt": "best"}, "does not combine with prompt=best or prompt_select"),
    ({"adapt_method": "tell", "tell_anchor": " "}, "tell_anchor=' ' must be default, none"),
])
def test_bad_tell_arguments_are_one_line_naming_the_value(args, message):
    with pytest.raises(TailoredError, match=re.escape(message)) as err:
        ModelSpec.from_model_args({"pretrained": "x", **args})
    assert "\n" not in str(err.value)


def test_tell_spec_defaults_and_the_word_none():
    spec = ModelSpec.from_model_args({"pretrained": "x", "adapt_method": "tell", "tell_anchor": None})
    assert spec.tell_spec() == TellSpec(anchor="none")  # lm-eval parses none as None: it means no anchor
    assert ModelSpec.from_model_args({"pretrained": "x"}).tell_spec() is None


# ---------------------------------------------------------------- anchors
def test_every_plugin_task_and_its_stock_benchmark_has_a_default_anchor():
    from tailored_harness.core.paths import prompts_dir, tasks_dir

    shipped = anchors.read_anchor_file(prompts_dir() / anchors.ANCHOR_FILE)
    perplexity = {"ptb_tailored"}  # no adapter, so no anchor
    plugin = {path.stem for path in tasks_dir().glob("*.yaml")} - perplexity
    stock = {"boolq", "piqa", "arc_easy", "arc_challenge", "openbookqa", "hellaswag", "winogrande"}
    assert plugin | stock <= set(shipped) and not perplexity & set(shipped)
    assert len(set(shipped.values())) == 9 and all(len(text) > 80 for text in shipped.values())


def test_anchor_settings_and_where_it_goes(tmp_path):
    assert anchors.anchor_for("boolq_tailored", "none") == ""
    assert anchors.anchor_for("boolq_tailored", "default").startswith("[BoolQ reading comprehension]")
    assert anchors.anchor_for("anything", "Task: yes/no") == "Task: yes/no"
    own = tmp_path / "mine.yaml"
    own.write_text("x:\n  tasks: [boolq_tailored]\n  anchor: My anchor\n")
    assert anchors.anchor_for("boolq_tailored", str(own)) == "My anchor"
    with pytest.raises(TailoredError, match="task 'piqa' has no anchor in .*mine.yaml"):
        anchors.anchor_for("piqa", str(own))
    own.write_text("x:\n  tasks: [boolq_tailored]\n  anchr: typo\n")
    with pytest.raises(TailoredError, match="entry 'x' must have exactly the keys tasks"):
        anchors.read_anchor_file(own)
    assert anchors.anchored("A", "Passage: p\nAnswer:") == "A\n\nPassage: p\nAnswer:"
    assert anchors.anchored("", "ctx") == "ctx"


# ---------------------------------------------------------------- general data
def test_record_fields_and_files(tmp_path):
    assert general.record_pair({"instruction": "Add.", "input": "1+1", "output": "2"}, "f") == ("Add.\n1+1\n", "2")
    assert general.record_pair({"instruction": "Hi.", "input": "", "output": "Hello"}, "f") == ("Hi.\n", "Hello")
    assert general.record_pair({"prompt": "Q:", "response": " a"}, "f") == ("Q:", " a")
    assert general.record_pair({"text": "plain"}, "f") == ("", "plain")
    with pytest.raises(TailoredError, match=r"a record with fields \['question'\] has none of the accepted"):
        general.record_pair({"question": "?"}, "f")
    txt, jsonl = tmp_path / "g.txt", tmp_path / "g.jsonl"
    txt.write_text("first line\n\nsecond line\n")
    jsonl.write_text(json.dumps({"text": "t"}) + "\n" + json.dumps({"prompt": "p", "response": "r"}) + "\n")
    assert general.source_for(str(txt)).examples(None) == [("", "first line"), ("", "second line")]
    assert general.source_for(str(jsonl)).examples(None) == [("", "t"), ("p", "r")]
    assert isinstance(general.source_for("tasks:a+b"), general.TaskSource)
    assert isinstance(general.source_for("yahma/alpaca-cleaned"), general.HubSource)
    with pytest.raises(TailoredError, match="general_data='.*missing.jsonl': no such file"):
        general.source_for(str(tmp_path / "missing.jsonl"))


def test_a_local_dataset_folder_is_read_like_a_hub_dataset(tmp_path):
    folder = tmp_path / "alpaca-like"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(
        json.dumps({"instruction": f"Say {i}.", "input": "", "output": str(i)}) + "\n" for i in range(5)))
    assert general.source_for(str(folder)).examples(None) == [(f"Say {i}.\n", str(i)) for i in range(5)]
    with pytest.raises(TailoredError, match="general_data='.*nowhere' could not be loaded as a dataset"):
        general.HubSource(str(tmp_path / "nowhere")).examples(None)


def test_evaluated_text_is_found_anywhere_in_an_example_and_short_fields_are_not_needles():
    evaluated = general.Evaluated([{"passage": "validation passage number 3 says the sky is blue.", "label": 1,
                                    "question": "short?"}])
    assert evaluated.holds("prefix validation passage number 3 says the sky is blue. suffix")
    assert not evaluated.holds("validation passage number 3 says the sky is green.")
    assert not evaluated.holds("short?")


def test_take_fills_the_budget_with_whole_clean_examples_in_a_seeded_order(tied_tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tied_tiny_model_dir)
    leak = "validation passage number 0 says the sky is blue."
    examples = [("", f"general sentence number {i} about something else entirely") for i in range(40)]
    examples += [("Read: ", leak), ("", "")]
    evaluated = general.Evaluated(boolq_docs("validation", 2))
    taken = general.take(examples, tokenizer, 150, seed=0, max_len=64, evaluated=evaluated)
    sizes = [len(tokenizer(p + r)["input_ids"]) for p, r in taken.pairs]
    assert 0 < taken.tokens == sum(sizes) <= 150 and taken.tokens + max(sizes) > 150 - max(sizes)
    assert all(leak not in p + r for p, r in taken.pairs)
    whole = general.take(examples, tokenizer, 10 ** 6, seed=0, max_len=64, evaluated=evaluated)
    assert len(whole.pairs) == 40 and whole.dropped == 2 and whole.available == 42  # the leak and the empty one
    assert general.take(examples, tokenizer, 150, seed=0, max_len=64, evaluated=evaluated) == taken
    assert general.take(examples, tokenizer, 150, seed=1, max_len=64, evaluated=evaluated).pairs != taken.pairs
    assert general.take(examples, tokenizer, 0, seed=0, max_len=64, evaluated=evaluated).pairs == []


def test_task_source_takes_other_tasks_training_documents_never_the_adapted_tasks_dataset(boolq_and_piqa):
    from tailored_harness.taskio.task_format import scored_pair

    _, tasks = boolq_and_piqa
    boolq, piqa = tasks["boolq_tailored"], tasks["piqa_tailored"]
    source = general.TaskSource("tasks:boolq_tailored+piqa_tailored")
    pairs = source.examples(general.Context("boolq_tailored", boolq, tasks))
    assert pairs == [scored_pair(piqa, doc) for doc in piqa.training_docs()] and len(pairs) == 7
    assert all("validation" not in context + answer for context, answer in pairs)
    with pytest.raises(TailoredError, match="leaves no task but 'renamed' itself"):  # same dataset: task data
        general.TaskSource("tasks:boolq_tailored").examples(general.Context("renamed", boolq, tasks))


def test_scoring_anchors_plain_contexts_once_and_refuses_any_other(boolq_and_piqa):
    from types import SimpleNamespace

    from tailored_harness.taskio.task_format import zero_shot_context

    _, tasks = boolq_and_piqa
    task = tasks["boolq_tailored"]
    doc = task.validation_docs()[0]
    plain = zero_shot_context(task, doc)
    request = SimpleNamespace(task_name="boolq_tailored", doc=doc, arguments=(plain, " yes"))
    other = SimpleNamespace(task_name="piqa_tailored", doc={}, arguments=("ctx", " a"))
    table = {"boolq_tailored": ("Anchor", task)}
    anchors.apply([request, other], table)
    anchors.apply([request], table)  # lm-eval may hand the same request over again: anchored once
    assert request.arguments == ("Anchor\n\n" + plain, " yes") and other.arguments == ("ctx", " a")
    chat = SimpleNamespace(task_name="boolq_tailored", doc=doc, arguments=("<|im_start|>user\n" + plain, " yes"))
    with pytest.raises(TailoredError, match="adapt_method=tell cannot anchor task 'boolq_tailored'"):
        anchors.apply([chat], table)


# ---------------------------------------------------------------- end to end on local BoolQ and PIQA
@pytest.mark.slow
def test_tell_anchors_training_and_scoring_and_no_evaluated_document_enters_general_data(
        tiny_model_dir, boolq_and_piqa, monkeypatch, tmp_path):
    import lm_eval

    from tailored_harness.adapt import train

    manager, _ = boolq_and_piqa
    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))
    trained = {}  # desc -> the pairs each adapter trained on
    real = train.train_adapter
    monkeypatch.setattr(train, "train_adapter", lambda model, tok, pairs, spec, desc="", progress=True:
                        trained.setdefault(desc, list(pairs)) and real(model, tok, pairs, spec, desc, progress))
    leak = boolq_docs("validation", 4)[2]["passage"]  # an evaluated BoolQ document, planted in the general data
    data = tmp_path / "general.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say something {i}.", "output": f"thing {i}"}) + "\n"
                            for i in range(30)) + json.dumps({"instruction": "Read.", "input": leak, "output": "ok"}) + "\n")
    args = (f"pretrained={tiny_model_dir},dtype=float32,shots=6,epochs=1,adapt_method=tell,general_data={data},"
            f"general_tokens=100000")
    out = lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=["boolq_tailored", "piqa_tailored"],
                                  device="cpu", batch_size=4, task_manager=manager, log_samples=True)
    info = out["config"]["tailored"]["adapters"]
    for task, head in (("boolq_tailored", "[BoolQ reading comprehension]"), ("piqa_tailored", "[PIQA physical")):
        anchor = anchors.anchor_for(task, "default")
        assert anchor.startswith(head) and info[task]["method"] == "tell"
        pairs = trained[f"adapting {task}"]
        task_pairs = [p for p in pairs if p[0].startswith(anchor + anchors.SEPARATOR)]
        general_pairs = [p for p in pairs if p not in task_pairs]
        # BoolQ drops the record holding its evaluated passage; for PIQA that text is no evaluated document
        assert len(task_pairs) == 6 and len(general_pairs) == {"boolq_tailored": 30, "piqa_tailored": 31}[task]
        assert all(anchor not in c + a and ("Say something" in c or "Read." in c) for c, a in general_pairs)
        evaluated_text = leak if task == "boolq_tailored" else "validation goal"
        assert all(evaluated_text not in c + a for c, a in pairs)
        assert pairs != task_pairs + general_pairs  # shuffled together, not appended
        cost = info[task]["cost"]
        assert cost["task_examples"] == 6 and cost["general_examples"] == len(general_pairs)
        assert cost["general_tokens"] > 0 and cost["task_tokens"] > 0
        assert cost["optimizer_steps"] == 5  # ceil(36 / 4 / 2) = ceil(37 / 4 / 2), one epoch
        for sample in out["samples"][task]:  # every scored request: the anchor, then the plain context
            assert all(arguments[0].startswith(anchor + anchors.SEPARATOR) for arguments in sample["arguments"])
    report = json.loads((Path(info["boolq_tailored"]["folder"]) / "adaptation.json").read_text())
    assert report["general"]["dropped_evaluated_or_empty"] == 1 and report["anchor"].startswith("[BoolQ")


@pytest.mark.slow
def test_adapt_method_sft_is_the_adapter_of_before_same_fingerprint_and_folder(tiny_model_dir, local_boolq,
                                                                               monkeypatch, tmp_path):
    import lm_eval

    from tailored_harness.adapt import shots, store, train

    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))

    def run(extra):
        return lm_eval.simple_evaluate(model="tailored", model_args=f"pretrained={tiny_model_dir},dtype=float32,"
                                       f"shots=6,epochs=1{extra}", tasks=["boolq_tailored"], device="cpu",
                                       batch_size=4, task_manager=local_boolq, log_samples=True)

    first = run("")
    explicit = run(",adapt_method=sft")
    a, b = (o["config"]["tailored"]["adapters"]["boolq_tailored"] for o in (first, explicit))
    assert b["reused"] and a["folder"] == b["folder"] and a["method"] == b["method"] == "sft"
    # the fingerprint is the formula of the adapters before methods existed: nothing added to its inputs
    task = next(iter(local_boolq_tasks(local_boolq).values()))
    from transformers import AutoModelForCausalLM

    spec = ModelSpec.from_model_args({"pretrained": str(tiny_model_dir), "shots": 6, "epochs": 1}).adapt_spec()
    _, _, pairs = shots.examples(task, "boolq_tailored", spec.shots, spec.seed, spec.draw)
    from tailored_harness.adapt.pipeline import model_identity

    from transformers import AutoTokenizer

    from tailored_harness.core.artifacts import tokenizer_digest

    precision = train.precision(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype="float32"))
    before = store.fingerprint(model_identity(str(tiny_model_dir)), "boolq_tailored", store.task_config_hash(task),
                               store.examples_digest(pairs), {**spec.to_dict(), "precision": precision},
                               tokenizer_digest(AutoTokenizer.from_pretrained(tiny_model_dir)))
    assert a["fingerprint"] == before
    assert [s["resps"] for s in first["samples"]["boolq_tailored"]] == \
           [s["resps"] for s in explicit["samples"]["boolq_tailored"]]
    assert all("[BoolQ" not in s["arguments"][0][0] for s in first["samples"]["boolq_tailored"])


def local_boolq_tasks(manager):
    from lm_eval.tasks import get_task_dict

    from tailored_harness.lmeval.run_context import flatten

    return flatten(get_task_dict(["boolq_tailored"], manager))


@pytest.mark.slow
def test_tailored_adapt_trains_tell_on_world_statements_and_lm_eval_reuses_it(tiny_model_dir):
    from conftest import run_cli
    from tailored_harness.suite import world

    statements = world.materialize()[0] / "statements.txt"  # the reference model's pretraining text
    tell = ["--adapt-method", "tell", "--general-data", str(statements), "--general-tokens", "300"]
    made = run_cli(["tailored", "adapt", "--model", str(tiny_model_dir), "--tasks", "synth_boolq", "--shots", "4",
                    "--epochs", "1", *tell, "--quiet"])
    assert made.returncode == 0, made.stderr[-3000:]
    task, folder = made.stdout.strip().split("\t")
    report = json.loads((Path(folder) / "adaptation.json").read_text())
    assert report["method"] == "tell" and report["anchor"].startswith("[World yes/no test]")
    assert 0 < report["cost"]["general_tokens"] <= 300 and report["general"]["source"] == str(statements)
    texts = set(statements.read_text().splitlines())
    assert report["cost"]["general_examples"] > 5 and len(texts) > 1000
    scored = run_cli(["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},shots=4,epochs=1,"
                      f"adapt_method=tell,general_data={statements},general_tokens=300", "--tasks", "synth_boolq",
                      "--limit", "2"])
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"reusing cached adapter for synth_boolq: {folder}" in scored.stderr
    refused = run_cli(["tailored", "adapt", "--model", str(tiny_model_dir), "--tasks", "synth_boolq", "--general-data",
                       str(statements)])
    assert refused.returncode == 2 and "--general-data configure TELL and need --adapt-method tell" in refused.stderr
