"""GGUF files as model input: converted once into an ordinary Hugging Face folder in the cache.

llama.cpp's GGUF format is how many models are shipped (the offline SmolLM2 and Gemma 3 among them),
but pruning, adapters and both scoring backends work on Hugging Face folders. So a GGUF file is read
once by transformers (``from_pretrained(folder, gguf_file=name)``, which needs the ``gguf`` package
and dequantizes every tensor), cast to the requested dtype, and saved with its tokenizer as an
ordinary folder of its family (``llama``, ``gemma3_text``, ...) under
``$TAILORED_HARNESS_CACHE/gguf/<fingerprint>/``. The
fingerprint hashes the file's content (sha256), the dtype, this converter's version and the
transformers and gguf versions, so the same file converts once and a changed file converts again.
Folders are written atomically; ``gguf.json`` beside the weights records where they came from.

Only architectures of a supported family are accepted (:data:`SUPPORTED_ARCHITECTURES`, GGUF's
names for them); anything else, and any file that is not GGUF, is refused with one line before
anything is loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tailored_harness.core import artifacts
from tailored_harness.core.cache import building
from tailored_harness.core.errors import TailoredError, first_line
from tailored_harness.core.paths import atomic_dir, cache_dir, file_sha256, is_finished, read_json
from tailored_harness.models.families import SUPPORTED, family_name

logger = logging.getLogger(__name__)

MAGIC = b"GGUF"
SUFFIX = ".gguf"
#: GGUF ``general.architecture`` -> the family (:mod:`tailored_harness.models.families`) transformers
#: loads it as; Mistral's GGUF files mostly say ``llama``, which loads as LLaMA, the same weights.
SUPPORTED_ARCHITECTURES = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3",
                           "gemma3": "gemma3_text", "phi3": "phi3"}
REPORT_FILE = "gguf.json"
CONVERT_VERSION = 2  # bump when the conversion changes what a folder holds (2: GGUF's add_bos/add_eos applied)
#: llama.cpp's flags for the special tokens its tokenizer puts around every text -> the attribute of a
#: transformers tokenizer that does the same.
SPECIAL_TOKEN_FLAGS = {"tokenizer.ggml.add_bos_token": "add_bos_token",
                       "tokenizer.ggml.add_eos_token": "add_eos_token"}
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: ``dtype=auto`` of a GGUF file: its tensors are quantized or half precision, and transformers
#: dequantizes them to float32, so that is the dtype that loses nothing.
AUTO_DTYPE = "float32"


def is_gguf(path: str | Path) -> bool:
    """True when ``path`` is a file that starts with the GGUF magic bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def architecture(path: str | Path) -> str:
    """The ``general.architecture`` of a GGUF file (read from its header; tensors are not loaded)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.architecture")
    if field is None:
        raise TailoredError(f"{str(path)!r} is a GGUF file without general.architecture; cannot tell what model it holds")
    return str(field.contents())


def special_token_flags(path: str | Path) -> dict[str, bool]:
    """What a GGUF file says its tokenizer adds to every text: ``{"add_bos_token": True, ...}``, the
    flags it sets only (read from its header)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    return {attr: bool(fields[key].contents()) for key, attr in SPECIAL_TOKEN_FLAGS.items() if key in fields}


def _apply_special_token_flags(tokenizer, flags: dict[str, bool], path: Path) -> None:
    """Make ``tokenizer`` add the BOS/EOS tokens the file says its model reads every text with.

    transformers' GGUF tokenizer conversion does not apply these flags for every tokenizer model:
    Gemma 3's file says ``add_bos_token = true`` and the converted tokenizer added no BOS, so the model
    was scored on texts it never saw in training (the hub's tokenizer adds it). Setting the attribute
    rebuilds the tokenizer's post-processor, which ``save_pretrained`` writes.
    """
    ids = tokenizer("a")["input_ids"]
    does = {"add_bos_token": bool(ids) and ids[0] == tokenizer.bos_token_id,
            "add_eos_token": bool(ids) and ids[-1] == tokenizer.eos_token_id}
    wanted = {**does, **flags}
    if wanted == does:
        return  # already so: the tokenizer's files stay as transformers wrote them
    if not hasattr(tokenizer, "update_post_processor"):
        logger.warning("%s says %s, which a %s cannot take; the tokenizer is kept as transformers read it",
                       path.name, flags, type(tokenizer).__name__)
        return
    logger.info("%s says %s, which transformers' reader did not apply; applied", path.name, flags)
    for attr in ("add_eos_token", "add_bos_token"):  # each setter rebuilds the template from both: last one wins
        setattr(tokenizer, attr, wanted[attr])


def locate(pretrained: str, gguf_file: str | None = None, revision: str = "main") -> Path | None:
    """The GGUF file that ``pretrained`` (and ``gguf_file``) name, or ``None`` when they name no GGUF.

    * ``pretrained=<file>.gguf``: that file;
    * ``pretrained=<folder>,gguf_file=<name>``: the file inside the folder;
    * ``pretrained=<hub id>,gguf_file=<name>``: the file downloaded from the hub (cached by
      ``huggingface_hub``), as lm-eval's ``HFLM`` reads its ``gguf_file`` argument.
    """
    path = Path(pretrained).expanduser()
    if gguf_file is None:
        if path.is_file() or pretrained.endswith(SUFFIX):
            if not path.is_file():
                raise TailoredError(f"pretrained={pretrained!r}: no such GGUF file")
            return path
        return None
    if path.is_file():
        raise TailoredError(f"pretrained={pretrained!r} is a file and gguf_file={gguf_file!r} names another; "
                            f"give the file as pretrained=, or its folder with gguf_file=")
    if path.is_dir():
        candidate = path / gguf_file
        if not candidate.is_file():
            present = ", ".join(sorted(p.name for p in path.glob(f"*{SUFFIX}"))) or "none"
            raise TailoredError(f"gguf_file={gguf_file!r} is not in {pretrained!r} (GGUF files there: {present})")
        return candidate
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(hf_hub_download(pretrained, gguf_file, revision=revision))
    except (OSError, HFValidationError) as err:
        message = first_line(err)
        raise TailoredError(f"could not get gguf_file={gguf_file!r} of pretrained={pretrained!r}: {message}") from err


def check(path: Path) -> str:
    """Refuse, in one line, a file that is not GGUF or holds an architecture the plugin cannot prune."""
    if not is_gguf(path):
        raise TailoredError(f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic bytes); "
                            f"give a .gguf file or a Hugging Face model folder")
    arch = architecture(path)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise TailoredError(f"{str(path)!r} holds a {arch!r} model; the plugin prunes and adapts these GGUF "
                            f"architectures: {', '.join(SUPPORTED_ARCHITECTURES)}")
    return arch


def _resolved_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise TailoredError(f"dtype={dtype!r} is not a dtype; valid: {', '.join(DTYPES)}")
    return AUTO_DTYPE if dtype == "auto" else dtype


def fingerprint(file_digest: str, dtype: str) -> str:
    """Hash of what decides a converted folder: the file's content, dtype, converter and library versions."""
    return artifacts.fingerprint("gguf", CONVERT_VERSION, {"sha256": file_digest, "dtype": dtype},
                                 ("gguf", "transformers"))


def converted_dir(key: str) -> Path:
    return cache_dir() / "gguf" / key


def read_report(folder: str | Path) -> dict[str, Any] | None:
    return read_json(Path(folder) / REPORT_FILE)


def convert(path: str | Path, dtype: str = "auto", out: str | Path | None = None) -> tuple[Path, bool]:
    """Convert the GGUF file ``path`` into a Hugging Face folder; returns ``(folder, reused)``.

    The folder is the cache entry named by :func:`fingerprint`, or ``out`` when given (refused if
    it exists and is not a converted folder). Weights come back dequantized, in ``dtype``.
    """
    path = Path(path).expanduser().resolve()
    arch = check(path)
    dtype = _resolved_dtype(dtype)
    digest = file_sha256(path)
    key = fingerprint(digest, dtype)
    folder = Path(out).expanduser() if out else converted_dir(key)
    if out and folder.exists() and any(folder.iterdir()) and read_report(folder) is None:
        raise TailoredError(f"--out {str(folder)!r} exists and is not a converted GGUF folder; choose an empty or new folder")
    what = "converted GGUF model"
    with building(folder, lambda: is_finished(folder, REPORT_FILE, key, ("config.json", "*.safetensors"), what),
                  what) as done:
        if done:
            return folder, True
        logger.info("converting %s (GGUF, %s) into a Hugging Face folder at %s, %s", path.name, arch, folder, dtype)
        model, tokenizer = _load(path, dtype)
        with atomic_dir(folder, seal=True) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / REPORT_FILE).write_text(json.dumps(
                {"fingerprint": key, "source": str(path), "sha256": digest, "architecture": arch, "dtype": dtype,
                 "model_type": model.config.model_type, "convert_version": CONVERT_VERSION}, indent=1, sort_keys=True))
    return folder, False


def _load(path: Path, dtype: str):
    """Model and tokenizer of a GGUF file, dequantized into ``dtype`` and free of the GGUF quantizer.

    transformers marks a model read from GGUF as quantized and refuses to save it; the weights in
    memory are plain tensors, so dropping that mark (the quantizer and the config's
    ``quantization_config``) is what makes it an ordinary model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        _apply_special_token_flags(tokenizer, special_token_flags(path), path)
    except (OSError, ValueError, KeyError) as err:
        message = first_line(err)
        raise TailoredError(f"transformers could not read {str(path)!r}: {message}") from err
    if family_name(model.config.model_type) is None:
        raise TailoredError(f"{str(path)!r} loads as a {model.config.model_type!r} model; the plugin prunes and adapts "
                            f"these families: {', '.join(SUPPORTED)}")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = path.stem
    return model.eval(), tokenizer


def resolve(pretrained: str, gguf_file: str | None = None, revision: str = "main", dtype: str = "auto") -> str | None:
    """The converted folder for a GGUF ``pretrained`` (converted now or found in the cache), else ``None``."""
    source = locate(pretrained, gguf_file, revision)
    if source is None:
        return None
    folder, reused = convert(source, dtype)
    logger.info("%s GGUF model %s: %s", "reusing converted" if reused else "converted", source.name, folder)
    return str(folder)
