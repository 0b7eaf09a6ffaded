"""One task's adapter merged into the weights it was trained on, as an ordinary model folder.

The default way ``backend=vllm`` serves per-task adapters (``adapter_strategy=merged``, see
:mod:`tailored_harness.backends.vllm_adapters`): no vLLM LoRA code is involved, so it holds on every vLLM
version. ``W' = W + scale * B @ A`` for every LoRA-wrapped projection (``W``: (out, in), ``B``:
(out, r), ``A``: (r, in), ``scale = alpha / r``). The folder loads anywhere a model folder loads.

Merged folders are cached under ``$TAILORED_HARNESS_CACHE/merged/<adapter fingerprint>``: the
adapter's fingerprint already names the base model, the task and the training, and the merge adds
nothing that varies. Writes are atomic.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tailored_harness.adapt import store
from tailored_harness.core import artifacts
from tailored_harness.core.cache import building
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import atomic_dir, cache_dir, is_finished

logger = logging.getLogger(__name__)

REPORT_FILE = "merged.json"
MERGE_VERSION = 1  # bump when the merge changes what a folder holds


def merged_key(adapter_fingerprint: str) -> str:
    """The merged folder's name: the adapter (whose fingerprint names its base) and the merge code."""
    return artifacts.fingerprint("merged", MERGE_VERSION, {"adapter": adapter_fingerprint}, ("peft", "torch", "transformers"))


def merged_dir(key: str) -> Path:
    return cache_dir() / "merged" / key


def merge_adapter(base: str, adapter: str | Path, tokenizer: str, trust_remote_code: bool = False) -> tuple[Path, bool]:
    """Merge the PEFT adapter folder ``adapter`` into the model folder ``base``; returns ``(folder, reused)``.

    ``tokenizer`` (a folder or hub id) is saved alongside, so the merged folder is complete. The
    weights keep the base folder's dtype.
    """
    adapter = Path(adapter)
    report = store.read_report(adapter)
    if not report or not report.get("fingerprint"):
        raise TailoredError(f"{adapter} has no readable {store.REPORT_FILE}, so it is not a finished adapter folder")
    key = merged_key(report["fingerprint"])
    folder = merged_dir(key)
    with building(folder, lambda: is_finished(folder, REPORT_FILE, key, ("config.json", "*.safetensors"),
                                              "merged model"), "merged model") as done:
        if not done:
            _merge(base, adapter, tokenizer, folder, key, report.get("task"), trust_remote_code)
    return folder, done


def _merge(base, adapter: Path, tokenizer, folder: Path, key: str, task: str | None, trust_remote_code: bool) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.models import modeling_tailored

    modeling_tailored.register()  # per-layer-width checkpoints load without remote code
    logger.info("merging adapter %s into %s", adapter, base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", trust_remote_code=trust_remote_code)
    with torch.no_grad():
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    with atomic_dir(folder, seal=True) as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=trust_remote_code).save_pretrained(tmp)
        (tmp / REPORT_FILE).write_text(json.dumps(
            {"fingerprint": key, "base": str(base), "adapter": str(adapter), "task": task,
             "merge_version": MERGE_VERSION}, indent=1, sort_keys=True))


DEQUANTIZED_REPORT = "dequantized.json"
DEQUANTIZE_VERSION = 1  # bump when the dequantization changes what a folder holds


def dequantized_base(base: str, quant, identity: dict, tokenizer: str, dtype: str = "auto",
                     trust_remote_code: bool = False, revision: str | None = None) -> tuple[Path, bool]:
    """``base`` quantized as ``quant`` (a resolved :class:`tailored_harness.adapt.quant.QuantSpec`),
    then dequantized into an ordinary model folder; returns ``(folder, reused)``.

    What a QLoRA adapter was trained on, as a dense model: every 4-bit projection becomes a full-precision
    one holding exactly the weight the 4-bit layer computes with (:func:`~tailored_harness.adapt.quant.dequantize_linears`),
    so engines without 4-bit LoRA (vLLM on the CPU) score the adapter merged into it. ``identity``
    names ``base`` (:func:`tailored_harness.adapt.pipeline.model_identity`; ``revision``: a hub
    model's, read with it). Cached under
    ``$TAILORED_HARNESS_CACHE/dequantized/<key>``.
    """
    import importlib.metadata

    recipe = {"model": identity, "quant": quant.to_dict(), "dtype": dtype,
              "bitsandbytes": importlib.metadata.version("bitsandbytes")}
    key = artifacts.fingerprint("dequantized", DEQUANTIZE_VERSION, recipe)
    recipe["version"] = DEQUANTIZE_VERSION  # in the record too, beside what the key was made of
    folder = cache_dir() / "dequantized" / key
    with building(folder, lambda: is_finished(folder, DEQUANTIZED_REPORT, key, ("config.json", "*.safetensors"),
                                              "dequantized model"), "dequantized model") as done:
        if not done:
            record = {**recipe, "fingerprint": key, "base": str(base)}
            _dequantize(base, quant, tokenizer, dtype, trust_remote_code, revision, folder, record)
    return folder, done


def _dequantize(base, quant, tokenizer, dtype, trust_remote_code, revision, folder: Path, record: dict) -> None:
    from transformers import AutoTokenizer

    from tailored_harness.adapt.quant import dequantize_linears, load_4bit

    logger.info("quantizing %s to %s and dequantizing it for scoring", base, quant.label())
    model = load_4bit(base, quant, dtype, trust_remote_code, revision)
    record["layers"] = dequantize_linears(model)
    with atomic_dir(folder, seal=True) as tmp:
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=trust_remote_code).save_pretrained(tmp)
        (tmp / DEQUANTIZED_REPORT).write_text(json.dumps(record, indent=1, sort_keys=True))
