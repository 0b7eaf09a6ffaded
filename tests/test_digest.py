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
