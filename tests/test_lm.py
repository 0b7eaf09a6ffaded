"""TailoredLM: per-task routing, pass-through of tokenizer details, metadata, cache and device rules."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tailored_harness.core.errors import TailoredError
from tailored_harness.lmeval.model import METADATA_KEY, TailoredLM, route_by_task


def _requests(tasks: str):
    return [SimpleNamespace(task_name=t, args=(i,)) for i, t in enumerate(tasks)]


def test_route_by_task_groups_and_restores_order():
    requests = _requests("abacbca")
    calls, routed = [], []

    def route(task):
        routed.append(task)
        return task.upper()

    def score(key, reqs):
        calls.append((key, [r.args[0] for r in reqs]))
        return [f"{key}{r.args[0]}" for r in reqs]

    out = route_by_task(requests, route, score)
    assert out == [f"{r.task_name.upper()}{i}" for i, r in enumerate(requests)]
    assert calls == [("A", [0, 2, 6]), ("B", [1, 4]), ("C", [3, 5])]
    assert routed == ["a", "b", "c"]  # one routing decision per task


def test_tasks_sharing_a_route_are_scored_in_one_call():
    requests = _requests("abacbca")
    calls = []

    def score(key, reqs):
        calls.append([r.args[0] for r in reqs])
        return [r.args[0] for r in reqs]

    route = {"a": "x", "b": "y", "c": "x"}.get
    assert route_by_task(requests, route, score) == list(range(7))
    assert calls == [[0, 2, 3, 5, 6], [1, 4]]


def test_route_by_task_rejects_short_answers():
    with pytest.raises(RuntimeError, match="1 results for 2"):
        route_by_task(_requests("aa"), lambda task: "x", lambda key, reqs: [0])


@pytest.fixture(scope="module")
def tailored(tiny_model_dir):
    return TailoredLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32", shots=0)


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32")


def test_tokenizer_details_pass_through(tailored, hf):
    assert tailored.tokenizer_name == hf.tokenizer_name
    assert tailored.eot_token_id == hf.eot_token_id
    assert tailored.max_length == hf.max_length
    assert tailored.tokenizer.bos_token_id == hf.tokenizer.bos_token_id


def test_chat_template_passes_through(tailored, hf):
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    for lm in (tailored, hf):
        lm.tokenizer.chat_template = template
    try:
        history = [{"role": "user", "content": "Is water wet?"}]
        assert tailored.chat_template(True) == hf.chat_template(True) == template
        assert tailored.apply_chat_template(history) == hf.apply_chat_template(history)
        assert "[assistant]" in tailored.apply_chat_template(history)
    finally:
        for lm in (tailored, hf):
            lm.tokenizer.chat_template = None


def test_metadata_under_one_key(tailored, hf):
    info = tailored.get_model_info()
    plugin = info.pop(METADATA_KEY)
    assert info == hf.get_model_info()  # lm-eval's own fields are untouched
    assert plugin["spec"]["pretrained"] == tailored.spec.pretrained
    assert plugin["backend"] == "hf" and plugin["device"] == "cpu"


def test_use_cache_is_refused(tailored):
    from lm_eval.api.model import CacheHook

    hook = CacheHook(None)
    tailored.set_cache_hook(hook)  # lm-eval's no-op hook is fine
    hook.dbdict = {}
    with pytest.raises(TailoredError, match="--use_cache"):
        tailored.set_cache_hook(hook)


def test_cuda_request_falls_back_to_cpu_with_one_warning(tiny_model_dir, caplog):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: no fallback to test")
    with caplog.at_level(logging.WARNING):
        lm = TailoredLM(pretrained=str(tiny_model_dir), device="cuda:0")
    assert str(lm.device) == "cpu"
    cuda_warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "CUDA" in r.getMessage()]
    assert len(cuda_warnings) == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        ({"pretrained": "/nonexistent/model"}, "/nonexistent/model"),
        ({"pretrained": "not-on-this-machine"}, "not-on-this-machine"),
        ({"pretrained": "PLACEHOLDER", "foo": 1}, "foo=1"),
    ],
)
def test_load_errors_name_the_bad_value(tiny_model_dir, args, needle):
    args = {k: (str(tiny_model_dir) if v == "PLACEHOLDER" else v) for k, v in args.items()}
    with pytest.raises(TailoredError, match=needle):
        TailoredLM(device="cpu", **args)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(TailoredError, match="config.json"):
        TailoredLM(pretrained=str(tmp_path), device="cpu")
