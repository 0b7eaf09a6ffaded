"""benchmarks/recovery_table.py's paired comparison: the exact McNemar test on per-document
correctness, checked against the binomial sum written out."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def recovery_table():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling ``resumable``
    try:
        spec = importlib.util.spec_from_file_location("recovery_table", BENCHMARKS / "recovery_table.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def exact_two_sided(b: int, c: int) -> float:
    """min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2): the exact McNemar p-value by hand."""
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


@pytest.mark.parametrize("b, c", [(7, 1), (1, 7), (30, 18), (5, 5), (0, 3)])
def test_mcnemar_counts_discordant_documents_and_matches_the_binomial_sum(recovery_table, b, c):
    both, neither = 11, 4
    first = "1" * b + "0" * c + "1" * both + "0" * neither
    second = "0" * b + "1" * c + "1" * both + "0" * neither
    got_b, got_c, pvalue = recovery_table.mcnemar(first, second)
    assert (got_b, got_c) == (b, c)
    assert pvalue == pytest.approx(exact_two_sided(b, c), rel=1e-12)


def test_mcnemar_without_discordant_documents_is_one_and_refuses_other_documents(recovery_table):
    assert recovery_table.mcnemar("1010", "1010") == (0, 0, 1.0)
    with pytest.raises(SystemExit, match="paired rows score different documents"):
        recovery_table.mcnemar("101", "1010")


def test_paired_table_compares_each_recovery_at_each_ratio(recovery_table):
    def row(label, ratio, correct, norm=""):
        return {"label": label, "ratio": ratio, "tasks": {"boolq": {"correct": correct, "correct_norm": ""},
                                                          "piqa": {"correct": correct[::-1], "correct_norm": norm}}}

    rows = {"dense": row("dense", 0.0, "1111", "1111"), "pruned-0.2": row("pruned-0.2", 0.2, "0001", "0000"),
            "general-0.2": row("general-0.2", 0.2, "0011", "1000"), "task-0.2": row("task-0.2", 0.2, "1101", "1110")}
    lines = recovery_table.paired(rows, ["boolq", "piqa"]).splitlines()[2:]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [c[1] for c in cells] == ["general - pruned"] * 3 + ["task - pruned"] * 3 + ["task - general"] * 3
    assert [(c[2], c[3]) for c in cells[:3]] == [("boolq", "acc"), ("piqa", "acc"), ("piqa", "acc_norm")]
    assert [tuple(c[4:7]) for c in cells] == [
        ("+25.00", "1", "0"), ("+25.00", "1", "0"), ("+25.00", "1", "0"),
        ("+50.00", "2", "0"), ("+50.00", "2", "0"), ("+75.00", "3", "0"),
        ("+25.00", "2", "1"), ("+25.00", "2", "1"), ("+50.00", "2", "0")]


def test_yes_share_reads_answers_back_from_correctness_and_labels(recovery_table, tmp_path):
    labels = tmp_path / "validation.jsonl"
    labels.write_text("".join(f'{{"label": {gold}}}\n' for gold in (1, 1, 0, 0, 1)))
    rows = {"a": {"tasks": {"boolq": {"correct": "1010"}}}, "b": {"tasks": {"boolq": {"correct": "0000"}}},
            "c": {"tasks": {"piqa": {"correct": "1"}}}}
    # a: yes (right), no (wrong on a yes), no (right), yes (wrong on a no); b: every answer the wrong one
    assert recovery_table.yes_shares(rows, labels) == {"a": 0.5, "b": 0.5}
    rows["b"]["tasks"]["boolq"]["correct"] = "0011"  # no, no, no, no
    assert recovery_table.yes_shares(rows, labels)["b"] == 0.0
