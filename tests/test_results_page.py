"""results/README.md's tables are made from the committed summaries (suite/results_page.py)."""

from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite.results_page import END, begin, refreshed


def test_the_results_page_tables_are_the_committed_summaries():
    page = REPO_ROOT / "results" / "README.md"
    text = page.read_text()
    assert text.count(END) >= 2
    assert refreshed(text, page) == text, "run: tailored tables --write results/README.md"


def _summary(path, acc):
    rows = [{"task": "boolq", "configuration": name, "metric": "acc", "value": value, "stderr": 0.01, "n": 100}
            for name, value in acc.items()]
    path.write_text(json.dumps({"rows": rows}))


def test_a_table_follows_its_summary_and_the_rest_of_the_page_stays(tmp_path, capsys):
    from tailored_harness.cli.main import main

    _summary(tmp_path / "s.json", {"dense": 0.5, "p20": 0.25})
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{begin('s.json')}\n| stale |\n{END}\nnotes\n")
    assert main(["tables", "--check", str(page)]) == 1
    assert main(["tables", "--write", str(page)]) == 0 and main(["tables", "--check", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{END}\nnotes\n") and "| stale |" not in text
    lines = [line.replace(" ", "") for line in text.splitlines() if line.startswith("| ") and "configuration" not in line]
    assert lines == ["|dense|50.00|", "|p20|25.00|"]  # 100 x value, one row per configuration, in order
    _summary(tmp_path / "s.json", {"dense": 0.5, "p20": 0.3})  # the summary moved: the page is stale
    assert main(["tables", "--check", str(page)]) == 1


def test_a_missing_summary_or_marker_is_one_clear_error(tmp_path):
    page = tmp_path / "README.md"
    with pytest.raises(TailoredError, match="nope.json"):
        refreshed(f"{begin('nope.json')}\n{END}\n", page)
    with pytest.raises(TailoredError, match="marks no table"):
        refreshed("no markers here\n", page)
    with pytest.raises(TailoredError, match="no closing line"):
        refreshed(f"{begin('s.json')}\n", page)
