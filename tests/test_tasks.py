"""Task registration: plugin YAMLs indexed without --include_path, user include_path wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailored_harness.core import paths
from tailored_harness.taskio import templates

PLUGIN_TASKS = ("boolq_tailored", "piqa_tailored", "synth_boolq", "synth_piqa", "synth_qa")


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
