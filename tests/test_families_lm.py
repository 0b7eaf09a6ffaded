"""Every supported family end to end through lm-eval, on a tiny random model of its own: pruned
(per-layer widths) and adapted per task by ``--model tailored``, then scored again by lm-eval's own
``hf`` model from the pruned checkpoint with each task's saved adapter: the same log-likelihood per
request. Unpruned and unadapted, ``--model tailored`` equals ``--model hf`` on the base folder."""

from __future__ import annotations

import pytest

from tailored_harness.suite import tiny

pytestmark = [pytest.mark.numeric, pytest.mark.slow]

FAMILIES = tuple(tiny.FAMILY_CONFIGS)
TASKS = ["synth_boolq", "synth_piqa"]
FAST = "shots=8,epochs=2,lora_lr=1e-2"  # a few steps with a large rate: the adapters move visibly
PRUNE = "prune_ratio=0.5,attention_unit=query_head,prune_ranking=global,importance=param_first"


def _evaluate(model, model_args, tasks, task_manager):
    import lm_eval

    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks, limit=8, device="cpu",
                                   batch_size=4, log_samples=True, task_manager=task_manager)


def _per_request(results, task):
    return {(s["doc_id"], i): (float(r[0][0]), bool(r[0][1])) for s in results["samples"][task]
            for i, r in enumerate(s["resps"])}


@pytest.mark.parametrize("family", FAMILIES)
def test_dense_tailored_equals_lm_evals_hf(family, family_dirs, task_manager):
    folder = family_dirs[family]
    ours = _evaluate("tailored", f"pretrained={folder},dtype=float32,shots=0", TASKS, task_manager)
    theirs = _evaluate("hf", f"pretrained={folder},dtype=float32", TASKS, task_manager)
    for task in TASKS:
        mine, reference = _per_request(ours, task), _per_request(theirs, task)
        assert mine.keys() == reference.keys() and len(mine) >= 16
        assert max(abs(mine[k][0] - reference[k][0]) for k in mine) <= 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_and_adapted_scores_like_hf_on_the_checkpoint_with_each_adapter(family, family_dirs, task_manager):
    folder = family_dirs[family]
    ours = _evaluate("tailored", f"pretrained={folder},dtype=float32,{PRUNE},{FAST}", TASKS, task_manager)
    info = ours["config"]["tailored"]
    pruned_dir, adapters = info["pruning"]["checkpoint"], info["adapters"]
    assert info["pruning"]["model_type"] == f"tailored_{family}"
    assert set(adapters) == set(TASKS)
    plain = _evaluate("hf", f"pretrained={pruned_dir},dtype=float32", TASKS, task_manager)
    for task in TASKS:
        theirs = _evaluate("hf", f"pretrained={pruned_dir},dtype=float32,peft={adapters[task]['folder']}", [task],
                           task_manager)
        mine, reference, base = _per_request(ours, task), _per_request(theirs, task), _per_request(plain, task)
        assert mine.keys() == reference.keys() and len(mine) >= 16
        assert max(abs(mine[k][0] - reference[k][0]) for k in mine) <= 1e-5
        assert max(abs(mine[k][0] - base[k][0]) for k in mine) > 1e-3  # the adapter did change the scores
