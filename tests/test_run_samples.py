"""Runs compared document by document (tailored_harness/suite/run_samples.py, ``tailored compare``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import run_cli
from tailored_harness.cli.main import main
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import paired, run_samples

STAMP = "2026-12-02T10-00-00.000000"


def _write_run(folder: Path, task: str, outcomes: dict[int, float], hashes: dict[int, str] | None = None) -> Path:
    """An lm-eval ``--output_path`` folder as lm-eval 0.4 writes it with ``--log_samples``: one task
    scored ``acc`` per document."""
    model = folder / "model"
    model.mkdir(parents=True)
    results = {"results": {task: {"acc,none": sum(outcomes.values()) / len(outcomes)}},
               "configs": {task: {"metric_list": [{"metric": "acc"}]}}, "higher_is_better": {task: {"acc": True}}}
    (model / f"results_{STAMP}.json").write_text(json.dumps(results))
    lines = [json.dumps({"doc_id": i, "filter": "none", "metrics": ["acc"], "acc": value,
                         "doc_hash": (hashes or {}).get(i, f"hash{i}")}) for i, value in outcomes.items()]
    (model / f"samples_{task}_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_runs_are_matched_by_doc_id_whatever_the_order(tmp_path):
    a = _write_run(tmp_path / "a", "boolq", {0: 1.0, 1: 1.0, 2: 0.0, 3: 1.0})
    b = _write_run(tmp_path / "b", "boolq", {3: 0.0, 2: 0.0, 1: 1.0, 0: 0.0})
    rows, notes = run_samples.compare_runs(run_samples.load_run(a), run_samples.load_run(b))
    (row,) = rows
    assert (row["task"], row["metric"], row["only_a"], row["only_b"], row["n"]) == ("boolq", "acc,none", 2, 0, 4)
    assert row["difference"] == pytest.approx(0.5) and notes == []


def test_different_documents_are_refused_naming_the_task(tmp_path):
    a = run_samples.load_run(_write_run(tmp_path / "a", "piqa", {0: 1.0, 1: 0.0, 2: 1.0}))
    fewer = run_samples.load_run(_write_run(tmp_path / "b", "piqa", {0: 1.0, 1: 1.0}))
    with pytest.raises(TailoredError, match=r"task 'piqa': a scored 3 documents and b 2, .*doc_id 2 only in a"):
        run_samples.compare_runs(a, fewer)
    changed = run_samples.load_run(_write_run(tmp_path / "c", "piqa", {0: 1.0, 1: 0.0, 2: 1.0}, {1: "other"}))
    with pytest.raises(TailoredError, match=r"task 'piqa': doc_id 1 is a different document in a and c"):
        run_samples.compare_runs(a, changed)


def test_tasks_in_one_run_only_are_noted_and_unknown_tasks_refused(tmp_path):
    a = run_samples.load_run(_write_run(tmp_path / "a", "piqa", {0: 1.0, 1: 0.0}))
    b = run_samples.load_run(_write_run(tmp_path / "b", "boolq", {0: 1.0, 1: 0.0}))
    with pytest.raises(TailoredError, match="a and b have no task in common"):
        run_samples.compare_runs(a, b)
    with pytest.raises(TailoredError, match=r"task\(s\) winogrande not scored by both a and b \(valid: none\)"):
        run_samples.compare_runs(a, b, tasks=["winogrande"])


def test_a_run_without_samples_is_refused_in_one_line(tmp_path, capsys):
    folder = _write_run(tmp_path / "a", "piqa", {0: 1.0})
    for path in folder.rglob("samples_*.jsonl"):
        path.unlink()
    assert main(["compare", str(folder), str(folder)]) == 2
    assert "rerun lm_eval with --log_samples" in capsys.readouterr().err


def test_compare_command_prints_the_table_and_the_same_numbers_as_json(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "boolq", {i: float(i % 3 != 0) for i in range(60)})
    b = _write_run(tmp_path / "b", "boolq", {i: float(i % 2 == 0) for i in range(60)})
    assert main(["compare", f"base={a}", f"new={b}", "--resamples", "500"]) == 0
    table = capsys.readouterr().out
    assert "new against base:" in table and "new - base" in table and "| boolq" in table
    assert main(["compare", f"base={a}", f"new={b}", "--resamples", "500", "--json"]) == 0
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    (row,) = comparison["rows"]
    assert (comparison["a"], comparison["b"]) == ("new", "base")
    expected = paired.compare_values([float(i % 2 == 0) for i in range(60)], [float(i % 3 != 0) for i in range(60)],
                                     "mean", True, paired.PairedSpec(resamples=500))
    assert row["difference"] == pytest.approx(expected.difference) and row["p_value"] == pytest.approx(expected.p_value)
    assert f"{row['p_value']:.3g}" in table
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _lm_eval(model_dir: Path, extra: str, limit: int, out: Path, ptb: Path):
    args = ["lm_eval", "--model", "tailored", "--model_args", f"pretrained={model_dir},shots=0{extra}",
            "--tasks", "synth_boolq,synth_piqa,ptb_tailored", "--limit", str(limit), "--log_samples",
            "--output_path", str(out), "--metadata", json.dumps({"ptb_dir": str(ptb)})]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow  # lm_eval or tailored end to end, in subprocesses
def test_real_lm_eval_runs_compare_to_lm_evals_own_aggregates(tiny_model_dir, tmp_path):
    """Dense against pruned on the tiny model through ``lm_eval``: each side of every row is the value
    lm-eval itself reported for that run, accuracy and perplexity alike; a run on fewer documents is
    refused."""
    ptb = tmp_path / "ptb"
    ptb.mkdir()
    (ptb / "ptb.test.txt").write_text("".join(f" the cat number {i} sat on the mat and ate {i % 7} fish\n"
                                              for i in range(450)))  # three documents of 200 sentences
    dense = _lm_eval(tiny_model_dir, "", 12, tmp_path / "dense", ptb)
    pruned = _lm_eval(tiny_model_dir, ",prune_ratio=0.5,importance=l2", 12, tmp_path / "pruned", ptb)
    runs = [run_samples.load_run(folder) for folder in (pruned, dense)]
    rows, notes = run_samples.compare_runs(*runs)
    reported = [json.loads(run.results_file.read_text())["results"] for run in runs]
    assert {r["task"] for r in rows} == {"synth_boolq", "synth_piqa", "ptb_tailored"}
    assert {r["metric"] for r in rows if r["task"] == "ptb_tailored"} == {"word_perplexity,none",
                                                                          "byte_perplexity,none", "bits_per_byte,none"}
    for row in rows:
        for side, results in zip("ab", reported):
            assert row[side] == pytest.approx(results[row["task"]][row["metric"]], rel=1e-9), (row["task"], row["metric"])
        assert row["interval"][0] <= row["difference"] <= row["interval"][1] or math.isclose(row["difference"], 0)
        assert row["n"] == (3 if row["task"] == "ptb_tailored" else 12)
        assert (row["only_a"] is None) == (row["aggregation"] != "mean")
    from tailored_harness.suite import digest

    packed = digest.load(digest.write_digest(pruned, tmp_path / "pruned.json"), "pruned")
    assert run_samples.compare_runs(packed, runs[1]) == (rows, notes)
    from tailored_harness.suite.flips import flipped_documents

    flipped = 0
    for row in rows:
        if row["only_a"] is None or row["task"] == "ptb_tailored":
            continue
        found = flipped_documents(pruned, dense, row["task"], row["metric"], limit=100)
        flipped += found["count_a"] + found["count_b"]
        assert (found["count_a"], found["count_b"]) == (row["only_a"], row["only_b"]), row["task"]
        for side, other in (("a", "b"), ("b", "a")):
            for doc in found[f"only_{side}"]:  # what acc scored right is the gold choice, the other run's is not
                assert doc[f"answer_{side}"] == doc["gold"] != doc[f"answer_{other}"], (row["task"], doc)
                assert doc["context"] and doc["gold"] in doc["choices"]
    assert flipped > 0, "pruning half the tiny model changed no answer: nothing was checked"
    shorter = run_samples.load_run(_lm_eval(tiny_model_dir, "", 8, tmp_path / "shorter", ptb))
    with pytest.raises(TailoredError, match="scored 8 documents and"):
        run_samples.compare_runs(shorter, runs[1])


def test_report_tests_the_paired_claims_and_keeps_them_in_the_summary(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "boolq", {i: float(i % 3 != 0) for i in range(90)})
    b = _write_run(tmp_path / "b", "boolq", {i: float(i % 9 != 0) for i in range(90)})
    out = tmp_path / "summary.json"
    assert main(["report", "--run", f"dense={a}", "--run", f"p20={b}", "--paired", "p20=dense", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Paired on the same documents" in printed and "| p20 - dense" in printed
    (item,) = json.loads(out.read_text())["paired"]
    (row,) = item["rows"]
    assert (item["a"], item["b"], row["only_a"], row["only_b"], row["verdict"]) == ("p20", "dense", 20, 0, "better")
    assert main(["report", "--run", f"dense={a}", "--paired", "p50=dense"]) == 2
    assert "unknown configuration(s) p50 (valid: dense)" in capsys.readouterr().err


def test_detectable_difference_per_task_spans_the_pairs():
    rows = [{"task": "boolq", "metric": "acc,none", "n": 100, "minimum_detectable": v} for v in (0.05, 0.12, None)]
    summary = run_samples.detectable_by_task([{"rows": rows[:2]}, {"rows": rows[2:]}])
    assert summary == {"boolq acc,none": {"docs": 100, "smallest": 0.05, "largest": 0.12, "unreachable": 1}}
