"""One way to name what the cache holds: the fingerprint of a declared recipe.

Every cache entry (a pruned checkpoint, an adapter, a merged or dequantized model, a converted GGUF
folder, a matcher, a template choice, the reference model, a synthetic world) is named by
:func:`fingerprint` over its **recipe**: the kind of entry, the version of the code that builds it
(bump it when that code changes what a recipe builds), everything the build reads (inputs by
content: :func:`digest` of texts and tensors, :func:`tokenizer_digest` of a tokenizer, a hub model
by the commit its revision resolved to) and the versions of the libraries whose numerics it depends
on. Two recipes that differ in any of these get different folders; nothing else goes in, so the same
build is found again from ``lm_eval`` and from ``tailored`` commands alike.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from tailored_harness.core.errors import TailoredError

#: characters of a sha256 hex digest kept in names (64 bits: no collision among a cache's entries)
KEY_LENGTH = 16
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def canonical(value: Any) -> str:
    """The JSON text that is hashed: keys sorted, no spaces, anything else by ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    """Content hash of a JSON-able value (an input of a recipe)."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:KEY_LENGTH]


def library_versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` of the named (importable) libraries: the module's ``__version__``, or its
    distribution's where the module has none (``gguf``)."""
    out = {}
    for name in names:
        version = getattr(importlib.import_module(name), "__version__", None)
        out[name] = str(version) if version is not None else importlib.metadata.version(name)
    return out


def fingerprint(kind: str, version: int, recipe: Mapping[str, Any], libraries: Iterable[str] = ()) -> str:
    """The name of a cache entry of ``kind`` built by code ``version`` from ``recipe`` (JSON-able, every
    input the build reads) with the ``libraries`` at their installed versions."""
    return digest({"kind": kind, "version": version, "recipe": dict(recipe),
                   "libraries": library_versions(sorted(libraries))})


def tokenizer_digest(tokenizer) -> str:
    """What a tokenizer does to text, by content (not by where it was loaded from): the full
    serialisation of a fast tokenizer (vocabulary, merges, normaliser, pre-tokeniser, post-processor,
    added tokens), else its vocabulary. Left out: its padding and truncation settings and its pad
    token, which lm-eval and vLLM set at run time on the same files (lm-eval's ``configure_pad_token``),
    and its class, which vLLM replaces by a cached subclass. Memoised on the tokenizer object (a
    vocabulary of 262k tokens takes a second)."""
    cached = getattr(tokenizer, "_tailored_digest", None)
    if cached is not None:
        return cached
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = json.loads(backend.to_str())
        body.pop("padding", None)
        body.pop("truncation", None)
    else:
        body = sorted(tokenizer.get_vocab().items())
    value = digest(body)
    try:
        tokenizer._tailored_digest = value
    except AttributeError:  # a tokenizer that refuses new attributes is hashed each time
        pass
    return value


def hub_commit(repo_id: str, revision: str = "main") -> str:
    """The commit ``revision`` of hub model ``repo_id`` resolves to now: a commit hash is itself;
    otherwise the hub is asked (through ``huggingface_hub``, which with ``HF_HUB_OFFLINE=1`` answers
    from the local hub cache, where the revision was last resolved). A cache entry named by the id and
    ``main`` would be reused after an upstream push; named by the commit, it is rebuilt."""
    if COMMIT.match(revision):
        return revision
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=["config.json"])
    except (OSError, HFValidationError, LocalEntryNotFoundError) as err:
        raise TailoredError(f"could not resolve pretrained={repo_id!r} at revision={revision!r} to a commit: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from err
    return Path(folder).name  # the snapshot folder is named by its commit
