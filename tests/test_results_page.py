"""results/README.md's tables are made from the committed summaries (suite/results_page.py)."""

from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite.results_page import begin, end, refreshed


def test_the_results_page_tables_are_the_committed_summaries():
    page = REPO_ROOT / "results" / "README.md"
    text = page.read_text()
    assert text.count(end()) >= 2
    assert refreshed(text, page) == text, "run: tailored tables --write results/README.md"


def _summary(path, acc):
    rows = [{"task": "boolq", "configuration": name, "metric": "acc", "value": value, "stderr": 0.01, "n": 100}
            for name, value in acc.items()]
    path.write_text(json.dumps({"rows": rows}))


def test_a_table_follows_its_summary_and_the_rest_of_the_page_stays(tmp_path, capsys):
    from tailored_harness.cli.main import main

    _summary(tmp_path / "s.json", {"dense": 0.5, "p20": 0.25})
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{begin('s.json')}\n| stale |\n{end()}\nnotes\n")
    assert main(["tables", "--check", str(page)]) == 1
    assert main(["tables", "--write", str(page)]) == 0 and main(["tables", "--check", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{end()}\nnotes\n") and "| stale |" not in text
    lines = [line.replace(" ", "") for line in text.splitlines() if line.startswith("| ") and "configuration" not in line]
    assert lines == ["|dense|50.00|", "|p20|25.00|"]  # 100 x value, one row per configuration, in order
    _summary(tmp_path / "s.json", {"dense": 0.5, "p20": 0.3})  # the summary moved: the page is stale
    assert main(["tables", "--check", str(page)]) == 1


def test_a_missing_summary_or_marker_is_one_clear_error(tmp_path):
    page = tmp_path / "README.md"
    with pytest.raises(TailoredError, match="nope.json"):
        refreshed(f"{begin('nope.json')}\n{end()}\n", page)
    with pytest.raises(TailoredError, match="marks no table"):
        refreshed("no markers here\n", page)
    with pytest.raises(TailoredError, match="no closing line"):
        refreshed(f"{begin('s.json')}\n", page)


def _paired_summary(path, difference):
    row = {"task": "boolq", "metric": "acc,none", "aggregation": "mean", "n": 200, "a": 0.6, "b": 0.6 - difference,
           "difference": difference, "interval": [difference - 0.03, difference + 0.03], "only_a": 30, "only_b": 20,
           "p_value": 0.2026, "minimum_detectable": 0.04, "higher_is_better": True, "verdict": "undecided"}
    path.write_text(json.dumps({"rows": [], "paired": [{"a": "qlora", "b": "lora", "rows": [row], "notes": []}]}))


def test_a_paired_table_lists_each_claim_of_its_summary(tmp_path):
    _paired_summary(tmp_path / "m.json", 0.05)
    page = tmp_path / "README.md"
    text = refreshed(f"{begin('m.json', 'paired')}\n{end('paired')}\n", page)
    body = [line.replace(" ", "").split("|")[1:-1] for line in text.splitlines() if line.startswith("| qlora")]
    assert body == [["qlora-lora", "boolq", "acc,none", "200", "0.6000", "0.5500", "+0.0500", "[+0.0200,+0.0800]",
                     "30/20", "0.203", "0.0400", "undecided"]]
    assert "95% paired interval" in text and "McNemar p" in text
    _paired_summary(tmp_path / "m.json", 0.06)
    assert refreshed(text, page) != text


def test_tables_of_both_kinds_share_a_page_and_bad_markers_are_one_clear_error(tmp_path):
    _summary(tmp_path / "s.json", {"dense": 0.5})
    _paired_summary(tmp_path / "m.json", 0.05)
    page = tmp_path / "README.md"
    text = refreshed(f"{begin('s.json')}\n{end()}\nmid\n{begin('m.json', 'paired')}\n{end('paired')}\n", page)
    assert "| dense" in text and "| qlora - lora" in text and "\nmid\n" in text
    with pytest.raises(TailoredError, match="'tally' is not a kind of table .valid: paper, paired"):
        refreshed(f"{begin('s.json', 'tally')}\n{end('tally')}\n", page)
    with pytest.raises(TailoredError, match="s.json has no paired comparisons"):
        refreshed(f"{begin('s.json', 'paired')}\n{end('paired')}\n", page)
    with pytest.raises(TailoredError, match="no closing line '<!-- end of the paired table -->'"):
        refreshed(f"{begin('m.json', 'paired')}\n{end()}\n", page)


def _two_task_summary(path, values):
    rows = [{"task": task, "configuration": name, "metric": "acc", "value": value, "stderr": 0.01, "n": 100}
            for (name, task), value in values.items()]
    path.write_text(json.dumps({"rows": rows}))


def test_a_models_table_puts_each_configuration_of_both_models_side_by_side(tmp_path):
    _two_task_summary(tmp_path / "a.json", {("dense", "boolq"): 0.5, ("dense", "piqa"): 0.6,
                                            ("p20", "boolq"): 0.4, ("p20", "piqa"): 0.6})
    _two_task_summary(tmp_path / "b.json", {("dense", "boolq"): 0.8, ("p20", "boolq"): 0.4})
    text = refreshed(f"{begin('a=a.json,b=b.json', 'models')}\n{end('models')}\n", tmp_path / "README.md")
    lines = [line.replace(" ", "").split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    assert lines == [["configuration", "model", "boolq", "piqa", "meanacc", "meanacc,%ofdense"],
                     ["dense", "a", "50.00", "60.00", "55.00", "100.00"],
                     ["dense", "b", "80.00", "", "", "100.00"],
                     ["p20", "a", "40.00", "60.00", "50.00", "90.00"],  # (40/50 + 60/60) / 2
                     ["p20", "b", "40.00", "", "", "50.00"]]
    with pytest.raises(TailoredError, match="'b.json' in a models table must look like LABEL=FILE"):
        refreshed(f"{begin('a=a.json,b.json', 'models')}\n{end('models')}\n", tmp_path / "README.md")


def test_a_summary_without_rows_is_one_clear_error_for_the_paper_and_models_tables(tmp_path):
    _paired_summary(tmp_path / "m.json", 0.05)  # rows: [] (a paired-only summary)
    _two_task_summary(tmp_path / "a.json", {("dense", "boolq"): 0.5})
    page = tmp_path / "README.md"
    with pytest.raises(TailoredError, match="m.json has no accuracy or perplexity rows"):
        refreshed(f"{begin('m.json')}\n{end()}\n", page)
    with pytest.raises(TailoredError, match="m.json has no accuracy or perplexity rows"):
        refreshed(f"{begin('a=a.json,m=m.json', 'models')}\n{end('models')}\n", page)
