"""Cache keys (core/artifacts.py): one fingerprint over a declared recipe, a hub model by its commit,
a tokenizer by content."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tailored_harness.core import artifacts

COMMITS = ("a" * 40, "b" * 40)

KEYS_OF_A_HUB_MODEL = """
import json
from tailored_harness.adapt import store
from tailored_harness.adapt.pipeline import model_identity
from tailored_harness.prune.checkpoint import base_identity, fingerprint
from tailored_harness.prune.spec import PruneSpec

base = base_identity("org/model", "main")
print(json.dumps({"commit": base["commit"], "pruned": fingerprint(base, PruneSpec(ratio=0.2).to_dict(), None),
                  "adapter": store.fingerprint(model_identity("org/model"), "boolq", "config", "examples", {}, "tok")}))
"""


def _hub_cache(root: Path, commit: str) -> None:
    """A hub cache (``HF_HUB_CACHE`` layout) in which ``org/model``'s ``main`` is ``commit``."""
    repo = root / "models--org--model"
    (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


def _keys(hub: Path) -> dict:
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", KEYS_OF_A_HUB_MODEL], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_hub_model_is_named_by_the_commit_its_revision_resolves_to(tmp_path):
    """After an upstream push (``main`` moves to another commit) the pruned checkpoint and the adapters
    get new names, instead of the old ones being reused for other weights."""
    hub = tmp_path / "hub"
    _hub_cache(hub, COMMITS[0])
    before = _keys(hub)
    _hub_cache(hub, COMMITS[1])
    after = _keys(hub)
    assert (before["commit"], after["commit"]) == COMMITS
    assert before["pruned"] != after["pruned"] and before["adapter"] != after["adapter"]
    _hub_cache(hub, COMMITS[0])
    assert _keys(hub) == before  # and the same commit finds the same entries again


def test_a_commit_is_its_own_resolution():
    assert artifacts.hub_commit("org/model", COMMITS[1]) == COMMITS[1]


def test_the_tokenizer_is_identified_by_what_it_does(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    first, moved = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(copy)
    assert artifacts.tokenizer_digest(first) == artifacts.tokenizer_digest(moved)  # not by its path
    other = AutoTokenizer.from_pretrained(tiny_model_dir)
    other.add_tokens(["<new-token>"])
    assert artifacts.tokenizer_digest(other) != artifacts.tokenizer_digest(moved)
    # what lm-eval sets at run time on the same files (pad token, padding side) is not the tokenizer's identity
    from lm_eval.models.utils import configure_pad_token
    from transformers import AutoConfig

    served = configure_pad_token(AutoTokenizer.from_pretrained(tiny_model_dir),
                                 model_config=AutoConfig.from_pretrained(tiny_model_dir))
    served.padding_side = "left" if first.padding_side == "right" else "right"
    assert served.pad_token is not None and artifacts.tokenizer_digest(served) == artifacts.tokenizer_digest(first)


def test_a_different_tokenizer_gives_a_different_adapter(tiny_model_dir, local_boolq):
    """The shots are text; the tokenizer decides what trains, so it is part of the adapter's key."""
    from transformers import AutoTokenizer

    from tailored_harness.adapt import methods
    from tailored_harness.adapt.pipeline import model_identity, plan_adapter
    from tailored_harness.adapt.spec import AdaptSpec
    from test_adapt_tell import local_boolq_tasks

    task = next(iter(local_boolq_tasks(local_boolq).values()))
    spec, identity = AdaptSpec(shots=6, epochs=1), model_identity(str(tiny_model_dir))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    first = plan_adapter(tokenizer, task, "boolq_tailored", spec, identity, "cpu:float32", methods.SFT())
    again = plan_adapter(AutoTokenizer.from_pretrained(tiny_model_dir), task, "boolq_tailored", spec, identity,
                         "cpu:float32", methods.SFT())
    tokenizer.add_tokens(["<new-token>"])
    tokenizer._tailored_digest = None  # the memo is per object; this one changed after it was hashed
    changed = plan_adapter(tokenizer, task, "boolq_tailored", spec, identity, "cpu:float32", methods.SFT())
    assert first.key == again.key and changed.key != first.key


def test_every_part_of_a_recipe_names_the_entry():
    base = artifacts.fingerprint("pruned", 1, {"spec": {"ratio": 0.2}}, ("torch",))
    assert base == artifacts.fingerprint("pruned", 1, {"spec": {"ratio": 0.2}}, ("torch",))
    assert len({base, artifacts.fingerprint("adapters", 1, {"spec": {"ratio": 0.2}}, ("torch",)),
                artifacts.fingerprint("pruned", 2, {"spec": {"ratio": 0.2}}, ("torch",)),
                artifacts.fingerprint("pruned", 1, {"spec": {"ratio": 0.5}}, ("torch",)),
                artifacts.fingerprint("pruned", 1, {"spec": {"ratio": 0.2}}, ())}) == 5
    assert len(base) == artifacts.KEY_LENGTH and artifacts.digest({"b": 1, "a": 2}) == artifacts.digest({"a": 2, "b": 1})


@pytest.mark.parametrize("module,needle", [
    ("tailored_harness/prune/checkpoint.py", "hashlib"), ("tailored_harness/adapt/store.py", "hashlib"),
    ("tailored_harness/adapt/merge.py", "hashlib"), ("tailored_harness/models/gguf_import.py", "hashlib"),
    ("tailored_harness/select/per_input.py", "hexdigest()[:16]"), ("tailored_harness/select/best.py", "hashlib")])
def test_cache_keys_are_not_hand_rolled(module, needle):
    """Every cache kind is named through core.artifacts (per_input still hashes request contexts)."""
    text = (Path(__file__).resolve().parents[1] / module).read_text()
    assert needle not in text
