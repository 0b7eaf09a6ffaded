"""Task registration: plugin YAMLs indexed without --include_path, user include_path wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailored_harness.core import paths
from tailored_harness.taskio import templates

PLUGIN_TASKS = ("boolq_tailored", "piqa_tailored", "arc_easy_tailored", "arc_challenge_tailored", "openbookqa_tailored",
                "hellaswag_tailored", "winogrande_tailored", "ptb_tailored", "synth_boolq", "synth_piqa", "synth_qa")


def test_plugin_tasks_indexed_without_include_path(task_manager):
    for name in PLUGIN_TASKS:
        entry = task_manager.task_index[name]
        assert Path(entry.yaml_path).parent == paths.tasks_dir()
    assert "boolq" in task_manager.all_tasks  # built-ins still there
    assert task_manager.include_path is None  # the plugin's folder is not reported as the user's


def test_user_include_path_wins(tmp_path):
    from lm_eval.tasks import TaskManager

    own = tmp_path / "boolq_tailored.yaml"
    own.write_text(
        "task: boolq_tailored\ndataset_path: json\noutput_type: multiple_choice\nvalidation_split: validation\n"
        "doc_to_text: 'mine: {{question}}'\ndoc_to_target: label\ndoc_to_choice: ['no', 'yes']\n"
    )
    manager = TaskManager(include_path=str(tmp_path))
    assert Path(manager.task_index["boolq_tailored"].yaml_path) == own
    assert Path(manager.task_index["piqa_tailored"].yaml_path).parent == paths.tasks_dir()


@pytest.mark.parametrize("name,prompt", [("synth_boolq", "boolq"), ("synth_piqa", "piqa"), ("synth_qa", "qa")])
def test_synthetic_tasks_build_offline_with_the_shared_prompts(task_manager, name, prompt):
    from tailored_harness.suite import reference, world

    task = task_manager.load([name])["tasks"][name]
    spec = world.WorldSpec()
    assert len(task.training_docs()) == spec.train_size >= 1000
    assert len(task.validation_docs()) == spec.validation_size >= 500
    doc = task.validation_docs()[0]
    assert task.doc_to_text(doc) == templates.render(prompt, doc)
    # The reference model trains on exactly what the task scores: prompt, delimiter, gold answer.
    template, answer = reference.TASK_FORMATS[name]
    assert template == prompt
    if task.OUTPUT_TYPE == "multiple_choice":
        assert task.doc_to_choice(doc)[task.doc_to_target(doc)] == answer(doc)
    else:
        assert task.doc_to_target(doc) == answer(doc)
    assert task.config.target_delimiter == reference.TARGET_DELIMITER


@pytest.mark.parametrize("name,prompt", [("boolq_tailored", "boolq"), ("piqa_tailored", "piqa")])
def test_tailored_tasks_use_their_prompt_on_real_data(task_manager, hub_dir, monkeypatch, name, prompt):
    monkeypatch.chdir(hub_dir)
    task = task_manager.load([name])["tasks"][name]
    docs = list(task.validation_docs())
    assert len(docs) > 1000
    for doc in docs[:20]:
        assert task.doc_to_text(doc) == templates.render(prompt, doc)
    assert len(task.training_docs()) > 0


def _science_docs(split: str, stem_field: str, n: int = 6) -> list[dict]:
    """Documents in the schema of allenai/ai2_arc (``question``) or allenai/openbookqa
    (``question_stem``): four labelled choices, the gold one named by ``answerKey``."""
    labels = ["A", "B", "C", "D"] if split != "test" else ["1", "2", "3", "4"]  # ARC has both kinds
    docs = []
    for i in range(n):
        gold = i % 4
        texts = [f"{split} option {j} of question {i}" for j in range(4)]
        docs.append({"id": f"{split}-{i}", stem_field: f"{split} question number {i}?",
                     "choices": {"text": texts, "label": labels},
                     "answerKey": (" " if stem_field == "question_stem" else "") + labels[gold]})
    return docs


@pytest.mark.parametrize("name,prompt,stem_field", [("arc_easy_tailored", "arc", "question"),
                                                    ("arc_challenge_tailored", "arc", "question"),
                                                    ("openbookqa_tailored", "openbookqa", "question_stem")])
def test_science_tasks_score_the_gold_choice_in_their_prompt(tmp_path, task_manager, name, prompt, stem_field):
    """The plugin's YAML, with only the dataset swapped for local files of the hub schema."""
    from conftest import local_task_manager
    from tailored_harness.taskio.task_format import scored_pair

    plugin_yaml = Path(task_manager.task_index[name].yaml_path)
    assert plugin_yaml.parent == paths.tasks_dir()
    docs = {split: _science_docs(split, stem_field) for split in ("train", "validation", "test")}
    manager = local_task_manager(tmp_path, plugin_yaml, f"{name}_local", docs)
    task = manager.load([f"{name}_local"])["tasks"][f"{name}_local"]
    assert task.has_training_docs() and task.has_test_docs()
    assert [d["id"] for d in task.eval_docs] == [f"test-{i}" for i in range(6)]  # the stock tasks' split
    for i, doc in enumerate(task.eval_docs):
        context, continuation = scored_pair(task, doc)
        assert context == task.doc_to_text(doc) == templates.render(prompt, doc)
        assert continuation == f" test option {i % 4} of question {i}"
    doc = task.training_docs()[3]
    assert task.doc_to_choice(doc)[task.doc_to_target(doc)] == "train option 3 of question 3"


#: benchmark -> its pool's template prefix; the default template (prompts/<prefix>.jinja) is the
#: benchmark's own task, templates 2 to 5 (prompts/<prefix>_t<k>.jinja) are <benchmark>_tailored_t<k>.
POOLS = {"boolq": "boolq", "piqa": "piqa", "arc_easy": "arc", "arc_challenge": "arc", "openbookqa": "openbookqa",
         "hellaswag": "hellaswag", "winogrande": "winogrande"}
SAMPLE_DOCS = {"boolq": {"passage": "Water boils at 100 degrees at sea level.", "question": "does water boil at 100 degrees",
                         "label": 1},
               "piqa": {"goal": "Keep bread fresh", "sol1": "Seal it in a bag.", "sol2": "Leave it open.", "label": 0},
               "arc": {"question": "Which gas do plants take in?", "choices": {"text": ["CO2", "O2"], "label": ["A", "B"]},
                       "answerKey": "A"},
               "openbookqa": {"question_stem": "The sun is the source of", "answerKey": "A",
                              "choices": {"text": ["energy", "rain"], "label": ["A", "B"]}},
               "hellaswag": {"activity": "Baking", "context": "She puts the dough in the oven. she",
                             "options": ["waits.", "swims."], "gold": 0},
               "winogrande": {"sentence": "The cup fell off the shelf because _ was wobbly.", "option1": "the cup",
                              "option2": "the shelf", "answer": "2", "filled": "The cup fell off the shelf because the shelf"}}
#: benchmarks whose template writes each choice's context (partial evaluation): it is their doc_to_choice
PARTIAL = {"winogrande"}


def _pool(benchmark: str) -> list[tuple[str, str]]:
    prefix = POOLS[benchmark]
    return [(f"{benchmark}_tailored", prefix)] + [(f"{benchmark}_tailored_t{k}", f"{prefix}_t{k}") for k in range(2, 6)]


@pytest.mark.parametrize("benchmark", sorted(POOLS))
def test_each_benchmark_has_a_pool_of_five_distinct_templates_each_a_task(task_manager, benchmark):
    from lm_eval.tasks._yaml_loader import load_yaml

    pool = _pool(benchmark)
    field = "doc_to_choice" if benchmark in PARTIAL else "doc_to_text"
    for name, template in pool:
        config = load_yaml(task_manager.task_index[name].yaml_path, recursive=True)
        assert config["task"] == name and config[field].__name__ == template
    doc = SAMPLE_DOCS[POOLS[benchmark]]
    texts = [templates.render(template, doc) for _, template in pool]
    assert len(set(texts)) == len(pool) == 5
    group = load_yaml(task_manager.task_index[f"{benchmark}_tailored_pool"].yaml_path)
    assert group["group"] in task_manager.all_groups
    assert group["task"] == [name for name, _ in pool]
    assert {m["metric"] for m in group["aggregate_metric_list"]} == {"acc", "acc_norm"} - (
        {"acc_norm"} if benchmark in ("boolq", "winogrande") else set())


def test_every_shipped_template_belongs_to_a_pool_a_generation_task_or_a_synthetic_task():
    pooled = {template for benchmark in POOLS for _, template in _pool(benchmark)}
    generation = {"piqa_gen", "arc_gen", "openbookqa_gen", "hellaswag_gen", "winogrande_gen"}  # tests/test_tasks_gen.py
    assert set(templates.available()) == pooled | generation | {"qa"}


@pytest.mark.slow
def test_a_pool_group_scores_every_template_and_aggregates_them(tiny_model_dir, hub_dir, task_manager, monkeypatch):
    import lm_eval

    monkeypatch.chdir(hub_dir)
    out = lm_eval.simple_evaluate(model="tailored", model_args=f"pretrained={tiny_model_dir},shots=0,dtype=float32",
                                  tasks=["boolq_tailored_pool"], limit=5, task_manager=task_manager, device="cpu")
    members = [name for name, _ in _pool("boolq")]
    assert set(out["results"]) == {*members, "boolq_tailored_pool"}
    accuracies = [out["results"][name]["acc,none"] for name in members]
    assert out["results"]["boolq_tailored_pool"]["acc,none"] == pytest.approx(sum(accuracies) / len(accuracies))
    assert all(len(out["samples"][name]) == 5 for name in members)
