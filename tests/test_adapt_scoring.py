"""Adapters in scoring: a zero adapter changes nothing, a trained one scores like lm-eval's own
``HFLM(peft=...)``, each task gets its own, and a second run trains nothing."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
import torch

from conftest import run_cli

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

TASKS = ["synth_boolq", "synth_piqa"]
FAST = "shots=8,epochs=2,lora_lr=1e-2"  # a few steps with a large rate: the adapters move visibly


def _requests(task_manager, limit=6):
    """Real loglikelihood Instances of both synth tasks, as the evaluator builds them."""
    from lm_eval.tasks import get_task_dict

    out = []
    for name, task in get_task_dict(TASKS, task_manager).items():
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        out += task.instances
    return out


def _lm(tiny_model_dir):
    from tailored_harness.lmeval.model import TailoredLM

    return TailoredLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32", shots=0)


def _attach(lm, folders: dict):
    """Load saved adapter folders into the backend the way ``prepare`` does."""
    from tailored_harness.adapt.pipeline import Adapter, load_adapters

    backend = lm.backend
    adapters = {task: Adapter(task, folder, True, {}) for task, folder in folders.items()}
    backend.peft_model, backend.adapter_names = load_adapters(backend.lm.model, adapters)
    backend.lm._model = backend.peft_model


def _adapter_folder(model, tmp_path, name, b_scale=0.0):
    """Save a LoRA adapter of the default spec for ``model``; B is zero (PEFT's init) unless ``b_scale``."""
    from peft import get_peft_model

    from tailored_harness.adapt.spec import AdaptSpec
    from tailored_harness.adapt.train import lora_config

    torch.manual_seed(0)
    peft_model = get_peft_model(model, lora_config(AdaptSpec(), model.config))
    if b_scale:
        with torch.no_grad():
            for param_name, param in peft_model.named_parameters():
                if "lora_B" in param_name:
                    param.normal_(0, b_scale)
    peft_model.save_pretrained(tmp_path / name)
    peft_model.unload()
    return tmp_path / name


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tied_tiny_model_dir"])
def test_zero_adapter_gives_identical_loglikelihoods_and_a_nonzero_one_does_not(request, model_fixture, task_manager,
                                                                                tmp_path):
    tiny_model_dir = request.getfixturevalue(model_fixture)
    requests = _requests(task_manager)
    lm = _lm(tiny_model_dir)
    plain = lm.loglikelihood(requests)
    model = lm.backend.lm.model
    _attach(lm, {"synth_boolq": _adapter_folder(model, tmp_path, "zero"),
                 "synth_piqa": _adapter_folder(model, tmp_path, "moved", b_scale=0.05)})
    adapted = lm.loglikelihood(requests)
    for request, before, after in zip(requests, plain, adapted):
        if request.task_name == "synth_boolq":
            assert after == before  # bit-identical: B = 0 adds exact zeros
        else:
            assert after[0] != before[0]  # the control: a nonzero adapter is really applied to its task
    # the base route (a task without adapter) still sees the plain model while adapters are loaded
    with lm.backend.activate(lm.backend.BASE_ROUTE) as base_lm:
        assert base_lm.loglikelihood(requests, disable_tqdm=True) == plain


def _evaluate(model, model_args, tasks, task_manager):
    import lm_eval

    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks, limit=10, device="cpu",
                                   batch_size=4, log_samples=True, task_manager=task_manager)


def _per_request(results, task):
    return {(s["doc_id"], i): (float(r[0][0]), bool(r[0][1])) for s in results["samples"][task]
            for i, r in enumerate(s["resps"])}


@pytest.mark.slow
def test_each_task_scores_with_its_own_adapter_like_lm_evals_hflm_with_peft(tiny_model_dir, task_manager):
    """Per request, within 1e-5 in float32: --model tailored (both adapters in one PEFT model, routed
    by task) against --model hf with that task's saved adapter folder as ``peft``."""
    ours = _evaluate("tailored", f"pretrained={tiny_model_dir},dtype=float32,{FAST}", TASKS, task_manager)
    adapters = ours["config"]["tailored"]["adapters"]
    assert set(adapters) == set(TASKS) and len({a["folder"] for a in adapters.values()}) == 2
    plain = _evaluate("hf", f"pretrained={tiny_model_dir},dtype=float32", TASKS, task_manager)
    for task in TASKS:
        theirs = _evaluate("hf", f"pretrained={tiny_model_dir},dtype=float32,peft={adapters[task]['folder']}", [task],
                           task_manager)
        mine, reference, base = _per_request(ours, task), _per_request(theirs, task), _per_request(plain, task)
        assert mine.keys() == reference.keys() and len(mine) >= 20
        worst = max(abs(mine[k][0] - reference[k][0]) for k in mine)
        print(f"{task}: {len(mine)} requests, max |Δ loglik| vs HFLM(peft=...) = {worst:.3g}")
        assert worst <= 1e-5 and all(mine[k][1] == reference[k][1] for k in mine)
        assert max(abs(mine[k][0] - base[k][0]) for k in mine) > 1e-3  # the adapter did change the scores


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tied_tiny_model_dir"])
def test_training_then_unloading_gives_the_model_back_bit_identical(request, model_fixture, task_manager):
    tiny_model_dir = request.getfixturevalue(model_fixture)
    from lm_eval.tasks import get_task_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.adapt.pipeline import adapt_task
    from tailored_harness.adapt.spec import AdaptSpec

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        before = model(ids).logits
    task = get_task_dict(["synth_boolq"], task_manager)["synth_boolq"]
    spec = AdaptSpec(shots=4, epochs=1, learning_rate=0.01, seed=3)
    back, adapter = adapt_task(model, tokenizer, task, "synth_boolq", spec, {"test": "unload", "model": model_fixture},
                               progress=False)
    with torch.no_grad():
        assert torch.equal(back(ids).logits, before)
    assert (back.lm_head.weight is back.model.embed_tokens.weight) is model.config.tie_word_embeddings
    report = json.loads((adapter.folder / "adaptation.json").read_text())
    assert report["split"] == "train" and len(report["documents"]) == 4 and len(report["losses"]) == 1
    assert not adapter.reused


def test_a_cache_miss_plans_each_adapter_once(tiny_model_dir, task_manager, monkeypatch):
    """What ``find_adapters`` planned before the weights loaded (examples, keys) is what trains: a
    miss plans nothing again, and the trained adapters are the ones the plans named."""
    from lm_eval.tasks import get_task_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.adapt import pipeline, train
    from tailored_harness.adapt.spec import AdaptSpec

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tasks = get_task_dict(TASKS, task_manager)
    spec, identity = AdaptSpec(shots=4, epochs=1, learning_rate=0.01, seed=5), {"test": "plans-once"}
    adapters, plans = pipeline.find_adapters(tokenizer, tasks, spec, identity, train.precision(model))
    assert adapters is None and sorted(plans) == TASKS
    real_plan = pipeline.plan_adapter
    calls = []
    monkeypatch.setattr(pipeline, "plan_adapter", lambda *a, **k: calls.append(a[2]) or real_plan(*a, **k))
    _, trained = pipeline.adapt_tasks(model, tokenizer, tasks, spec, identity, progress=False, plans=plans)
    assert calls == [] and {n: a.folder for n, a in trained.items()} == {n: p.folder for n, p in plans.items()}
    assert not any(a.reused for a in trained.values())
    again, _ = pipeline.find_adapters(tokenizer, tasks, spec, identity, train.precision(model))
    assert again is not None and all(a.reused for a in again.values()) and len(calls) == 2
    # a plan made for another precision is not used: the adapter is planned again (and found cached)
    other = {n: dataclasses.replace(p, precision="bfloat16") for n, p in plans.items()}
    _, found = pipeline.adapt_tasks(model, tokenizer, tasks, spec, identity, progress=False, plans=other)
    assert len(calls) == 4 and all(a.reused for a in found.values())


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_second_run_trains_nothing_and_a_broken_cache_entry_is_retrained(tiny_model_dir, tmp_path):
    # a seed of its own: adapters of other tests in this session's cache must not count as this run's
    args = ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={tiny_model_dir},{FAST},adapt_seed=11",
            "--tasks", ",".join(TASKS), "--limit", "4", "--output_path", str(tmp_path / "out")]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stderr.count("training adapter for") == 2
    second = run_cli(args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training adapter for" not in second.stderr and second.stderr.count("reusing cached adapter for") == 2
    results = sorted((tmp_path / "out").rglob("results_*.json"))
    adapters = json.loads(results[-1].read_text())["config"]["tailored"]["adapters"]
    assert all(a["reused"] for a in adapters.values())
    broken = adapters["synth_piqa"]["folder"]
    (pathlib.Path(broken) / "adaptation.json").unlink()  # as if a run had died before finishing it
    third = run_cli(args)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "ignoring incomplete or foreign adapter" in third.stderr
    assert third.stderr.count("training adapter for") == 1 and "reusing cached adapter for synth_boolq" in third.stderr


def test_shots_without_the_runs_tasks_is_a_clear_error(tiny_model_dir):
    from tailored_harness.core.errors import TailoredError
    from tailored_harness.lmeval.model import TailoredLM

    lm = TailoredLM(pretrained=str(tiny_model_dir), device="cpu", shots=4)
    with pytest.raises(TailoredError, match="shots=4 needs the run's tasks"):
        lm._prepare()


def test_prune_and_adapt_real_boolq_piqa_offline_with_llama2_tokenizer(hub_dir, llama2_tiny_dir, tmp_path):
    """The issue's command: prune_ratio=0.5, shots=50 on ../shared's BoolQ and PIQA; two adapters,
    each task scored with its own."""
    result = run_cli(["lm_eval", "--model", "tailored", "--model_args",
                      f"pretrained={llama2_tiny_dir},prune_ratio=0.5,shots=50,epochs=1",
                      "--tasks", "boolq,piqa", "--limit", "20", "--output_path", str(tmp_path / "out")], cwd=hub_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pruned param_first ratio=0.5" in result.stderr
    assert "training adapter for boolq on 50 shots of its train split" in result.stderr
    assert "training adapter for piqa on 50 shots of its train split" in result.stderr
    (path,) = (tmp_path / "out").rglob("results_*.json")
    tailored = json.loads(path.read_text())["config"]["tailored"]
    adapters = tailored["adapters"]
    assert set(adapters) == {"boolq", "piqa"} and adapters["boolq"]["folder"] != adapters["piqa"]["folder"]
    assert all(a["shots"] == 50 and a["split"] == "train" for a in adapters.values())
    assert tailored["pruning"]["parameters_after"] < tailored["pruning"]["parameters_before"]


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_tailored_adapt_writes_the_adapters_lm_eval_then_reuses(tiny_model_dir):
    made = run_cli(["tailored", "adapt", "--model", str(tiny_model_dir), "--tasks", "synth_boolq", "--shots", "8",
                    "--epochs", "1", "--seed", "7", "--quiet"])
    assert made.returncode == 0, made.stderr[-3000:]
    task, folder = made.stdout.strip().split("\t")
    assert task == "synth_boolq" and (pathlib.Path(folder) / "adapter_config.json").is_file()
    scored = run_cli(["lm_eval", "--model", "tailored", "--model_args",
                      f"pretrained={tiny_model_dir},shots=8,epochs=1,adapt_seed=7", "--tasks", "synth_boolq", "--limit", "2"])
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"reusing cached adapter for synth_boolq: {folder}" in scored.stderr
    refused = run_cli(["tailored", "adapt", "--model", str(tiny_model_dir), "--tasks", "synth_boolq", "--shots", "0"])
    assert refused.returncode == 2 and "--shots 0 trains nothing" in refused.stderr


@pytest.mark.slow  # tailored and lm_eval in subprocesses
def test_tailored_adapt_trains_on_a_pruned_checkpoint_without_remote_code(tiny_model_dir):
    """``tailored prune`` then ``tailored adapt`` on its checkpoint (per-layer widths, no
    ``--trust-remote-code``) gives the adapter a pruned ``lm_eval --model tailored`` run then reuses.
    Calibration rows of 128 tokens hold whole synthetic documents (75 to 92 tokens), so they are padded,
    and the pad token both commands load the tokenizer with names the checkpoint."""
    pruned = run_cli(["tailored", "prune", "--model", str(tiny_model_dir), "--ratio", "0.5", "--layers", "1-1",
                      "--seq-len", "128", "--tasks", "synth_boolq", "--quiet"])  # one layer narrower: per-layer widths
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    made = run_cli(["tailored", "adapt", "--model", pruned.stdout.strip(), "--tasks", "synth_boolq", "--shots", "8",
                    "--epochs", "1", "--quiet"])
    assert made.returncode == 0, made.stderr[-3000:]
    task, folder = made.stdout.strip().split("\t")
    assert json.loads((pathlib.Path(pruned.stdout.strip()) / "config.json").read_text())["model_type"] != "llama"
    scored = run_cli(["lm_eval", "--model", "tailored", "--model_args",
                      f"pretrained={tiny_model_dir},prune_ratio=0.5,prune_layers=1-1,calibration_len=128,shots=8,epochs=1",
                      "--tasks", "synth_boolq",
                      "--limit", "2"])
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"reusing cached adapter for synth_boolq: {folder}" in scored.stderr, "\n".join(
        line for line in scored.stderr.splitlines() if "tailored_harness" in line)


def test_training_is_deterministic_for_a_seed(tiny_model_dir, task_manager):
    """Two trainings with one seed give bit-identical LoRA weights; another seed gives others."""
    from lm_eval.tasks import get_task_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.adapt import shots
    from tailored_harness.adapt.spec import AdaptSpec
    from tailored_harness.adapt.train import train_adapter

    task = get_task_dict(["synth_piqa"], task_manager)["synth_piqa"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    def lora_weights(seed):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        spec = AdaptSpec(shots=6, epochs=2, learning_rate=0.01, seed=seed)
        _, _, pairs = shots.examples(task, "synth_piqa", spec.shots, spec.seed, spec.draw)
        peft_model, losses = train_adapter(model, tokenizer, pairs, spec, progress=False)
        return {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n}, losses

    first, first_losses = lora_weights(1)
    again, again_losses = lora_weights(1)
    other, _ = lora_weights(2)
    assert first.keys() == again.keys() and len(first) == 2 * 7 * 2  # A and B, 7 projections, 2 layers
    assert all(torch.equal(first[n], again[n]) for n in first) and first_losses == again_losses
    assert not all(torch.equal(first[n], other[n]) for n in first)
