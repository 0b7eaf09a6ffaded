"""Perplexity tasks on local text: ``ptb_tailored`` (Penn Treebank, as LLM-Pruner reports it).

lm-eval scores a ``loglikelihood_rolling`` task by the summed log-likelihood of each document's
text, cut into windows of the model's length; the metrics are lm-eval's own weighted perplexities
(``word_perplexity``, ``byte_perplexity``, ``bits_per_byte``), aggregated over all documents as
``exp(-sum of log-likelihoods / sum of words or bytes)``, exactly as its stock ``wikitext`` task.

Penn Treebank is not on the hub in a form ``datasets`` still loads (``ptb_text_only`` is a loading
script), and Mikolov's text files are what pruning papers use: ``ptb.test.txt`` (3,761 sentences,
82,430 words with ``<eos>``), ``ptb.valid.txt``, ``ptb.train.txt``, one lower-cased sentence a line.
The folder holding them comes from ``--metadata '{"ptb_dir": "..."}'`` or the ``TAILORED_PTB_DIR``
environment variable. Sentences are joined by a space, as LLM-Pruner evaluates PTB, into documents
of :data:`SENTENCES_PER_DOCUMENT` sentences: a document is the context a window can see, and several
documents let lm-eval batch and shard the split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError

PTB_ENV = "TAILORED_PTB_DIR"
#: Mikolov's file name of each split
PTB_FILES = {"test": "ptb.test.txt", "validation": "ptb.valid.txt", "train": "ptb.train.txt"}
#: sentences joined into one scored document (about 4,400 words; 19 documents in the test split)
SENTENCES_PER_DOCUMENT = 200
TEXT_FIELD = "text"


def ptb_folder(ptb_dir: str | None = None) -> Path:
    """The folder of Mikolov's PTB files: ``ptb_dir`` (task metadata), else ``$TAILORED_PTB_DIR``."""
    value = ptb_dir or os.environ.get(PTB_ENV)
    if not value:
        raise TailoredError(f"ptb_tailored needs Penn Treebank text: set {PTB_ENV} (or --metadata "
                            f"'{{\"ptb_dir\": ...}}') to a folder holding {PTB_FILES['test']} (Mikolov's simple-examples/data)")
    folder = Path(value).expanduser()
    if not (folder / PTB_FILES["test"]).is_file():
        raise TailoredError(f"ptb_dir={str(folder)!r} holds no {PTB_FILES['test']}; valid: a folder with "
                            f"{', '.join(PTB_FILES.values())} (test required)")
    return folder


def documents(path: Path, per_document: int = SENTENCES_PER_DOCUMENT) -> list[dict[str, str]]:
    """``{"text": ...}`` records of ``per_document`` consecutive sentences of ``path``, joined by spaces."""
    sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{TEXT_FIELD: " ".join(sentences[start:start + per_document])}
            for start in range(0, len(sentences), per_document)]


def load_ptb(ptb_dir: str | None = None, **_: Any):
    """lm-eval ``custom_dataset`` of ``ptb_tailored``: a ``DatasetDict`` of the splits present.

    lm-eval passes the task's metadata (``version`` and whatever ``--metadata`` adds) as keywords.
    """
    import datasets

    folder = ptb_folder(ptb_dir)
    splits = {split: datasets.Dataset.from_list(documents(folder / name))
              for split, name in PTB_FILES.items() if (folder / name).is_file()}
    return datasets.DatasetDict(splits)


def process_results(doc: dict[str, Any], results: list) -> dict[str, tuple[float, int]]:
    """lm-eval's perplexity triple for one document: ``(log-likelihood, words or bytes)``, words
    counted as lm-eval's ``wikitext`` counts them (runs of whitespace split them)."""
    (loglikelihood,) = results
    text = doc[TEXT_FIELD]
    words = len(re.split(r"\s+", text))
    size = len(text.encode("utf-8"))
    return {"word_perplexity": (loglikelihood, words), "byte_perplexity": (loglikelihood, size),
            "bits_per_byte": (loglikelihood, size)}
