"""The generation variants: the model writes its answer (a word or a choice's label) and is scored by
exact match after the documented normalisation (first run of letters and digits, case ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailored_harness.core import paths
from tailored_harness.taskio import templates

#: generation task -> (its template, the field holding the question, the gold answer of a document)
GEN_TASKS = {
    "boolq_gen_tailored": ("boolq", "question", lambda doc: ["no", "yes"][doc["label"]]),
    "piqa_gen_tailored": ("piqa_gen", "goal", lambda doc: ["A", "B"][doc["label"]]),
    "arc_easy_gen_tailored": ("arc_gen", "question", lambda doc: doc["answerKey"]),
    "arc_challenge_gen_tailored": ("arc_gen", "question", lambda doc: doc["answerKey"]),
    "openbookqa_gen_tailored": ("openbookqa_gen", "question_stem", lambda doc: doc["answerKey"].strip()),
    "hellaswag_gen_tailored": ("hellaswag_gen", "activity", lambda doc: "ABCD"[int(doc["label"])]),
    "winogrande_gen_tailored": ("winogrande_gen", "sentence", lambda doc: doc["answer"]),
}
#: labels a listing template writes before each option, where they are not the document's own
LISTED = {"piqa": ["A", "B"], "hellaswag": ["A", "B", "C", "D"], "winogrande": ["1", "2"]}


def _docs(name: str, split: str, n: int = 6) -> list[dict]:
    """Documents in the hub schema of the task's dataset (aps/super_glue boolq, baber/piqa,
    allenai/ai2_arc, allenai/openbookqa)."""
    docs = []
    for i in range(n):
        if name.startswith("boolq"):
            docs.append({"idx": i, "passage": f"{split} passage {i}.", "question": f"{split} {i} is even",
                         "label": int(i % 2 == 0)})
        elif name.startswith("hellaswag"):
            docs.append({"ind": i, "activity_label": f"{split} activity {i}", "ctx_a": f"{split} context {i}.",
                         "ctx_b": "she", "endings": [f"ending {j} of {i}." for j in range(4)], "label": str(i % 4)})
        elif name.startswith("winogrande"):
            docs.append({"qID": f"{split}-{i}", "sentence": f"{split} sentence {i}: _ won the race.",
                         "option1": f"first {i}", "option2": f"second {i}", "answer": str(i % 2 + 1)})
        elif name.startswith("piqa"):
            docs.append({"goal": f"{split} goal {i}", "sol1": f"first way {i}", "sol2": f"second way {i}",
                         "label": i % 2})
        else:
            labels = ["1", "2", "3", "4"] if split == "test" else ["A", "B", "C", "D"]  # ARC has both kinds
            stem = "question_stem" if name.startswith("openbookqa") else "question"
            docs.append({"id": f"{split}-{i}", stem: f"{split} question {i}?",
                         "choices": {"text": [f"option {j} of {i}" for j in range(4)], "label": labels},
                         "answerKey": (" " if stem == "question_stem" else "") + labels[i % 4]})
    return docs


def _local_task(name: str, task_manager, tmp_path: Path):
    """The plugin's YAML with only the dataset swapped for local files of the hub schema."""
    from conftest import local_task_manager

    plugin_yaml = Path(task_manager.task_index[name].yaml_path)
    assert plugin_yaml.parent == paths.tasks_dir()
    docs = {split: _docs(name, split) for split in ("train", "validation", "test")}
    manager = local_task_manager(tmp_path, plugin_yaml, f"{name}_local", docs)
    return manager.load([f"{name}_local"])["tasks"][f"{name}_local"]


class AnsweringLM:
    """An lm-eval LM that answers every generation request from the document: the gold answer in
    another case with words after it (``right``), another choice's answer (``wrong``), or nothing
    usable (``invalid``)."""

    def __new__(cls, mode: str, gold):
        from lm_eval.api.model import LM

        class _LM(LM):
            def generate_until(self, requests, disable_tqdm=False):
                out = []
                for request in requests:
                    answer = gold(request.doc)
                    if mode == "wrong":
                        answer = {"yes": "no", "no": "yes", "A": "B", "B": "A", "1": "2", "2": "1", "3": "4",
                                  "4": "3", "C": "D", "D": "C"}[answer]
                    out.append({"right": f" {answer.swapcase()}. Because the text says so",
                                "wrong": f" {answer}", "invalid": " ..."}[mode])
                return out

            def loglikelihood(self, requests, disable_tqdm=False):
                raise AssertionError("a generation task asked for log-likelihoods")

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                raise AssertionError("a generation task asked for rolling log-likelihoods")

        return _LM()


@pytest.mark.parametrize("name", sorted(GEN_TASKS))
def test_generation_task_writes_its_prompt_and_scores_exact_match_after_normalising(name, task_manager, tmp_path):
    import lm_eval

    from tailored_harness.taskio.task_format import scored_pair

    template, field, gold = GEN_TASKS[name]
    task = _local_task(name, task_manager, tmp_path)
    assert task.OUTPUT_TYPE == "generate_until" and task.config.generation_kwargs["until"] == ["\n"]
    scored = "test" if task.has_test_docs() else "validation"  # the stock tasks' evaluated split
    assert task.config.test_split == (None if name.startswith(("boolq", "piqa", "hellaswag", "winogrande")) else "test")
    for doc in task.eval_docs:
        assert doc[field].startswith(scored)
        context, continuation = scored_pair(task, doc)  # what the adapter trains on
        assert context == task.doc_to_text(doc) == templates.render(template, doc)
        assert continuation == f" {gold(doc)}"
        if template.endswith("_gen"):  # every option is listed with its label
            labels = doc["choices"]["label"] if "choices" in doc else LISTED[name.split("_")[0]]
            assert all(f"\n{label}. " in context for label in labels)
    local = f"{name}_local"
    for mode, expected in (("right", 1.0), ("wrong", 0.0), ("invalid", 0.0)):
        out = lm_eval.simple_evaluate(model=AnsweringLM(mode, gold), tasks=[task], log_samples=True)
        assert out["results"][local]["exact_match,first_word"] == expected, mode
        if mode == "invalid":
            assert {s["filtered_resps"][0] for s in out["samples"][local]} == {"[invalid]"}


def test_generation_tasks_are_listed_with_their_tag(task_manager):
    for name in GEN_TASKS:
        assert Path(task_manager.task_index[name].yaml_path).parent == paths.tasks_dir()
    assert "tailored_gen" in task_manager.all_tags
