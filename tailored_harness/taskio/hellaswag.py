"""HellaSwag documents for the plugin's prompts: cleaned context and endings, an integer label.

HellaSwag's WikiHow half carries markup (``[title]``, ``[step]``, ``[header]``) that is not text a
model should read; lm-eval's stock task removes it, and so does :func:`clean`, so that the tailored
prompts and the stock task see the same words. The context is ``ctx_a`` followed by ``ctx_b``
(the sentence the endings complete) with its first letter capitalised, as the stock task writes it.
"""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r"\[[^\]]*\]")


def clean(text: str) -> str:
    """``text`` without WikiHow markup: ``[title]`` becomes a sentence end, other tags go, spaces collapse."""
    text = text.strip().replace(" [title]", ". ")
    return " ".join(_TAG.sub("", text).split())


def _document(doc: dict[str, Any]) -> dict[str, Any]:
    second = doc.get("ctx_b") or ""
    context = doc["ctx_a"] + (" " + second[:1].upper() + second[1:] if second else "")
    return {"activity": clean(doc["activity_label"]), "context": clean(context),
            "options": [clean(ending) for ending in doc["endings"]], "gold": int(doc["label"])}


def process_docs(dataset):
    """lm-eval ``process_docs``: adds ``activity``, ``context``, ``options`` and ``gold`` to every row."""
    return dataset.map(_document)
