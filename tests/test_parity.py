"""Identity parity: --model tailored scores exactly like lm-eval's own --model hf on the same folder."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

LIMIT = 200
TASKS = ["boolq", "piqa"]


def _evaluate(model: str, model_dir, task_manager, batch_size):
    import lm_eval

    return lm_eval.simple_evaluate(
        model=model,
        model_args=f"pretrained={model_dir},dtype=float32" + (",shots=0" if model == "tailored" else ""),
        tasks=TASKS,
        limit=LIMIT,
        device="cpu",
        batch_size=batch_size,
        log_samples=True,
        task_manager=task_manager,
    )


def _per_request(results, task):
    """{(doc_id, choice index): (loglikelihood, is_greedy)} from logged samples."""
    out = {}
    for sample in results["samples"][task]:
        for index, resp in enumerate(sample["resps"]):
            loglik, greedy = resp[0]
            out[(sample["doc_id"], index)] = (float(loglik), bool(greedy))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 8])
def test_tailored_equals_hf_on_stock_tasks(tiny_model_dir, hub_dir, task_manager, monkeypatch, batch_size):
    monkeypatch.chdir(hub_dir)
    tailored = _evaluate("tailored", tiny_model_dir, task_manager, batch_size)
    hf = _evaluate("hf", tiny_model_dir, task_manager, batch_size)
    assert tailored["config"]["tailored"]["spec"]["pretrained"] == str(tiny_model_dir)
    for task in TASKS:
        ours, theirs = _per_request(tailored, task), _per_request(hf, task)
        assert len(ours) >= 2 * LIMIT and ours.keys() == theirs.keys()
        worst = max(abs(ours[k][0] - theirs[k][0]) for k in ours)
        print(f"{task} batch_size={batch_size}: {len(ours)} requests, max |Δ loglik| = {worst:.3g}")
        assert worst <= 1e-6, f"{task}: max |Δ loglik| = {worst}"
        assert all(ours[k][1] == theirs[k][1] for k in ours), f"{task}: is_greedy differs"
        for metric, value in hf["results"][task].items():
            if metric != "alias":
                assert tailored["results"][task][metric] == value, f"{task} {metric}"


def test_the_plugin_loads_a_tokenizer_with_the_pad_token_lm_evals_hf_gives_it(tiny_model_dir):
    """``tailored prune``/``adapt`` pad calibration and training rows with the pad token ``lm_eval``'s
    own ``hf`` model sets on a tokenizer that has none, so both name (and build) the same cache entries.
    The tiny model's tokenizer, trained here or LLaMA-2's, has no pad token of its own."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from tailored_harness.taskio.task_format import load_tokenizer, pad_id

    assert AutoTokenizer.from_pretrained(tiny_model_dir).pad_token_id is None
    hf = HFLM(pretrained=str(tiny_model_dir), batch_size=1, device="cpu")
    ours = load_tokenizer(str(tiny_model_dir))
    assert ours.pad_token_id == hf.tokenizer.pad_token_id is not None
    assert pad_id(ours) == pad_id(hf.tokenizer) != ours.eos_token_id
