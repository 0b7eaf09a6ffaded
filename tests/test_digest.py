"""Run digests (tailored_harness/suite/digest.py) stand in for the lm-eval folders they came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailored_harness.cli.main import main
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import digest, run_samples
from test_run_samples import STAMP, _write_run


def _write_perplexity_run(folder: Path, loglikelihoods: dict[int, float]) -> Path:
    """A run of one perplexity task as lm-eval logs it: ``(loglikelihood, words)`` per document."""
    model = folder / "model"
    model.mkdir(parents=True)
    results = {"results": {"wiki": {"word_perplexity,none": 30.0}}, "configs": {"wiki": {"metric_list": [
        {"metric": "word_perplexity"}]}}, "higher_is_better": {"wiki": {"word_perplexity": False}}}
    (model / f"results_{STAMP}.json").write_text(json.dumps(results))
    lines = [json.dumps({"doc_id": i, "filter": "none", "metrics": ["word_perplexity"], "doc_hash": f"page{i}",
                         "word_perplexity": [ll, 100 + i]}) for i, ll in loglikelihoods.items()]
    (model / f"samples_wiki_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_a_digest_compares_exactly_as_its_folder(tmp_path):
    a = _write_run(tmp_path / "a", "boolq", {i: float(i % 3 != 0) for i in list(range(40)) + list(range(50, 70))})
    b = _write_run(tmp_path / "b", "boolq", {i: float(i % 4 != 0) for i in list(range(40)) + list(range(50, 70))})
    path = digest.write_digest(a, tmp_path / "a.json")
    data = json.loads(path.read_text())
    assert data["tasks"]["boolq"]["values"]["acc,none"]["doc_ids"] == [[0, 39], [50, 69]]
    from_folder = run_samples.compare_runs(run_samples.load_run(a), run_samples.load_run(b))
    from_digest = run_samples.compare_runs(digest.load(path, "a"), run_samples.load_run(b))
    assert from_digest == from_folder and from_folder[0][0]["n"] == 60


def test_perplexity_pairs_survive_the_digest(tmp_path):
    a = _write_perplexity_run(tmp_path / "a", {i: -300.0 - 7.25 * i for i in range(5)})
    b = _write_perplexity_run(tmp_path / "b", {i: -310.0 - 7.5 * i for i in range(5)})
    folder_rows, _ = run_samples.compare_runs(run_samples.load_run(a), run_samples.load_run(b))
    digest_rows, _ = run_samples.compare_runs(digest.load(digest.write_digest(a, tmp_path / "a.json")),
                                              digest.load(digest.write_digest(b, tmp_path / "b.json")))
    assert digest_rows == folder_rows and folder_rows[0]["verdict"] == "better"  # lower perplexity
    assert folder_rows[0]["a"] < folder_rows[0]["b"] and folder_rows[0]["only_a"] is None


def test_other_documents_are_caught_through_the_digests_fingerprint(tmp_path):
    a = _write_run(tmp_path / "a", "piqa", {0: 1.0, 1: 0.0, 2: 1.0})
    changed = _write_run(tmp_path / "b", "piqa", {0: 1.0, 1: 0.0, 2: 1.0}, {2: "another"})
    with pytest.raises(TailoredError, match="task 'piqa': some doc_id is a different document in a and b"):
        run_samples.compare_runs(digest.load(digest.write_digest(a, tmp_path / "a.json")), run_samples.load_run(changed))


def test_report_reads_digests_as_it_reads_folders_and_writes_them(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "boolq", {i: float(i % 3 != 0) for i in range(30)})
    b = _write_run(tmp_path / "b", "boolq", {i: float(i % 2 == 0) for i in range(30)})
    folders = ["--run", f"dense={a}", "--run", f"p20={b}", "--paired", "p20=dense"]
    assert main(["report", *folders, "--out", str(tmp_path / "s1.json"), "--digests", str(tmp_path / "d")]) == 0
    digests = ["--run", f"dense={tmp_path / 'd' / 'dense.json'}", "--run", f"p20={tmp_path / 'd' / 'p20.json'}",
               "--paired", "p20=dense"]
    assert main(["report", *digests, "--out", str(tmp_path / "s2.json")]) == 0
    one, two = (json.loads((tmp_path / f"s{i}.json").read_text()) for i in (1, 2))
    assert one["rows"] == two["rows"] and one["paired"] == two["paired"] and one["rows"]
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("{}")
    assert main(["compare", str(tmp_path / "bad.json"), str(a)]) == 2
    assert "is not a run digest" in capsys.readouterr().err


def test_digest_command_writes_one_run_and_refuses_a_file(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "boolq", {i: float(i % 2) for i in range(10)})
    assert main(["digest", str(a), "--out", str(tmp_path / "d" / "a.json")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "a.json")
    assert json.loads((tmp_path / "d" / "a.json").read_text())["tasks"]["boolq"]["values"]["acc,none"]["bits"] == "01" * 5
    assert main(["digest", str(tmp_path / "d" / "a.json"), "--out", str(tmp_path / "x.json")]) == 2
    assert "is not a folder" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def _write_choices_run(folder: Path, picks: dict[int, int], gold: dict[int, int], choices: int) -> Path:
    """A run of one multiple-choice task with ``choices`` options, picking ``picks[doc]``."""
    model = folder / "model"
    model.mkdir(parents=True)
    acc = {i: float(picks[i] == gold[i]) for i in picks}
    results = {"results": {"mc": {"acc,none": sum(acc.values()) / len(acc)}}, "configs": {"mc": {"metric_list": [
        {"metric": "acc"}]}}, "higher_is_better": {"mc": {"acc": True}}}
    (model / f"results_{STAMP}.json").write_text(json.dumps(results))
    lines = []
    for i in picks:
        arguments = {f"gen_args_{c}": {"arg_0": f"Question {i}?", "arg_1": f" option {c}"} for c in range(choices)}
        scores = [["-1.0" if c == picks[i] else f"-{2 + c}.0", "False"] for c in range(choices)]
        lines.append(json.dumps({"doc_id": i, "target": str(gold[i]), "arguments": arguments, "filtered_resps": scores,
                                 "filter": "none", "metrics": ["acc"], "acc": acc[i], "doc_hash": f"q{i}"}))
    (model / f"samples_mc_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("choices", [2, 3])
def test_flipped_documents_read_from_digests_as_from_their_folders(tmp_path, choices):
    """Digests keep each document's pick and, beside them, the documents' text once: the flips read
    from two digests equal those read from the folders. A digest without picks (written before they
    were kept) still names both answers of a two-choice task, and says "another choice" otherwise."""
    from tailored_harness.suite.documents import BOOK_FOLDER
    from tailored_harness.suite.flips import flipped_documents

    gold = {i: i % choices for i in range(30)}
    a = _write_choices_run(tmp_path / "a", {i: gold[i] if i % 4 else (gold[i] + 1) % choices for i in range(30)},
                           gold, choices)
    b = _write_choices_run(tmp_path / "b", {i: gold[i] if i % 3 else (gold[i] + choices - 1) % choices for i in range(30)},
                           gold, choices)
    digests = tmp_path / "digests"
    digests.mkdir()
    path_a, path_b = digest.write_digest(a, digests / "a.json"), digest.write_digest(b, digests / "b.json")
    assert len(list((digests / BOOK_FOLDER).iterdir())) == 1  # one book for the task's documents, shared
    from_folders = flipped_documents(a, b, "mc", "acc,none")
    # b wrong on 10 (i % 3 == 0), a on 8 (i % 4 == 0), both on 3 (i % 12 == 0): 7 right only in a, 5 only in b
    assert from_folders["count_a"] == 7 and from_folders["count_b"] == 5
    assert flipped_documents(path_a, path_b, "mc", "acc,none") == from_folders
    data = json.loads(path_b.read_text())
    del data["tasks"]["mc"]["picks"]
    path_b.write_text(json.dumps(data))
    without = flipped_documents(path_a, path_b, "mc", "acc,none")
    wrong_b = [doc["answer_b"] for doc in without["only_a"]]
    if choices == 2:
        assert without == from_folders
    else:
        assert set(wrong_b) == {"(another choice)"} and without["only_b"] == from_folders["only_b"]
    for book in (digests / BOOK_FOLDER).iterdir():
        book.unlink()
    assert flipped_documents(path_a, path_b, "mc", "acc,none") is None  # no text kept: nothing to show
