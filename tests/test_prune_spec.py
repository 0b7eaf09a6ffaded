"""PruneSpec validation, unit counts, selection, and the LLaMA-7B parameter counts on the meta device."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from tailored_harness.core.errors import TailoredError
from tailored_harness.prune import PruneSpec, prune_model
from tailored_harness.prune.plan import select
from tailored_harness.prune.ranking import kept_units
from tailored_harness.prune.spec import selected_layers
from tailored_harness.taskio.task_format import IGNORE, scored_pair


@pytest.mark.parametrize(
    "field,value,needle",
    [("ratio", 1.0, "prune_ratio=1.0"), ("ratio", -0.1, "prune_ratio=-0.1"), ("ratio", "0.2", "prune_ratio='0.2'"),
     ("layers", "29-4", "prune_layers='29-4'"), ("layers", "first", "prune_layers='first'"),
     ("importance", "taylor", "valid: l1"), ("round_to", 0, "round_to=0"), ("samples", 0, "calibration_samples=0"),
     ("seq_len", 1, "calibration_len=1"), ("calibration", "corpus.csv", "calibration='corpus.csv'"),
     ("attention_unit", "head", "attention_unit='head' is not a pruning unit; valid: kv_group, query_head"),
     ("ranking", "across", "prune_ranking='across' is not a ranking; valid: layer, global"),
     ("group_reduction", "mean", "group_reduction='mean' is not a reduction; valid: sum, max")],
)
def test_bad_values_name_the_value_and_the_choices(field, value, needle):
    with pytest.raises(TailoredError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        PruneSpec(**{field: value})


def test_model_args_and_the_prune_command_map_to_the_spec_through_one_table():
    from tailored_harness.cli.main import build_parser
    from tailored_harness.core.options import declared
    from tailored_harness.spec.model import ModelSpec

    spec = ModelSpec(pretrained="m", prune_ratio=0.3, prune_layers="1-2", calibration_samples=3, prune_seed=7)
    assert spec.prune_spec() == PruneSpec(ratio=0.3, layers="1-2", samples=3, seed=7)
    defaults = ModelSpec(pretrained="m").to_dict()
    assert PruneSpec.from_args(defaults) == PruneSpec()  # one set of defaults, the spec's
    args = build_parser().parse_args(["prune", "--model", "m", "--ratio", "0.3", "--layers", "1-2", "--samples", "3",
                                      "--seed", "7"])
    assert PruneSpec.from_args(vars(args)) == spec.prune_spec()
    args = build_parser().parse_args(["prune", "--model", "m", "--ratio", "0.3", "--ranking", "global",
                                      "--group-reduction", "max"])
    assert PruneSpec.from_args(vars(args)) == PruneSpec(ratio=0.3, ranking="global", group_reduction="max") \
        == ModelSpec(pretrained="m", prune_ratio=0.3, prune_ranking="global", group_reduction="max").prune_spec()
    assert {d.name for d in declared(PruneSpec)} == {field.name for field in dataclasses.fields(PruneSpec)}


def test_the_historical_attention_unit_leaves_fingerprints_as_they_were():
    """Checkpoints pruned before attention_unit existed were pruned in KV groups: that value stays out
    of the spec's dictionary (so their fingerprints hold); the other is in it."""
    assert not {"attention_unit", "ranking", "group_reduction"} & set(PruneSpec(ratio=0.2).to_dict())
    assert PruneSpec(ratio=0.2, attention_unit="query_head").to_dict()["attention_unit"] == "query_head"
    other = PruneSpec(ratio=0.2, ranking="global", group_reduction="max").to_dict()
    assert (other["ranking"], other["group_reduction"]) == ("global", "max")


def test_layer_ranges_are_inclusive_and_checked_against_the_model():
    assert selected_layers("4-29", 32) == list(range(4, 30))
    assert selected_layers("all", 3) == [0, 1, 2]
    with pytest.raises(TailoredError, match="layers 0-31"):
        selected_layers("4-32", 32)


@pytest.mark.parametrize("units,ratio,round_to,kept", [(32, 0.25, 1, 24), (11008, 0.25, 1, 8256), (11008, 0.5, 1, 5504),
                                                       (32, 0.2, 1, 25), (2, 0.2, 1, 1), (2, 0.99, 1, 1), (96, 0.0, 1, 96),
                                                       (11008, 0.2, 64, 8832), (100, 0.5, 8, 48)])
def test_kept_units(units, ratio, round_to, kept):
    assert kept_units(units, ratio, round_to) == kept


def test_select_keeps_the_best_units_sorted_with_ties_to_the_lower_index():
    scores = {3: {"attention": torch.tensor([0.5, 2.0, 1.0, 2.0]), "mlp": torch.tensor([1.0, 1.0, 1.0, 0.0])}}
    plan = select(scores, PruneSpec(ratio=0.5))
    assert plan.kept == {3: {"attention": [1, 3], "mlp": [0, 1]}}
    assert plan.units == {3: {"attention": 4, "mlp": 4}}


def test_grouped_scores_keep_as_many_in_every_group():
    """Query heads (2 KV groups of 3): each row keeps its best 2 of 3, even where the other row's
    worst beats this row's best; unit r * 3 + c is row r's c-th."""
    scores = {0: {"query": torch.tensor([[0.1, 0.3, 0.2], [9.0, 8.0, 7.0]])}}
    plan = select(scores, PruneSpec(ratio=0.2, attention_unit="query_head"))
    assert plan.kept == {0: {"query": [1, 2, 3, 4]}} and plan.units == {0: {"query": 6}}


def test_global_ranking_moves_units_to_the_layers_that_score_higher_and_keeps_the_total():
    """0.5 of 4 units keeps 2 a layer (4 in all). Ranked across layers, each layer keeps its best
    unit, then the best of the rest anywhere: 9 and 8 of layer 0 beat layer 1's 3."""
    scores = {0: {"attention": torch.tensor([10.0, 9.0, 8.0, 7.0])}, 1: {"attention": torch.tensor([1.0, 2.0, 3.0, 4.0])}}
    assert select(scores, PruneSpec(ratio=0.5)).kept == {0: {"attention": [0, 1]}, 1: {"attention": [2, 3]}}
    assert select(scores, PruneSpec(ratio=0.5, ranking="global")).kept == {0: {"attention": [0, 1, 2]}, 1: {"attention": [3]}}


def test_global_ranking_ranks_grouped_slots_and_rounds_mlp_widths():
    """Query heads (2 KV groups of 3 per layer): a layer's c-th slot is its c-th best head in every
    group, scored by their sum; every group of a layer keeps as many. MLP widths round to round_to."""
    scores = {0: {"query": torch.tensor([[5.0, 1.0, 4.0], [6.0, 3.0, 2.0]]), "mlp": torch.arange(8.0) + 10},
              1: {"query": torch.tensor([[0.1, 0.3, 0.2], [0.6, 0.5, 0.4]]), "mlp": torch.arange(8.0)}}
    plan = select(scores, PruneSpec(ratio=0.3, attention_unit="query_head", ranking="global", round_to=2))
    # slots: layer 0 (11, 7, 3), layer 1 (0.9, 0.7, 0.5); 2 a layer uniformly, 4 in all: 11 and 0.9, then 7 and 3
    assert plan.kept[0]["query"] == [0, 1, 2, 3, 4, 5] and plan.kept[1]["query"] == [1, 3]
    # MLP: 4 a layer uniformly (5.6 rounded to 2), 8 in all: each layer's best, then layer 0's 6 next;
    # 7 rounds up to 8 and 1 to 2 (rounding may keep a little more than the uniform total)
    assert plan.kept[0]["mlp"] == list(range(8)) and plan.kept[1]["mlp"] == [6, 7]


@pytest.mark.parametrize("unit", ["kv_group", "query_head"])
def test_global_ranking_equals_per_layer_where_every_layer_scores_alike(unit):
    """Where every layer holds the same values, each in its own order (query heads: the same
    permutation of every group's, so slot sums are alike too), a ranking across layers has no layer
    to prefer: it keeps exactly what each layer keeps on its own."""
    generator = torch.Generator().manual_seed(3)
    heads = torch.rand(4, 6, generator=generator, dtype=torch.float64)
    groups, mlp = torch.rand(8, generator=generator, dtype=torch.float64), torch.rand(40, generator=generator, dtype=torch.float64)

    def shuffled(values):
        return values[..., torch.randperm(values.shape[-1], generator=generator)]

    kind, attention = ("attention", groups) if unit == "kv_group" else ("query", heads)
    scores = {i: {kind: shuffled(attention), "mlp": shuffled(mlp)} for i in range(3)}
    for ratio in (0.2, 0.5):
        layer = select(scores, PruneSpec(ratio=ratio, attention_unit=unit))
        assert select(scores, PruneSpec(ratio=ratio, attention_unit=unit, ranking="global")) == layer
        assert len({len(kept[kind]) for kept in layer.kept.values()}) == 1


def _llama_7b_on_meta():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32)
    with torch.device("meta"):
        return LlamaForCausalLM(config)


@pytest.mark.parametrize("ratio,expected,model_type", [(0.25, 5_422_977_024, "tailored_llama"),
                                                       (0.5, 4_107_538_432, "tailored_llama")])
def test_llama_7b_counts_match_llm_pruner(ratio, expected, model_type):
    model = _llama_7b_on_meta()
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616
    pruned, plan, counts = prune_model(model, PruneSpec(ratio=ratio, layers="4-29", importance="random"), progress=False)
    assert counts["after"]["total"] == expected == sum(p.numel() for p in pruned.parameters())
    assert pruned.config.model_type == model_type
    assert pruned.config.layer_num_attention_heads[4] == int(32 * (1 - ratio))
    assert pruned.config.layer_num_attention_heads[3] == 32 and pruned.config.layer_intermediate_sizes[30] == 11008


def test_llama_7b_uniform_24_heads_needs_the_per_layer_type_and_16_heads_does_not():
    pruned, _, _ = prune_model(_llama_7b_on_meta(), PruneSpec(ratio=0.25, importance="random"), progress=False)
    assert pruned.config.model_type == "tailored_llama" and pruned.config.num_attention_heads == 24
    pruned, _, _ = prune_model(_llama_7b_on_meta(), PruneSpec(ratio=0.5, importance="random"), progress=False)
    assert pruned.config.model_type == "llama" and pruned.config.num_attention_heads == 16
    assert pruned.config.head_dim == 128 and pruned.config.intermediate_size == 5504


def test_calibration_files_give_seeded_samples_and_clear_errors(tmp_path):
    from tailored_harness.prune import calibration
    from tailored_harness.suite import tiny

    tokenizer = tiny.train_tokenizer([f"line {i} says something" for i in range(50)], vocab_size=300)
    text = tmp_path / "c.txt"
    text.write_text("\n".join(f"line {i} says something" for i in range(50)) + "\n\n")
    spec = PruneSpec(calibration=str(text), samples=3, seq_len=8)
    batch = calibration.calibration_batch(spec, tokenizer)
    ids = batch.input_ids
    assert ids.shape == (3, 8) and (ids[:, 0] == tokenizer.bos_token_id).all()
    assert torch.equal(batch.labels, ids)  # general text: every token takes loss
    assert torch.equal(ids, calibration.calibration_batch(spec, tokenizer).input_ids)
    other = calibration.calibration_batch(PruneSpec(calibration=str(text), samples=3, seq_len=8, seed=1), tokenizer)
    assert not torch.equal(ids, other.input_ids)
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(TailoredError, match="line 2 has no string field 'text' \\(has: body\\)"):
        calibration.calibration_batch(PruneSpec(calibration=str(jsonl)), tokenizer)
    with pytest.raises(TailoredError, match="gives only"):
        calibration.calibration_batch(PruneSpec(calibration=str(text), samples=1000), tokenizer)
    with pytest.raises(TailoredError, match="no such file"):
        calibration.calibration_batch(PruneSpec(calibration=str(tmp_path / "missing.txt")), tokenizer)
    assert calibration.calibration_batch(PruneSpec(importance="l2", calibration=str(tmp_path / "missing.txt")), tokenizer) is None


class _FakeTask:
    """The slice of lm-eval's Task API that calibration reads: a yes/no multiple-choice task."""

    OUTPUT_TYPE = "multiple_choice"

    def __init__(self, docs, training=True):
        self.docs, self.training = docs, training
        self.config = type("Config", (), {"target_delimiter": " "})()

    def has_training_docs(self):
        return self.training

    def training_docs(self):
        return self.docs

    def doc_to_text(self, doc):
        return f"{doc['passage']}\nQuestion: {doc['question']}?\nAnswer:"

    def doc_to_target(self, doc):
        return doc["label"]

    def doc_to_choice(self, doc):
        return ["no", "yes"]

    def fewshot_context(self, doc, num_fewshot, gen_prefix=None):
        assert num_fewshot == 0 and gen_prefix is None
        return self.doc_to_text(doc)


def _fake_docs(n):
    return [{"passage": " ".join(f"word{j}" for j in range(i % 7 + 3)), "question": f"is {i} even", "label": 1 - i % 2}
            for i in range(n)]


def test_task_calibration_scores_only_the_gold_continuation():
    from tailored_harness.prune import calibration
    from tailored_harness.suite import tiny

    docs = _fake_docs(30)
    task = _FakeTask(docs)
    tokenizer = tiny.train_tokenizer([task.doc_to_text(d) + " yes no" for d in docs], vocab_size=300)
    spec = PruneSpec(samples=6, seq_len=64)
    batch = calibration.calibration_batch(spec, tokenizer, {"fake": task})
    assert batch.input_ids.shape[0] == 6 and batch.labels.shape == batch.input_ids.shape
    chosen = random.Random(spec.seed).sample([scored_pair(task, d) for d in docs], 6)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for ids, labels, (context, continuation) in zip(batch.input_ids, batch.labels, chosen):
        scored = labels != IGNORE
        assert tokenizer.decode(ids[scored]).strip() == continuation.strip() in ("yes", "no")
        length = len(tokenizer(context + continuation, add_special_tokens=False)["input_ids"]) + 1  # + <s>
        assert ids[0] == tokenizer.bos_token_id and (ids[length:] == pad).all() and not scored[length:].any()
    assert torch.equal(batch.input_ids, calibration.calibration_batch(spec, tokenizer, {"fake": task}).input_ids)
    reseeded = calibration.calibration_batch(PruneSpec(samples=6, seq_len=64, seed=1), tokenizer, {"fake": task})
    assert not torch.equal(batch.input_ids, reseeded.input_ids)
    assert calibration.digest(batch) != calibration.digest(reseeded)


def test_task_calibration_cuts_long_contexts_from_the_left_and_explains_shortfalls():
    from tailored_harness.prune import calibration
    from tailored_harness.suite import tiny

    docs = _fake_docs(5)
    task = _FakeTask(docs)
    tokenizer = tiny.train_tokenizer([task.doc_to_text(d) + " yes no" for d in docs], vocab_size=300)
    batch = calibration.calibration_batch(PruneSpec(samples=5, seq_len=4), tokenizer, {"fake": task})
    assert batch.input_ids.shape == (5, 4)
    assert all(tokenizer.decode(ids[-1:]).strip() in ("yes", "no") for ids in batch.input_ids)  # continuation kept
    assert ((batch.labels != IGNORE).sum(dim=1) == 1).all()
    with pytest.raises(TailoredError, match="has only 5 training documents; calibration_samples=6"):
        calibration.calibration_batch(PruneSpec(samples=6), tokenizer, {"fake": task})
    with pytest.raises(TailoredError, match=r"no task has a training split to calibrate on \(fake, other\)"):
        calibration.calibration_batch(PruneSpec(samples=2), tokenizer, {"fake": _FakeTask(docs, training=False),
                                                                        "other": _FakeTask(docs, training=False)})


class _FakePages(_FakeTask):
    """A perplexity task (``loglikelihood_rolling``, as ``wikitext``): its target is the whole page."""

    OUTPUT_TYPE = "loglikelihood_rolling"

    def doc_to_target(self, doc):
        return doc["page"]


def test_task_calibration_scores_a_perplexity_tasks_pages_whole_and_leaves_out_tasks_without_training(caplog):
    """A run of choice tasks and a perplexity task (``winogrande,hellaswag,wikitext``) calibrates on
    both: the pages with every token a label (what a perplexity metric reads); a task without a
    training split (``ptb_tailored``) is left out, with a warning, instead of refusing the run."""
    from tailored_harness.prune import calibration
    from tailored_harness.suite import tiny

    docs = _fake_docs(4)
    pages = [{"page": " ".join(f"page{i} word{j}" for j in range(5))} for i in range(4)]
    choice, rolling = _FakeTask(docs), _FakePages(pages)
    tokenizer = tiny.train_tokenizer([choice.doc_to_text(d) + " yes no" for d in docs] + [p["page"] for p in pages],
                                     vocab_size=300)
    tasks = {"choice": choice, "pages": rolling, "no_train": _FakeTask(docs, training=False)}
    with caplog.at_level("WARNING", logger="tailored_harness.prune.calibration"):
        assert calibration.task_documents(tasks) == [scored_pair(choice, d) for d in docs] + [("", p["page"]) for p in pages]
    assert "no_train has no training split; calibrating on the other tasks'" in caplog.text
    batch = calibration.calibration_batch(PruneSpec(samples=8, seq_len=64), tokenizer, tasks)
    texts = {tokenizer.decode(ids[labels != IGNORE]).strip() for ids, labels in zip(batch.input_ids, batch.labels)}
    assert {p["page"] for p in pages} <= texts  # every page scored whole, all of its tokens labels
    assert len([t for t in texts if t in ("yes", "no")]) <= 4
