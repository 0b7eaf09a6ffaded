"""Suite report: rows from lm-eval results, table text, atomic JSON writes."""

from __future__ import annotations

import json

from tailored_harness import report

RESULTS = {
    "results": {
        "piqa": {"alias": "piqa", "acc,none": 0.75, "acc_stderr,none": 0.02, "acc_norm,none": 0.5, "acc_norm_stderr,none": "N/A", "sample_len": 10},
        "boolq": {"alias": "boolq", "acc,none": 0.625, "acc_stderr,none": 0.01},
    },
    "n-samples": {"piqa": {"effective": 10}, "boolq": {"effective": 8}},
}


def test_rows_keep_metrics_and_stderr_only():
    rows = report.rows_from_results(RESULTS, "dense")
    assert [(r["task"], r["metric"], r["value"], r["stderr"], r["n"]) for r in rows] == [
        ("boolq", "acc", 0.625, 0.01, 8),
        ("piqa", "acc", 0.75, 0.02, 10),
        ("piqa", "acc_norm", 0.5, None, 10),
    ]
    assert {r["configuration"] for r in rows} == {"dense"}


def test_table_shows_value_and_stderr():
    table = report.format_table(report.rows_from_results(RESULTS, "dense"))
    assert "0.7500 ± 0.0200" in table and "0.5000 " in table and "configuration" in table


def test_latest_results_file_and_atomic_json(tmp_path):
    run = tmp_path / "run" / "model"
    run.mkdir(parents=True)
    (run / "results_1.json").write_text(json.dumps(RESULTS))
    assert report.latest_results_file(tmp_path / "run").name == "results_1.json"
    out = report.write_json_atomic(tmp_path / "deep" / "suite.json", {"rows": []})
    assert json.loads(out.read_text()) == {"rows": []}
    assert [p.name for p in out.parent.iterdir()] == ["suite.json"]  # no temporary left behind
