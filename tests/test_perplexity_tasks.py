"""Perplexity tasks: ``ptb_tailored`` reads Mikolov's files into documents and reports lm-eval's own
perplexity metrics, aggregated as lm-eval aggregates ``wikitext``."""

from __future__ import annotations

import math

import pytest

from tailored_harness.core.errors import TailoredError
from tailored_harness.taskio import perplexity


def _ptb_folder(tmp_path, sentences: int = 450):
    folder = tmp_path / "ptb"
    folder.mkdir()
    lines = [f" sentence {i} has <unk> words and N numbers " for i in range(sentences)]
    (folder / "ptb.test.txt").write_text("\n".join(lines) + "\n\n")
    (folder / "ptb.valid.txt").write_text("\n".join(lines[:10]) + "\n")
    return folder, [line.strip() for line in lines]


def test_ptb_documents_join_consecutive_sentences_by_a_space(tmp_path):
    folder, lines = _ptb_folder(tmp_path)
    data = perplexity.load_ptb(ptb_dir=str(folder), version=1.0)
    assert set(data) == {"test", "validation"}
    texts = [doc["text"] for doc in data["test"]]
    assert len(texts) == math.ceil(450 / perplexity.SENTENCES_PER_DOCUMENT) == 3
    assert " ".join(texts) == " ".join(lines)  # nothing lost, nothing repeated, in order
    assert texts[0] == " ".join(lines[:200]) and texts[-1] == " ".join(lines[400:])


def test_ptb_folder_comes_from_metadata_or_the_environment(tmp_path, monkeypatch):
    folder, _ = _ptb_folder(tmp_path)
    monkeypatch.delenv(perplexity.PTB_ENV, raising=False)
    with pytest.raises(TailoredError, match=f"set {perplexity.PTB_ENV}"):
        perplexity.load_ptb()
    monkeypatch.setenv(perplexity.PTB_ENV, str(folder))
    assert len(perplexity.load_ptb()["test"]) == 3
    with pytest.raises(TailoredError, match="holds no ptb.test.txt; valid: a folder with ptb.test.txt"):
        perplexity.load_ptb(ptb_dir=str(tmp_path))


def test_process_results_counts_words_and_bytes_as_lm_evals_wikitext():
    from lm_eval.tasks.wikitext import preprocess_wikitext

    text = "the  quick brown\tfox jumps <unk> over N dogs é"
    ours = perplexity.process_results({"text": text}, [-42.5])
    theirs = preprocess_wikitext.process_results({"page": text}, [-42.5])
    assert ours == theirs


def test_ptb_task_aggregates_perplexity_over_every_word(tmp_path, monkeypatch, task_manager):
    """End to end through lm-eval with an LM that gives each document a known log-likelihood: the
    word perplexity is exp(-(sum of log-likelihoods) / (sum of words)), lm-eval's weighted perplexity."""
    import lm_eval
    from lm_eval.api.model import LM

    folder, _ = _ptb_folder(tmp_path)
    monkeypatch.setenv(perplexity.PTB_ENV, str(folder))

    class FixedLM(LM):
        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            return [-2.0 * len(r.args[0].split()) - 1.0 for r in requests]

        def loglikelihood(self, requests, disable_tqdm=False):
            raise AssertionError("a perplexity task asked for choices")

        def generate_until(self, requests, disable_tqdm=False):
            raise AssertionError("a perplexity task asked for generation")

    out = lm_eval.simple_evaluate(model=FixedLM(), tasks=["ptb_tailored"], task_manager=task_manager)
    words = [len(doc["text"].split()) for doc in perplexity.load_ptb(str(folder))["test"]]
    expected = math.exp((2.0 * sum(words) + len(words)) / sum(words))
    assert out["results"]["ptb_tailored"]["word_perplexity,none"] == pytest.approx(expected, rel=1e-12)
    assert out["n-samples"]["ptb_tailored"]["effective"] == 3


def test_hellaswag_cleaning_removes_wikihow_markup():
    from tailored_harness.taskio.hellaswag import _document, clean

    assert clean(" Remove the lid [title] Then  stir [step] it well. ") == "Remove the lid. Then stir it well."
    doc = _document({"activity_label": "Cooking", "ctx_a": "She opens the jar.", "ctx_b": "then she",
                     "endings": ["[header] pours it.", "sleeps."], "label": "0"})
    assert doc == {"activity": "Cooking", "context": "She opens the jar. Then she", "options": ["pours it.", "sleeps."],
                   "gold": 0}
