"""Plots of suite summaries: the series and points computed from a summary, a PNG written atomically,
and ``tailored report --plot``."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import plot

DENSE_PARAMS = 1000


def _info(ratio: float, shots: int, kept: int, importance: str | None = "param_first") -> dict:
    return {"prune_ratio": ratio, "importance": importance if ratio else None, "calibration": "tasks" if ratio else None,
            "parameters": kept, "parameters_dense": DENSE_PARAMS, "shots": shots}


def _row(task: str, configuration: str, value: float, stderr: float = 0.02) -> dict:
    return {"task": task, "configuration": configuration, "metric": "acc", "value": value, "stderr": stderr, "n": 100}


SUMMARY = {
    "name": "toy",
    "rows": [_row("boolq", "dense", 0.60), _row("boolq", "p20", 0.50), _row("boolq", "p50", 0.40),
             _row("boolq", "p20_adapt_s0", 0.58, 0.01), _row("boolq", "p20_adapt_s1", 0.62, 0.03),
             _row("boolq", "dense_adapt_s0", 0.70),
             _row("piqa", "dense", 0.80), _row("piqa", "p20", 0.70), _row("piqa", "p50", 0.60),
             _row("piqa", "p20_adapt_s0", 0.76), _row("piqa", "p20_adapt_s1", 0.78), _row("piqa", "dense_adapt_s0", 0.82)],
    "configurations": {"dense": _info(0, 0, DENSE_PARAMS), "p20": _info(0.2, 0, 850), "p50": _info(0.5, 0, 650),
                       "p20_adapt_s0": _info(0.2, 50, 850), "p20_adapt_s1": _info(0.2, 50, 850),
                       "dense_adapt_s0": _info(0, 50, DENSE_PARAMS)},
    "paper": {"p20_adapt": 95.68},
    "label_baselines": {"boolq": {"majority": 0.62, "chance": 0.5, "n": 100}},
}


def _series(panel: plot.Panel) -> dict[str, list[tuple]]:
    return {s.label: [(p.x, round(p.y, 6), p.configuration) for p in s.points] for s in panel.series}


def test_points_per_series_with_seeds_averaged_and_dense_first():
    boolq, piqa, mean = plot.plot_data([SUMMARY])
    assert [boolq.title, piqa.title, mean.title] == ["boolq", "piqa", plot.MEAN_PANEL]
    assert _series(boolq) == {
        "pruned only, param_first": [(100.0, 0.6, "dense"), (85.0, 0.5, "p20"), (65.0, 0.4, "p50")],
        "pruned + adapted (50 shots), param_first": [(100.0, 0.7, "dense_adapt"), (85.0, 0.6, "p20_adapt")],
    }
    adapted = next(s for s in boolq.series if s.adapted)
    assert adapted.points[1].seeds == 2 and adapted.points[1].yerr == pytest.approx(0.02)  # mean of 0.01 and 0.03
    assert boolq.reference_lines == {"majority class": 0.62} and piqa.reference_lines == {}
    means = _series(mean)
    assert means["pruned only, param_first"][1] == (85.0, round(100 * (0.5 / 0.6 + 0.7 / 0.8) / 2, 6), "p20")
    assert mean.marks == [(85.0, 95.68, "published figure (--paper)")]


def test_query_head_units_are_a_series_of_their_own():
    """Two configurations differing only in the attention unit are two series, the finer one labelled."""
    rows = SUMMARY["rows"] + [_row("boolq", "q20", 0.55)]
    configurations = dict(SUMMARY["configurations"], q20=dict(_info(0.2, 0, 850), attention_unit="query_head"))
    boolq = plot.plot_data([dict(SUMMARY, rows=rows, configurations=configurations)])[0]
    series = _series(boolq)
    assert series["pruned only, param_first"] == [(100.0, 0.6, "dense"), (85.0, 0.5, "p20"), (65.0, 0.4, "p50")]
    assert series["pruned only, param_first, query_head units"] == [(100.0, 0.6, "dense"), (85.0, 0.55, "q20")]


def test_two_summaries_are_told_apart_in_the_labels():
    other = dict(SUMMARY, name="other")
    boolq = plot.plot_data([SUMMARY, other])[0]
    labels = [s.label for s in boolq.series]
    assert "toy: pruned only, param_first" in labels and "other: pruned only, param_first" in labels


def test_summary_without_configurations_reads_them_from_its_sources(tmp_path):
    results = {"results": {}, "config": {"model": "tailored", "model_num_parameters": 10, "tailored": {
        "spec": {"prune_ratio": 0.5, "importance": "l2", "calibration": "tasks", "shots": 50},
        "pruning": {"parameters_before": 10, "parameters_after": 6}, "adapters": {}}}}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "results_x.json").write_text(json.dumps(results))
    (tmp_path / "s.json").write_text(json.dumps({"rows": [], "sources": {"p50": "runs/results_x.json"}}))
    loaded = plot.load_summary(tmp_path / "s.json")
    assert loaded["configurations"]["p50"] == {"prune_ratio": 0.5, "importance": "l2", "calibration": "tasks",
                                               "attention_unit": "kv_group", "parameters": 6,
                                               "parameters_dense": 10, "shots": 0}
    with pytest.raises(TailoredError, match="not a suite summary"):
        (tmp_path / "bad.json").write_text("[]")
        plot.load_summary(tmp_path / "bad.json")


def test_draw_writes_a_png_atomically_and_refuses_other_names(tmp_path):
    pytest.importorskip("matplotlib")
    out = plot.draw(plot.plot_data([SUMMARY]), tmp_path / "figs" / "suite.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["suite.png"]  # no temporary file left
    with pytest.raises(TailoredError, match="must name a .png file"):
        plot.draw(plot.plot_data([SUMMARY]), tmp_path / "suite.pdf")


def test_report_cli_plots_summaries_and_explains_what_it_needs(tmp_path):
    pytest.importorskip("matplotlib")
    summary = tmp_path / "toy.json"
    summary.write_text(json.dumps(SUMMARY))
    made = run_cli(["tailored", "report", "--summary", str(summary), "--plot", str(tmp_path / "toy.png")])
    assert made.returncode == 0, made.stderr[-2000:]
    assert (tmp_path / "toy.png").read_bytes()[:4] == b"\x89PNG"
    missing = run_cli(["tailored", "report", "--summary", str(summary)])
    assert missing.returncode == 2 and "--summary FILE with --plot FILE.png" in missing.stderr
