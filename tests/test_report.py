"""Suite report: rows from lm-eval results, table text, atomic JSON writes."""

from __future__ import annotations

import json

import pytest

from tailored_harness.suite import report, run_files

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
    assert run_files.latest_results_file(tmp_path / "run").name == "results_1.json"
    out = report.write_json_atomic(tmp_path / "deep" / "suite.json", {"rows": []})
    assert json.loads(out.read_text()) == {"rows": []}
    assert [p.name for p in out.parent.iterdir()] == ["suite.json"]  # no temporary left behind


def _row(task, value, stderr=0.01, configuration="dense", metric="acc"):
    return {"task": task, "configuration": configuration, "metric": metric, "value": value, "stderr": stderr, "n": 500}


def test_percentage_of_dense_per_task_and_metric():
    rows = report.relative_to([_row("a", 0.8), _row("a", 0.6, configuration="p20"), _row("b", 0.0), _row("b", 0.5, configuration="p20")])
    assert [r["pct_of_dense"] for r in rows] == [100.0, 75.0, None, None]
    assert "75.0%" in report.format_table(rows) and "% of dense" in report.format_table(rows)


def test_seeded_configurations_are_summarised_over_seeds():
    rows = [_row("a", 0.5, configuration="p20_random_s0"), _row("a", 0.7, configuration="p20_random_s1"),
            _row("a", 0.9, configuration="p20_random_s12"), _row("b", 0.4, configuration="p20_random_s0"),
            _row("a", 0.8, configuration="p20_l2"), _row("a", 0.6, configuration="p50_taylor_s0")]
    summary = report.over_seeds(rows)
    assert summary == [{"task": "a", "configuration": "p20_random", "metric": "acc", "mean": pytest.approx(0.7),
                        "min": 0.5, "max": 0.9, "seeds": 3}]  # one seed is no summary; unseeded names are skipped
    table = report.format_over_seeds(summary)
    assert "p20_random" in table and "0.7000" in table and "0.5000 - 0.9000" in table


def test_recovery_is_the_mean_percentage_of_dense_over_accuracy_tasks():
    rows = report.relative_to([_row("a", 0.8), _row("b", 0.5), _row("q", 0.9, metric="exact_match"),
                               _row("a", 0.6, configuration="p20"), _row("b", 0.5, configuration="p20"),
                               _row("q", 0.1, configuration="p20", metric="exact_match")])
    (summary,) = report.recovery(rows)
    assert summary == {"configuration": "p20", "metric": "acc", "mean_pct_of_dense": 87.5, "tasks": 2, "seeds": 1,
                       "mean_pct_of_compared": None, "compared_to": None}
    table = report.format_recovery([summary], {"p20": 95.68})
    assert "87.50%" in table and "95.68%" in table


def test_recovery_averages_seeds_first_and_compares_with_the_same_adapters_on_dense():
    rows = [_row("a", 0.8), _row("b", 0.5),
            _row("a", 0.6, configuration="dense_adapt50_s0"), _row("a", 1.0, configuration="dense_adapt50_s1"),
            _row("b", 0.5, configuration="dense_adapt50_s0"), _row("b", 0.7, configuration="dense_adapt50_s1"),
            _row("a", 0.5, configuration="p20_adapt50_s0"), _row("a", 0.7, configuration="p20_adapt50_s1"),
            _row("b", 0.4, configuration="p20_adapt50_s0"), _row("b", 0.6, configuration="p20_adapt50_s1")]
    summary = {r["configuration"]: r for r in report.recovery(rows, compare={"p20_adapt50": "dense_adapt50"})}
    p20 = summary["p20_adapt50"]
    # means: dense a .8 b .5; dense_adapt50 a .8 b .6; p20_adapt50 a .6 b .5
    assert p20["seeds"] == 2 and p20["tasks"] == 2 and p20["compared_to"] == "dense_adapt50"
    assert p20["mean_pct_of_dense"] == pytest.approx((75.0 + 100.0) / 2)
    assert p20["mean_pct_of_compared"] == pytest.approx((75.0 + 500 / 6) / 2)
    assert summary["dense_adapt50"]["mean_pct_of_dense"] == pytest.approx((100.0 + 120.0) / 2)
    table = report.format_recovery(list(summary.values()), {})
    assert "79.17% of dense_adapt50" in table


def test_majority_and_chance_come_from_the_logged_samples_of_multiple_choice_tasks():
    two = {"gen_args_0": {}, "gen_args_1": {}}
    samples = [{"target": "1", "arguments": two}] * 3 + [{"target": "0", "arguments": two}]  # as lm-eval logs them
    assert run_files.label_baselines(samples) == {"majority": 0.75, "chance": 0.5, "n": 4}
    assert run_files.label_baselines([{"target": "Paris", "arguments": {"gen_args_0": {}}}]) is None
    # WinoGrande: the choices differ in context and share the continuation, which lm-eval logs as the
    # target; the gold choice is read off acc and the pick (two right picks of 0, one wrong pick of 0).
    shared = {f"gen_args_{i}": {"arg_0": f"option {i} ...", "arg_1": " went home."} for i in range(2)}
    picked_first = [["-1.0", "False"], ["-2.0", "False"]]
    wino = [{"target": " went home.", "arguments": shared, "filtered_resps": picked_first, "acc": acc}
            for acc in (1.0, 1.0, 0.0)]
    assert run_files.label_baselines(wino) == {"majority": 2 / 3, "chance": 0.5, "n": 3}
    three = {f"gen_args_{i}": {"arg_0": "c", "arg_1": " x"} for i in range(3)}  # three choices, wrong: unknown gold
    unknown = [{"target": " x", "arguments": three, "filtered_resps": picked_first + [["-3.0", "False"]], "acc": 0.0}]
    assert run_files.label_baselines(unknown) == {"majority": None, "chance": 1 / 3, "n": 1}
    rows = report.relative_to([_row("a", 0.8), _row("a", 0.6, configuration="p20")])
    table = report.format_table(rows, {"a": {"majority": 0.75, "chance": 0.5, "n": 4}})
    assert "majority class" in table and "0.7500" in table and "0.5000" in table


def test_check_flags_only_drops_beyond_the_allowance():
    spec = report.CheckSpec(z=2.0, floor=0.02)
    baseline = [_row("a", 0.90, 0.01), _row("b", 0.90, 0.0), _row("c", 0.90, 0.03), _row("gone", 0.5)]
    now = [_row("a", 0.85, 0.01), _row("b", 0.885, 0.0), _row("c", 0.80, 0.03), _row("new", 0.5)]
    by_task = {c.task: c for c in report.check(now, baseline, spec)}
    assert set(by_task) == {"a", "b", "c"}
    # a: drop 0.05 > 2 * hypot(0.01, 0.01) = 0.0283 -> regression
    assert by_task["a"].regressed and by_task["a"].allowance == pytest.approx(0.0282843, abs=1e-6)
    # b: zero stderr, drop 0.015 < floor 0.02 -> fine
    assert not by_task["b"].regressed and by_task["b"].allowance == 0.02
    # c: drop 0.10 > 2 * hypot(0.03, 0.03) = 0.0849 -> regression
    assert by_task["c"].regressed
    assert report.not_compared(now, baseline) == (["gone/dense/acc"], ["new/dense/acc"])
    improved = report.check([_row("a", 0.99)], baseline, spec)
    assert not improved[0].regressed
    table = report.format_regressions(list(by_task.values()))
    assert "| a " in table and "| c " in table and "| b " not in table


def test_perplexity_regresses_when_it_rises_relative_to_its_baseline():
    """lm-eval marks perplexity lower-is-better; a rise beyond the allowance (relative: floor 2%) is
    the regression, a fall is an improvement."""
    results = {"results": {"wikitext": {"word_perplexity,none": 40.0, "word_perplexity_stderr,none": "N/A",
                                        "bits_per_byte,none": 0.9}},
               "higher_is_better": {"wikitext": {"word_perplexity": False, "bits_per_byte": False}}}
    rows = report.rows_from_results(results, "dense")
    assert [r["higher_is_better"] for r in rows] == [False, False]
    assert report.rows_from_results(RESULTS, "dense")[0]["higher_is_better"] is True  # absent: higher is better
    spec = report.CheckSpec(z=2.0, floor=0.02)

    def compare(value):
        now = [dict(rows[1], value=value)]
        (comparison,) = report.check(now, [{k: v for k, v in rows[1].items() if k != "higher_is_better"}], spec)
        return comparison

    assert compare(40.6).drop == pytest.approx(0.015) and not compare(40.6).regressed  # +1.5% < 2%
    assert compare(41.0).regressed and compare(41.0).allowance == 0.02  # +2.5%
    assert not compare(30.0).regressed and compare(30.0).drop == pytest.approx(-0.25)
    assert "+2.5% (lower is better)" in report.format_regressions([compare(41.0)])


def test_check_spec_is_validated():
    with pytest.raises(ValueError, match="floor=1.5"):
        report.CheckSpec(floor=1.5)
    with pytest.raises(ValueError, match="z=0"):
        report.CheckSpec(z=0)


def _run_folder(tmp_path, name, boolq_acc):
    results = {"results": {"boolq": {"acc,none": boolq_acc, "acc_stderr,none": 0.01}}, "n-samples": {"boolq": {"effective": 500}}}
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True)
    (folder / "results_1.json").write_text(json.dumps(results))
    return folder


def test_report_command_updates_then_checks_the_baseline(tmp_path, capsys):
    from tailored_harness.cli import main as cli

    baseline = tmp_path / "baseline.json"
    good, bad = _run_folder(tmp_path, "good", 0.90), _run_folder(tmp_path, "bad", 0.80)
    assert cli.main(["report", "--run", f"dense={good}", "--baseline", str(baseline)]) == 2
    assert "create it with --update-baseline" in capsys.readouterr().err
    assert cli.main(["report", "--run", f"dense={good}", "--baseline", str(baseline), "--update-baseline"]) == 0
    assert json.loads(baseline.read_text())["rows"][0]["value"] == 0.90
    capsys.readouterr()
    assert cli.main(["report", "--run", f"dense={good}", "--baseline", str(baseline)]) == 0
    assert "regression check passed: 1 metrics" in capsys.readouterr().out
    assert cli.main(["report", "--run", f"dense={bad}", "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "| boolq" in out and "-0.1000" in out and "0.0283" in out
    baseline.write_text("{ not json")
    assert cli.main(["report", "--run", f"dense={good}", "--baseline", str(baseline)]) == 2
    assert "recreate it with --update-baseline" in capsys.readouterr().err


def test_paper_table_has_perplexity_then_accuracy_and_the_mean_of_complete_rows():
    from tailored_harness.suite.paper_table import format_paper_table, paper_table

    def row(task, configuration, metric, value):
        return {"task": task, "configuration": configuration, "metric": metric, "value": value, "stderr": None}

    rows = [row("wikitext", "dense", "word_perplexity", 34.64), row("boolq", "dense", "acc", 0.6),
            row("piqa", "dense", "acc", 0.7), row("piqa", "dense", "acc_norm", 0.9),
            row("boolq", "p20_adapt50_s0", "acc", 0.5), row("boolq", "p20_adapt50_s1", "acc", 0.6),
            row("piqa", "p20_adapt50_s0", "acc", 0.6), row("piqa", "p20_adapt50_s1", "acc", 0.6),
            row("piqa", "p50", "acc", 0.55)]
    headers, lines = paper_table(rows)
    assert headers == ["configuration", "wikitext ppl", "boolq", "piqa", "mean acc"]
    assert lines == [["dense", "34.6", "60.00", "70.00", "65.00"],
                     ["p20_adapt50", "", "55.00 (2 seeds)", "60.00 (2 seeds)", "57.50"],
                     ["p50", "", "", "55.00", ""]]  # no BoolQ score: no mean
    assert "| p20_adapt50 " in format_paper_table(rows) and format_paper_table(RESULTS_ROWS_NONE) == ""


RESULTS_ROWS_NONE = [{"task": "qa", "configuration": "dense", "metric": "exact_match", "value": 0.5, "stderr": None}]
