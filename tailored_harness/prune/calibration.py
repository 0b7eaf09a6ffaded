"""Calibration batches for the gradient criteria: N samples of at most L tokens, and what each scores.

Sources:

* a local ``.txt`` file (one document per non-empty line) or ``.jsonl`` file (one object per line
  with a ``text`` field): general text, as LLM-Pruner calibrates on BookCorpus. Documents are
  shuffled with the spec's seed, tokenised and packed into one stream; each sample is ``<s>``
  followed by the next ``L - 1`` tokens (``L`` tokens when the tokenizer has no BOS), and the loss
  covers every token.
* ``tasks``: the requested lm-eval tasks' training documents, written exactly as the task scores
  them (context, target delimiter, gold continuation). Each sample is one document, drawn with the
  seed from all requested tasks; the loss covers only the gold continuation, because that is all
  a task's metric reads (the log-likelihood of the continuation given the context). A perplexity
  task (``wikitext``) reads every token of a document, so its documents are scored whole; a task
  with no training split is left out. Contexts longer than L are cut from the left, as lm-eval cuts
  them at the model's length, so the continuation is always kept. Samples are right-padded to the longest one; padding is never a
  label, and under causal attention no real token sees it, so it changes no gradient.

Why the loss is restricted to the continuation: on a task document the context is most of the
tokens (a passage is some 60 tokens, its answer 1), so a whole-document loss ranks units by how
well they model passages, not by how well they answer. On the reference model that choice decides
which KV group survives in a layer, and with it whether ``synth_piqa`` stays at 1.0 or falls to
chance (see ``results/README.md``).

The result is a :class:`Batch`: ``input_ids`` and ``labels``, both ``(N, L)``, with -100 in
``labels`` where no loss is taken.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from tailored_harness.core import artifacts
from tailored_harness.core.errors import TailoredError
from tailored_harness.prune.spec import TASKS_SOURCE, PruneSpec
from tailored_harness.taskio.task_format import encode_pair, pad_id, right_padded, scored_text

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SEPARATOR = "\n\n"


@dataclasses.dataclass(frozen=True)
class Batch:
    """Calibration tokens: ``input_ids`` (N, L) and ``labels`` (N, L), -100 where no loss is taken."""

    input_ids: "torch.Tensor"
    labels: "torch.Tensor"


def file_documents(path: str | Path) -> list[str]:
    """Documents of a ``.txt`` (one per non-empty line, so that shuffling mixes the whole file) or
    ``.jsonl`` (field ``text``) file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TailoredError(f"calibration={str(path)!r}: no such file; valid: tasks, or an existing .txt/.jsonl file")
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


def task_documents(tasks: dict[str, Any]) -> list[tuple[str, str]]:
    """Training documents of the tasks in ``tasks`` (name -> lm-eval Task) as ``(context, continuation)``
    (:func:`scored_text`: a perplexity task's are whole documents). A task without a training split
    (``ptb_tailored`` reads only the test file) is left out with a warning; none with one is an error."""
    docs, without = [], []
    for name, task in sorted(tasks.items()):
        if not task.has_training_docs():
            without.append(name)
            continue
        docs += [scored_text(task, doc) for doc in task.training_docs()]
    if without and not docs:
        raise TailoredError(f"calibration=tasks: no task has a training split to calibrate on ({', '.join(without)}); "
                            f"name a calibration file instead (calibration=path/to/file.jsonl)")
    if without:
        logger.warning("calibration=tasks: %s %s no training split; calibrating on the other tasks' training documents",
                       ", ".join(without), "has" if len(without) == 1 else "have")
    return docs


def pack(documents: Iterable[str], tokenizer, spec: PruneSpec, source: str) -> Batch:
    """Shuffle (seeded), tokenise and cut ``spec.samples`` samples of ``spec.seq_len`` tokens, all scored."""
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
    ids = torch.tensor(rows, dtype=torch.long)
    return Batch(ids, ids.clone())


def examples(pairs: list[tuple[str, str]], tokenizer, spec: PruneSpec, source: str) -> Batch:
    """``spec.samples`` documents drawn with the seed, each a sample whose labels are its continuation."""
    if len(pairs) < spec.samples:
        raise TailoredError(f"calibration={source!r} has only {len(pairs)} training documents; "
                            f"calibration_samples={spec.samples} needs that many: lower calibration_samples")
    chosen = random.Random(spec.seed).sample(pairs, spec.samples)
    rows = [encode_pair(tokenizer, context, continuation, spec.seq_len) for context, continuation in chosen]
    input_ids, _, labels = right_padded(rows, pad_id(tokenizer))
    return Batch(input_ids, labels)


def calibration_batch(spec: PruneSpec, tokenizer, tasks: dict[str, Any] | None = None) -> Batch | None:
    """The calibration :class:`Batch` for ``spec``, or ``None`` when its criterion needs no calibration."""
    if not spec.needs_calibration:
        return None
    if spec.calibration == TASKS_SOURCE:
        if not tasks:
            raise TailoredError("calibration=tasks needs the tasks being evaluated (or --tasks for 'tailored prune'); "
                                "or name a calibration file: calibration=path/to/file.jsonl")
        return examples(task_documents(tasks), tokenizer, spec, f"tasks:{','.join(sorted(tasks))}")
    return pack(file_documents(spec.calibration), tokenizer, spec, spec.calibration)


def digest(batch: Batch | None) -> str | None:
    """Content hash of the calibration tokens and labels (part of the pruned checkpoint's fingerprint)."""
    if batch is None:
        return None
    return artifacts.digest({"input_ids": batch.input_ids.tolist(), "labels": batch.labels.tolist()})
