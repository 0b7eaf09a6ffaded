"""Pruned checkpoints: ordinary Hugging Face folders, cached by the fingerprint of (base model, spec).

A folder holds the weights and config (the family's stock type, such as ``llama``, or its
``tailored_<family>`` type; the latter with a copy of ``modeling_tailored.py`` and an ``auto_map``, so
``trust_remote_code=True`` loads it where this plugin is not installed), the tokenizer, and ``pruning.json``: the spec, the fingerprint, the
base model's identity, parameter counts before and after (total and per layer) and the kept unit
indices of every pruned layer. Folders are written under a temporary name and renamed, so an
interrupted run leaves nothing that a later run takes as finished.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from tailored_harness.core import artifacts
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import atomic_dir, cache_dir, file_sha256, is_finished, read_json

logger = logging.getLogger(__name__)

REPORT_FILE = "pruning.json"
PRUNE_VERSION = 2  # bump when the pruning code changes what a spec produces (2: vectorize as LLM-Pruner's)
MODELING_FILE = "modeling_tailored.py"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def base_identity(pretrained: str, revision: str = "main") -> dict[str, Any]:
    """What the base model is: a local folder by content (config and weight hashes), a hub model by
    its id and the commit ``revision`` resolves to now (:func:`tailored_harness.core.artifacts.hub_commit`)."""
    path = Path(pretrained).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES))
        return {"local": {p.name: file_sha256(p) for p in files}}
    return {"hub": pretrained, "commit": artifacts.hub_commit(pretrained, revision)}


def fingerprint(base: dict[str, Any], spec_dict: dict[str, Any], calibration: str | None) -> str:
    """The pruned checkpoint's name: everything that decides its weights, library versions included."""
    return artifacts.fingerprint("pruned", PRUNE_VERSION, {"base": base, "spec": spec_dict, "calibration": calibration},
                                 ("torch", "transformers"))


def pruned_dir(key: str) -> Path:
    return cache_dir() / "pruned" / key


def read_report(folder: str | Path) -> dict[str, Any] | None:
    return read_json(Path(folder) / REPORT_FILE)


def is_complete(folder: str | Path, key: str) -> bool:
    """True when ``folder`` holds a finished checkpoint of fingerprint ``key``."""
    return is_finished(folder, REPORT_FILE, key, ("config.json", "*.safetensors"), "pruned checkpoint")


def save(model, tokenizer, folder: str | Path, report: dict[str, Any]) -> Path:
    """Write ``model`` (and ``tokenizer``, if any) with ``report`` atomically to ``folder``."""
    from tailored_harness.models import modeling_tailored

    folder = Path(folder)
    with atomic_dir(folder, seal=True) as tmp:
        family = modeling_tailored.MODEL_TYPES.get(model.config.model_type)
        if family is not None:  # per-layer widths: ship the model code, so no plugin is needed to load it
            model.config.auto_map = modeling_tailored.auto_map(family)
            shutil.copyfile(modeling_tailored.__file__, tmp / MODELING_FILE)
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1, sort_keys=True))
    return folder


def describe(report: dict[str, Any]) -> str:
    """Human summary of a pruning report: totals, then one line per layer whose widths changed."""
    before, after = report["parameters"]["before"], report["parameters"]["after"]
    lines = [f"pruned {report['spec']['importance']} ratio={report['spec']['ratio']} layers={report['spec']['layers']}: "
             f"{before['total']:,} -> {after['total']:,} parameters ({100.0 * after['total'] / before['total']:.1f}%)"]
    for i, (b, a) in enumerate(zip(before["layers"], after["layers"])):
        if b != a:
            # query heads pruned within their groups (the KV groups stay): say so, the groups' counts do not
            heads = (f", query heads {b['query_heads']} -> {a['query_heads']}"
                     if b["attention"] == a["attention"] and b.get("query_heads") != a.get("query_heads") else "")
            lines.append(f"  layer {i}: kv groups {b['attention']} -> {a['attention']}{heads}, mlp {b['mlp']} -> "
                         f"{a['mlp']}, parameters {b['parameters']:,} -> {a['parameters']:,}")
    return "\n".join(lines)


def require_safe_out(out: str | Path) -> Path:
    """An explicit output folder must not be an unrelated existing folder (we never delete user data)."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()) and read_report(out) is None:
        raise TailoredError(f"--out {str(out)!r} exists and is not a pruned checkpoint; choose an empty or new folder")
    return out
