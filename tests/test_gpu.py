"""The pipeline on a CUDA device (marker ``gpu``; skipped where torch sees none, as on CI).

Every other test runs on the CPU, so a tensor left on the wrong device, a dtype the GPU path alone
takes (adapters train under bfloat16 autocast there) or a buffer the meta-device rebuild loses would
pass them all and break a user's first GPU run. Here, for a tiny random model of every family on the
GPU: ratio 0 is bit-identical, the pruned model equals the masked dense one, and ``--model tailored``
prunes, trains its per-task adapters and scores with them the same log-likelihoods as lm-eval's own
``hf`` model from the pruned checkpoint with each task's saved adapter, on the same device.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from lm_helpers import evaluate, per_request
from numeric import FLOAT32_REL, assert_close_to_scale
from prune_helpers import FAMILIES, calibration_batch, logits, probe, tiny_family
from tailored_harness.adapt import store
from tailored_harness.prune import PruneSpec, prune_model
from tailored_harness.prune.plan import mask

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")]

DEVICE = "cuda"
UNITS = ["kv_group", "query_head"]
TASKS = ["synth_boolq", "synth_piqa"]
FAST = "shots=8,epochs=2,lora_lr=1e-2"  # a few steps with a large rate: the adapters move visibly
PRUNE = "prune_ratio=0.5,attention_unit=query_head,prune_ranking=global,importance=param_first"


def _on_device(model):
    return model.to(DEVICE)


def _logits(model):
    return logits(model, probe().to(DEVICE)).cpu()


@pytest.mark.parametrize("family", FAMILIES)
def test_ratio_zero_is_bit_identical_on_the_gpu(family):
    model = _on_device(tiny_family(family))
    before = _logits(model)
    pruned, _, counts = prune_model(model, PruneSpec(ratio=0.0, importance="param_first", attention_unit="query_head"),
                                    calibration_batch(), progress=False)
    assert next(pruned.parameters()).device.type == DEVICE
    assert torch.equal(_logits(pruned), before)
    assert counts["before"] == counts["after"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("unit", UNITS)
def test_pruned_equals_masked_dense_on_the_gpu(family, unit):
    dense = _on_device(tiny_family(family))
    reference = copy.deepcopy(dense)
    spec = PruneSpec(ratio=0.5, importance="param_first", attention_unit=unit, ranking="global")
    pruned, plan, counts = prune_model(dense, spec, calibration_batch(), progress=False)
    mask(reference, plan)
    assert {p.device.type for p in pruned.parameters()} == {DEVICE}
    assert {b.device.type for b in pruned.buffers()} <= {DEVICE}  # rotary frequencies came along
    assert_close_to_scale(_logits(pruned), _logits(reference), what=f"{family} on {DEVICE}: pruned against masked")
    assert counts["after"]["total"] < counts["before"]["total"]


def _evaluate(model, model_args, tasks, task_manager):
    return evaluate(model, model_args, tasks, task_manager, device=DEVICE)


def _largest_gap(mine, reference):
    assert mine.keys() == reference.keys() and len(mine) >= 16
    return max(abs(mine[k] - reference[k]) for k in mine)


@pytest.mark.parametrize("family", FAMILIES)
def test_tailored_on_the_gpu_scores_like_lm_evals_hf(family, family_dirs, task_manager):
    """Dense and unadapted, then pruned and adapted (trained on the GPU, bfloat16 autocast): the same
    log-likelihood per request as ``hf`` on the base folder, then on the checkpoint with each adapter."""
    folder = family_dirs[family]
    dense = _evaluate("tailored", f"pretrained={folder},dtype=float32,shots=0", TASKS, task_manager)
    plain = _evaluate("hf", f"pretrained={folder},dtype=float32", TASKS, task_manager)
    for task in TASKS:
        assert _largest_gap(per_request(dense, task), per_request(plain, task)) <= 1e-6

    ours = _evaluate("tailored", f"pretrained={folder},dtype=float32,{PRUNE},{FAST}", TASKS, task_manager)
    info = ours["config"]["tailored"]
    pruned_dir, adapters = info["pruning"]["checkpoint"], info["adapters"]
    assert set(adapters) == set(TASKS)
    for task in TASKS:
        assert store.read_report(adapters[task]["folder"])["precision"] == "cuda:bfloat16-autocast"
        theirs = _evaluate("hf", f"pretrained={pruned_dir},dtype=float32,peft={adapters[task]['folder']}", [task],
                           task_manager)
        mine = per_request(ours, task)
        assert _largest_gap(mine, per_request(theirs, task)) <= 1e-4
        assert _largest_gap(mine, per_request(plain, task)) > 1e-3  # pruning and the adapter did change the scores


@pytest.mark.parametrize("family", FAMILIES)
def test_qlora_on_the_gpu_scores_like_the_merged_dequantized_twin(family, family_dirs, task_manager):
    """``adapt_quant=nf4`` on the GPU (bitsandbytes' CUDA kernels, float32 compute): adapters trained
    and scored on the 4-bit pruned checkpoint score as ``hf`` scores the dequantized checkpoint with the
    adapter merged (what ``backend=vllm`` serves), within float32 rounding relative to the scores'
    scale (tests/numeric.py: other kernels sum in another order; Gemma's first H200 run differed by
    4.7e-4 on log-likelihoods near -38, the other families by under 1e-4), and ten times closer to it
    than the twin without the adapter is: the comparison tells the adapter apart from rounding."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    from tailored_harness.adapt.merge import dequantized_base, merge_adapter
    from tailored_harness.adapt.pipeline import model_identity
    from tailored_harness.adapt.quant import QuantSpec

    folder = family_dirs[family]
    spec = QuantSpec(scheme="nf4", compute_dtype="float32")
    ours = _evaluate("tailored", f"pretrained={folder},dtype=float32,{PRUNE},{FAST},adapt_quant=nf4,"
                                 "adapt_quant_compute=float32", TASKS, task_manager)
    info = ours["config"]["tailored"]
    assert info["adapt_quant"] == {**spec.to_dict(), "scored_on": "4-bit"}
    checkpoint = info["pruning"]["checkpoint"]
    twin, _ = dequantized_base(checkpoint, spec, model_identity(checkpoint), str(folder), "float32")
    bare = _evaluate("hf", f"pretrained={twin},dtype=float32", TASKS, task_manager)
    for task in TASKS:
        adapter = info["adapters"][task]
        assert store.read_report(adapter["folder"])["precision"] == "cuda:nf4+dq/float32"
        merged, _ = merge_adapter(str(twin), adapter["folder"], str(folder))
        theirs = per_request(_evaluate("hf", f"pretrained={merged},dtype=float32", [task], task_manager), task)
        gap = _largest_gap(per_request(ours, task), theirs)
        scale = max(abs(value) for value in theirs.values())
        assert gap <= FLOAT32_REL * scale, f"{task}: {gap:.3g} > {FLOAT32_REL:g} x {scale:.3g}"
        assert _largest_gap(theirs, per_request(bare, task)) > 10 * gap


def test_qlora_on_the_gpu_computes_in_bfloat16_unless_told(family_dirs, task_manager):
    """``adapt_quant_compute=auto`` is bfloat16 on CUDA: so recorded, in the run and the adapter."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    ours = _evaluate("tailored", f"pretrained={family_dirs['llama']},dtype=float32,{FAST},adapt_quant=nf4",
                     TASKS[:1], task_manager)
    info = ours["config"]["tailored"]
    assert info["adapt_quant"]["compute_dtype"] == "bfloat16"
    assert store.read_report(info["adapters"][TASKS[0]]["folder"])["precision"] == "cuda:nf4+dq/bfloat16"
    scores = list(per_request(ours, TASKS[0]).values())
    assert len(scores) >= 16 and all(math.isfinite(s) and s < 0 for s in scores)
