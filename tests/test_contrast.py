"""Contrasts of two paired effects (tailored_harness/suite/contrast.py, ``tailored contrast``), checked
against the paired comparison they extend and against a computation of their own."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tailored_harness.cli.main import main
from tailored_harness.core.errors import TailoredError
from tailored_harness.suite import contrast, paired, run_samples
from test_run_samples import _write_run

pytestmark = pytest.mark.numeric

SPEC = paired.PairedSpec(resamples=2000)


def _outcomes(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_against_a_second_effect_of_zero_the_contrast_is_the_paired_comparison_exactly():
    a, b, c = _outcomes(400, 0.6, 1), _outcomes(400, 0.5, 2), _outcomes(400, 0.4, 3)
    result = contrast.contrast_values(a, b, c, c, "mean", True, SPEC)
    plain = paired.compare_values(a, b, "mean", True, SPEC)
    # Same documents drawn (same n, same seed), same statistic: the very same interval.
    assert (result.first, result.second, result.contrast) == (plain.difference, 0.0, plain.difference)
    assert result.interval == plain.interval and result.verdict == plain.verdict


def test_the_contrast_of_means_is_the_mean_of_per_document_contrasts_and_its_interval_the_normal_one():
    n = 3000
    a1, b1 = _outcomes(n, 0.55, 4), _outcomes(n, 0.65, 5)
    a2, b2 = _outcomes(n, 0.60, 6), _outcomes(n, 0.62, 7)
    result = contrast.contrast_values(a1, b1, a2, b2, "mean", True, paired.PairedSpec())
    per_document = (a1 - b1) - (a2 - b2)
    assert result.contrast == pytest.approx(per_document.mean(), abs=1e-12)
    half = 1.959964 * per_document.std(ddof=1) / math.sqrt(n)  # the normal approximation, computed apart
    low, high = result.interval
    assert low == pytest.approx(per_document.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(per_document.mean() + half, abs=0.1 * half)
    assert result.minimum_detectable == pytest.approx(half, rel=0.1)


def test_swapping_the_effects_negates_the_contrast_and_mirrors_its_interval():
    a1, b1, a2, b2 = (_outcomes(500, p, s) for p, s in ((0.5, 8), (0.7, 9), (0.6, 10), (0.6, 11)))
    forward = contrast.contrast_values(a1, b1, a2, b2, "mean", True, SPEC)
    back = contrast.contrast_values(a2, b2, a1, b1, "mean", True, SPEC)
    assert back.contrast == pytest.approx(-forward.contrast, abs=1e-12)
    assert back.interval == pytest.approx((-forward.interval[1], -forward.interval[0]), abs=1e-9)
    assert {forward.verdict, back.verdict} in ({paired.UNDECIDED}, {paired.BETTER, paired.WORSE})


def test_the_verdict_reads_the_interval_after_the_metrics_direction():
    dense = np.ones(600)
    loses_a_third = np.where(np.arange(600) % 3 == 0, 0.0, 1.0)
    loses_nothing = np.ones(600)
    worse = contrast.contrast_values(loses_a_third, dense, loses_nothing, dense, "mean", True, SPEC)
    assert worse.contrast == pytest.approx(-1 / 3) and worse.verdict == paired.WORSE
    assert contrast.contrast_values(loses_a_third, dense, loses_nothing, dense, "mean", False, SPEC).verdict == paired.BETTER
    same = contrast.contrast_values(loses_a_third, dense, loses_a_third, dense, "mean", True, SPEC)
    assert (same.contrast, same.interval, same.verdict) == (0.0, (0.0, 0.0), paired.UNDECIDED)
    assert same.as_dict()["minimum_detectable"] is None


def test_the_ratio_scale_contrasts_the_share_each_run_keeps_and_perplexity_pairs_aggregate_as_lm_eval_does():
    rng = np.random.default_rng(12)
    pages = [np.column_stack([-rng.uniform(200, 400, 40) * k, rng.uniform(80, 120, 40)]) for k in (1.0, 1.3, 1.0, 1.6)]
    pages[2][:, 1] = pages[0][:, 1]
    pages[3][:, 1] = pages[0][:, 1]  # the same words: lm-eval's weights are a page's word count
    pages[1][:, 1] = pages[0][:, 1]
    result = contrast.contrast_values(pages[1], pages[0], pages[3], pages[2], "weighted_perplexity", False, SPEC, "ratio")

    def word_perplexity(p):
        return math.exp(-p[:, 0].sum() / p[:, 1].sum())

    first = word_perplexity(pages[1]) / word_perplexity(pages[0])
    second = word_perplexity(pages[3]) / word_perplexity(pages[2])
    assert (result.first, result.second) == (pytest.approx(first, rel=1e-12), pytest.approx(second, rel=1e-12))
    assert result.interval[0] <= result.contrast <= result.interval[1]
    assert result.verdict == paired.BETTER  # the first change multiplies perplexity by less


def test_bad_values_are_refused_naming_the_valid_choices():
    a = np.ones(5)
    with pytest.raises(ValueError, match=r"aggregation 'median' has no paired statistic \(valid: mean, perplexity"):
        contrast.contrast_values(a, a, a, a, "median", True)
    with pytest.raises(ValueError, match=r"scale='log' is not a scale \(valid: difference, ratio\)"):
        contrast.contrast_values(a, a, a, a, "mean", True, scale="log")
    with pytest.raises(ValueError, match=r"one shape .* \(5,\), \(5,\), \(4,\), \(5,\)"):
        contrast.contrast_values(a, a, np.ones(4), a, "mean", True)


def _four_runs(tmp_path, n=80):
    values = [{i: float(v) for i, v in enumerate(_outcomes(n, p, s))} for p, s in ((0.5, 13), (0.7, 14), (0.6, 15), (0.6, 16))]
    return [_write_run(tmp_path / name, "boolq", v) for name, v in zip(("g20", "g0", "s20", "s0"), values)], values


def test_runs_are_contrasted_document_by_document_and_different_documents_refused(tmp_path):
    folders, values = _four_runs(tmp_path)
    runs = [run_samples.load_run(f) for f in folders]
    (row,), notes = contrast.contrast_runs((runs[0], runs[1]), (runs[2], runs[3]), SPEC)
    arrays = [np.array([v[i] for i in range(80)]) for v in values]
    expected = contrast.contrast_values(*arrays, "mean", True, SPEC)
    assert (row["task"], row["metric"], row["n"], notes) == ("boolq", "acc,none", 80, [])
    assert row["contrast"] == expected.contrast and row["interval"] == list(expected.interval)
    other = run_samples.load_run(_write_run(tmp_path / "other", "boolq", values[3], {7: "changed"}))
    with pytest.raises(TailoredError, match=r"task 'boolq': doc_id 7 is a different document in g20 and other"):
        contrast.contrast_runs((runs[0], runs[1]), (runs[2], other), SPEC)
    with pytest.raises(TailoredError, match=r"task\(s\) piqa not scored by all of g20, g0, s20, s0 \(valid: boolq\)"):
        contrast.contrast_runs((runs[0], runs[1]), (runs[2], runs[3]), SPEC, tasks=["piqa"])


def test_contrast_command_prints_the_table_and_the_same_numbers_as_json(tmp_path, capsys):
    folders, _ = _four_runs(tmp_path)
    names = [f"{name}={folder}" for name, folder in zip(("g20", "g0", "s20", "s0"), folders)]
    assert main(["contrast", *names, "--resamples", "500", "--scale", "ratio"]) == 0
    table = capsys.readouterr().out
    assert "(g20 / g0) against (s20 / s0):" in table and "| boolq" in table
    assert main(["contrast", *names, "--resamples", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    runs = [run_samples.load_run(f) for f in folders]
    (expected,), _ = contrast.contrast_runs((runs[0], runs[1]), (runs[2], runs[3]), paired.PairedSpec(resamples=500))
    assert (out["first"], out["scale"], row["contrast"], row["interval"]) == ("g20 - g0", "difference",
                                                                               expected["contrast"], expected["interval"])
    assert main(["contrast", *names[:3]]) == 2
    assert "give four runs, A1 B1 A2 B2" in capsys.readouterr().err
