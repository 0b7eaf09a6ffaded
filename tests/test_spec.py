"""ModelSpec: validation and error messages that name the bad value and the valid choices."""

from __future__ import annotations

import pytest

from tailored_harness.core.errors import TailoredError
from tailored_harness.spec.model import DTYPES, ModelSpec


def test_defaults_and_round_trip():
    spec = ModelSpec.from_model_args({"pretrained": "some/model"})
    assert spec.backend == "hf" and spec.dtype == "auto" and spec.batch_size == 1
    assert ModelSpec(**spec.to_dict()) == spec
    assert spec.fingerprint() == ModelSpec(pretrained="some/model").fingerprint()
    assert spec.fingerprint() != ModelSpec(pretrained="some/model", dtype="float32").fingerprint()


def test_spec_is_frozen():
    spec = ModelSpec(pretrained="m")
    with pytest.raises(AttributeError):
        spec.dtype = "float16"


def test_unknown_key_lists_every_valid_key():
    with pytest.raises(TailoredError) as err:
        ModelSpec.from_model_args({"pretrained": "m", "prune_rate": 0.2})
    message = str(err.value)
    assert "prune_rate=0.2" in message
    for key in ModelSpec.keys():
        assert key in message


def test_missing_pretrained():
    with pytest.raises(TailoredError, match="pretrained="):
        ModelSpec.from_model_args({"dtype": "float32"})


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("dtype", "float8", "float8"),
        ("backend", "tensorrt", "tensorrt"),
        ("device", "gpu0", "gpu0"),
        ("batch_size", 0, "batch_size=0"),
        ("batch_size", "many", "many"),
        ("max_batch_size", -1, "max_batch_size=-1"),
        ("max_length", 0, "max_length=0"),
        ("trust_remote_code", "yes", "yes"),
        ("pretrained", "", "pretrained"),
    ],
)
def test_bad_values_are_named(field, value, needle):
    args = {"pretrained": "m", field: value}
    with pytest.raises(TailoredError) as err:
        ModelSpec.from_model_args(args)
    assert needle in str(err.value)


def test_bad_dtype_lists_choices():
    with pytest.raises(TailoredError) as err:
        ModelSpec(pretrained="m", dtype="fp8")
    assert all(d in str(err.value) for d in DTYPES)


@pytest.mark.parametrize("value", [1, 16, "auto", "auto:4", "8"])
def test_batch_size_forms(value):
    spec = ModelSpec.from_model_args({"pretrained": "m", "batch_size": value})
    assert spec.batch_size == (8 if value == "8" else value)


@pytest.mark.parametrize("device", [None, "cpu", "cuda", "cuda:1", "mps"])
def test_device_forms(device):
    assert ModelSpec(pretrained="m", device=device).device == device


def test_pruning_args_build_a_prune_spec():
    spec = ModelSpec.from_model_args({"pretrained": "m", "prune_ratio": 0.2, "prune_layers": "4-29", "importance": "l2"})
    prune = spec.prune_spec()
    assert (prune.ratio, prune.layers, prune.importance, prune.samples) == (0.2, "4-29", "l2", 10)
    assert ModelSpec(pretrained="m").prune_spec() is None
    with pytest.raises(TailoredError, match="prune_ratio=1.5"):
        ModelSpec.from_model_args({"pretrained": "m", "prune_ratio": 1.5})
