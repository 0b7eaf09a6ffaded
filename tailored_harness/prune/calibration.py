"""Calibration text for the gradient criteria: N samples of L tokens from a source the user names.

Sources: a local ``.txt`` file (one document per non-empty line), a local ``.jsonl`` file (one
object per line with a ``text`` field), or the requested lm-eval tasks' training documents written
exactly as the task scores them (prompt, target delimiter, gold continuation). Documents are
shuffled with the spec's seed, tokenised one by one and packed into one stream; each sample is
``<s>`` followed by the next ``L - 1`` tokens of the stream (``L`` tokens when the tokenizer has no
BOS). The result is a ``(N, L)`` tensor of token ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from tailored_harness.errors import TailoredError
from tailored_harness.prune.spec import TASKS_SOURCE, PruneSpec

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SEPARATOR = "\n\n"


def file_documents(path: str | Path) -> list[str]:
    """Documents of a ``.txt`` (one per non-empty line, so that shuffling mixes the whole file) or
    ``.jsonl`` (field ``text``) file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TailoredError(f"calibration={str(path)!r}: no such file")
    if path.suffix == ".jsonl":
        docs = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise TailoredError(f"calibration={str(path)!r}: line {number} is not JSON ({err})") from None
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    keys = ", ".join(record) if isinstance(record, dict) else type(record).__name__
                    raise TailoredError(f"calibration={str(path)!r}: line {number} has no string field 'text' (has: {keys})")
                docs.append(record["text"])
        return docs
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def example_text(task, doc: dict[str, Any]) -> str:
    """One document as the task scores it: its prompt, the target delimiter and the gold continuation."""
    context = task.doc_to_text(doc)
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        target = choices[target] if isinstance(target, int) else target
    elif isinstance(target, list):
        target = target[0]
    return f"{context}{task.config.target_delimiter}{target}"


def task_documents(tasks: dict[str, Any]) -> list[str]:
    """Training documents of every task in ``tasks`` (name -> lm-eval Task), formatted by the task."""
    docs = []
    for name, task in sorted(tasks.items()):
        if not task.has_training_docs():
            raise TailoredError(f"calibration=tasks: task {name!r} has no training split to calibrate on; "
                                f"name a calibration file instead (calibration=path/to/file.jsonl)")
        docs += [example_text(task, doc) for doc in task.training_docs()]
    return docs


def pack(documents: Iterable[str], tokenizer, spec: PruneSpec, source: str) -> "torch.Tensor":
    """Shuffle (seeded), tokenise and cut ``spec.samples`` samples of ``spec.seq_len`` tokens."""
    import torch

    docs = list(documents)
    random.Random(spec.seed).shuffle(docs)
    bos = tokenizer.bos_token_id
    body = spec.seq_len - (1 if bos is not None else 0)
    needed = spec.samples * body
    stream: list[int] = []
    for doc in docs:
        stream += tokenizer(doc + SEPARATOR, add_special_tokens=False)["input_ids"]
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise TailoredError(f"calibration={source!r} gives only {len(stream)} tokens; {spec.samples} samples of "
                            f"{spec.seq_len} need {needed}: lower calibration_samples or calibration_len")
    rows = [stream[i * body:(i + 1) * body] for i in range(spec.samples)]
    if bos is not None:
        rows = [[bos] + row for row in rows]
    return torch.tensor(rows, dtype=torch.long)


def calibration_ids(spec: PruneSpec, tokenizer, tasks: dict[str, Any] | None = None):
    """``(N, L)`` token ids for ``spec``, or ``None`` when its criterion needs no calibration."""
    if not spec.needs_calibration:
        return None
    if spec.calibration == TASKS_SOURCE:
        if not tasks:
            raise TailoredError("calibration=tasks needs the tasks being evaluated (or --tasks for 'tailored prune'); "
                                "or name a calibration file: calibration=path/to/file.jsonl")
        return pack(task_documents(tasks), tokenizer, spec, f"tasks:{','.join(sorted(tasks))}")
    return pack(file_documents(spec.calibration), tokenizer, spec, spec.calibration)


def digest(ids) -> str | None:
    """Content hash of the calibration tokens (part of the pruned checkpoint's fingerprint)."""
    if ids is None:
        return None
    return hashlib.sha256(json.dumps(ids.tolist()).encode()).hexdigest()[:16]
