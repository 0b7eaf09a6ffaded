"""The text of a task's documents, readable (context, choices, gold), kept once beside run digests.

A run digest keeps each document's values and pick but no text (a full BoolQ split's passages are
megabytes, and every configuration of a suite scores the same documents). :func:`write_book` keeps
``{doc_id: [context, choices, gold]}`` once per task and documents, under the digests' folder as
``documents/<task>-<fingerprint>.json`` (the fingerprint of lm-eval's ``doc_hash``es), so a page
built from committed digests still shows the documents that flipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tailored_harness.core.paths import write_text_atomic
from tailored_harness.suite.run_files import gold_choice, iter_samples, requests_of

BOOK_FOLDER = "documents"


def book_path(folder: str | os.PathLike, task: str, fingerprint: str) -> Path:
    """Where the text of ``task``'s documents (those of ``fingerprint``) is kept under a digests folder."""
    return Path(folder) / BOOK_FOLDER / f"{task}-{fingerprint[:16]}.json"


def write_book(samples_path: str | os.PathLike, task: str, fingerprint: str, folder: str | os.PathLike) -> Path:
    """Keep ``{doc_id: [context, choices, gold]}`` of the logged samples once per task and documents
    (an existing book of the same fingerprint is the same text and is left as it is)."""
    path = book_path(folder, task, fingerprint)
    if not path.is_file():
        docs: dict[str, list] = {}
        for sample in iter_samples(samples_path):
            docs.setdefault(str(int(sample["doc_id"])), list(readable(sample)))
        write_text_atomic(path, json.dumps({"task": task, "fingerprint": fingerprint, "docs": docs}, sort_keys=True) + "\n")
    return path


def readable(sample: dict[str, Any]) -> tuple[str, list[str], str]:
    """``(context, choices, gold)`` of a logged sample: one request per choice, ``[context,
    continuation]``. Where every choice shares its continuation and differs in its context
    (WinoGrande), the contexts are the choices."""
    requests = requests_of(sample)
    context = str(requests[0][0]) if requests and requests[0] else ""
    choices = [str(r[1]) for r in requests if len(r) > 1 and isinstance(r[1], str)] if len(requests) > 1 else []
    if len(choices) > 1 and len(set(choices)) == 1:
        context, choices = f"... {choices[0]}", [str(r[0]) for r in requests]
    gold = gold_choice(sample)
    return context, choices, choices[gold] if gold is not None and gold < len(choices) else str(sample.get("target"))


def read_book(folder: str | os.PathLike, task: str, fingerprint: str) -> dict[str, list] | None:
    """``{doc_id as text: [context, choices, gold]}`` kept under ``folder``; ``None`` where none was kept."""
    path = book_path(folder, task, fingerprint)
    return json.loads(path.read_text())["docs"] if path.is_file() else None
