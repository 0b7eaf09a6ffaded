"""Adapters on disk: ordinary PEFT folders, cached by the fingerprint of what decides their weights.

A folder ``$TAILORED_HARNESS_CACHE/adapters/<fingerprint>/`` holds ``adapter_config.json``,
``adapter_model.safetensors`` and ``adaptation.json`` (the spec, the task, the split and the
indices of the documents it trained on, the loss of every step). It is written to a temporary
sibling and renamed, so an interrupted training leaves nothing a later run could take as finished;
a folder whose ``adaptation.json`` is missing, unreadable or of another fingerprint is rebuilt.
Load one anywhere with ``PeftModel.from_pretrained(base, folder)`` or lm-eval's
``--model hf --model_args pretrained=<model>,peft=<folder>``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from tailored_harness.core import artifacts
from tailored_harness.core.paths import atomic_dir, cache_dir, is_finished, read_json

logger = logging.getLogger(__name__)

REPORT_FILE = "adaptation.json"
ADAPT_VERSION = 2  # bump when the training code changes what a spec builds (2: length-grouped micro-batches)


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: Config keys the evaluator sets per run, not per task: ``metadata`` (lm-eval copies the run's
#: ``model_args`` there) and ``num_fewshot`` (set from ``--num_fewshot``; adapters train zero-shot).
RUN_SETTINGS = ("metadata", "num_fewshot")


def task_config_hash(task) -> str:
    """Hash of the task's configuration as lm-eval serialises it (functions by their source),
    without the :data:`RUN_SETTINGS`, so ``tailored adapt`` and ``lm_eval`` name the same adapter.

    A function without source (built at run time) serialises as ``<function f at 0x...>``; the
    address changes every run, so it is dropped. What such a function writes is covered anyway by
    :func:`examples_digest`, the hash of the very text trained on.
    """
    config = dict(task.config.to_dict() if hasattr(task.config, "to_dict") else vars(task.config))
    for run_setting in RUN_SETTINGS:
        config.pop(run_setting, None)
    return artifacts.digest(ADDRESS.sub("", artifacts.canonical(config)))


def examples_digest(pairs: list[tuple[str, str]]) -> str:
    """Hash of the exact training text (context, continuation) pairs, in order."""
    return artifacts.digest(pairs)


def fingerprint(model_identity: dict[str, Any], task_name: str, config_hash: str, examples: str,
                spec_dict: dict[str, Any], tokenizer: str) -> str:
    """The adapter's name: (model, task name and config, the shots' text, the tokenizer that encodes
    it (:func:`~tailored_harness.core.artifacts.tokenizer_digest`), the adaptation spec, code and
    library versions)."""
    recipe = {"model": model_identity, "task": task_name, "task_config": config_hash, "examples": examples,
              "spec": spec_dict, "tokenizer": tokenizer}
    return artifacts.fingerprint("adapters", ADAPT_VERSION, recipe, ("peft", "torch", "transformers"))


def adapter_dir(key: str) -> Path:
    return cache_dir() / "adapters" / key


def read_report(folder: str | Path) -> dict[str, Any] | None:
    return read_json(Path(folder) / REPORT_FILE)


def is_complete(folder: str | Path, key: str) -> bool:
    """True when ``folder`` holds a finished adapter of fingerprint ``key``."""
    return is_finished(folder, REPORT_FILE, key, ("adapter_config.json", "adapter_model.*"), "adapter")


def save(peft_model, folder: str | Path, report: dict[str, Any]) -> Path:
    """Write the PEFT model's ``default`` adapter with ``report`` atomically to ``folder``."""
    folder = Path(folder)
    with atomic_dir(folder, seal=True) as tmp:
        peft_model.save_pretrained(tmp)
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1, sort_keys=True))
    return folder
