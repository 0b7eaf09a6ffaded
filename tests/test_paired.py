"""Paired statistics against answers computed independently (tailored_harness/suite/paired.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailored_harness.suite import paired

pytestmark = pytest.mark.numeric


def _runs_with_flips(only_a: int, only_b: int, both: int = 40, neither: int = 30, seed: int = 0):
    """Two runs' 0/1 outcomes on the same documents, exactly ``only_a`` right only in A and ``only_b``
    only in B, in a shuffled order."""
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither)
    order = np.random.default_rng(seed).permutation(len(a))
    return a[order], b[order]


def _two_sided_binomial_tail(k: int, n: int) -> float:
    """P(a fair coin gives a split at least as uneven as k : n - k), from binomial coefficients."""
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("only_a, only_b", [(0, 10), (10, 0), (3, 12), (12, 3), (7, 7), (20, 31), (1, 0), (25, 4)])
def test_mcnemar_p_is_the_exact_binomial_tail_of_the_flips(only_a, only_b):
    a, b = _runs_with_flips(only_a, only_b)
    got_a, got_b, p = paired.mcnemar(a, b)
    assert (got_a, got_b) == (only_a, only_b)
    assert p == pytest.approx(_two_sided_binomial_tail(only_a, only_a + only_b), rel=1e-9, abs=1e-15)


def test_no_flip_is_no_evidence_and_identical_runs_have_a_zero_interval():
    a, b = _runs_with_flips(0, 0)
    assert paired.mcnemar(a, b) == (0, 0, 1.0)
    result = paired.compare_values(a, b, "mean", True)
    assert (result.difference, result.interval, result.verdict) == (0.0, (0.0, 0.0), paired.UNDECIDED)
    pages = np.array([[-300.0, 100.0], [-280.0, 90.0]])
    same = paired.compare_values(pages, pages, "weighted_perplexity", False)
    assert same.as_dict()["minimum_detectable"] is None and same.verdict == paired.UNDECIDED


def test_verdict_follows_mcnemar_and_the_metrics_direction():
    a, b = _runs_with_flips(30, 5)
    better = paired.compare_values(a, b, "mean", True)
    assert better.verdict == paired.BETTER and better.p_value < 0.05
    assert better.difference == pytest.approx(25 / len(a))
    assert paired.compare_values(b, a, "mean", True).verdict == paired.WORSE
    assert paired.compare_values(a, b, "mean", False).verdict == paired.WORSE  # lower is better
    assert paired.compare_values(*_runs_with_flips(8, 5), "mean", True).verdict == paired.UNDECIDED


def test_minimum_detectable_difference_is_the_least_significant_split():
    # 20 flips: 15:5 has p = 0.041 (< 0.05), 14:6 has p = 0.115, so the least detectable is (15 - 5) / n.
    assert _two_sided_binomial_tail(15, 20) < 0.05 < _two_sided_binomial_tail(14, 20)
    assert paired.minimum_detectable(200, 20, 0.05) == pytest.approx(10 / 200)
    assert paired.minimum_detectable(200, 4, 0.05) == math.inf  # 4:0 has p = 0.125


def _correlated_runs(rng: np.random.Generator, n: int, probabilities: tuple[float, float, float, float]):
    """``n`` documents drawn from a joint distribution over (A right, B right): probabilities of
    (both, only A, only B, neither)."""
    outcome = rng.choice(4, size=n, p=probabilities)
    return np.isin(outcome, (0, 1)).astype(float), np.isin(outcome, (0, 2)).astype(float)


def test_bootstrap_interval_covers_the_true_difference_in_at_least_90_of_100_trials():
    probabilities = (0.45, 0.15, 0.10, 0.30)
    true_difference = probabilities[1] - probabilities[2]
    rng = np.random.default_rng(2026)
    covered = 0
    for trial in range(100):
        a, b = _correlated_runs(rng, 400, probabilities)
        low, high = paired.bootstrap_interval(a, b, "mean", paired.PairedSpec(resamples=2000, seed=trial))
        covered += low <= true_difference <= high
    assert covered >= 90, f"the 95% interval covered the true difference in {covered} of 100 trials"


def test_perplexity_interval_covers_the_true_ratio_difference():
    """``(loglikelihood, words)`` pairs per document: the difference of lm-eval's weighted perplexity."""
    rng = np.random.default_rng(7)
    words = rng.integers(50, 400, size=(100, 300))
    per_word_a, shift = -3.0, -0.05  # B's per-word log-likelihood is a little lower: higher perplexity
    true_difference = math.exp(-per_word_a) - math.exp(-(per_word_a + shift))
    covered = 0
    for trial in range(100):
        noise = rng.normal(0.0, 0.3, size=(2, 300))
        a = np.stack([(per_word_a + noise[0]) * words[trial], words[trial]], axis=1)
        b = np.stack([(per_word_a + shift + noise[0] + 0.1 * noise[1]) * words[trial], words[trial]], axis=1)
        low, high = paired.bootstrap_interval(a, b, "weighted_perplexity", paired.PairedSpec(resamples=1000, seed=trial))
        covered += low <= true_difference <= high
    assert covered >= 90, f"the 95% interval covered the true difference in {covered} of 100 trials"


@pytest.mark.parametrize("aggregation", ["mean", "weighted_perplexity", "bits_per_byte", "perplexity"])
def test_aggregates_equal_lm_evals_own_aggregation(aggregation):
    from lm_eval.api.registry import get_aggregation

    rng = np.random.default_rng(3)
    if aggregation in ("weighted_perplexity", "bits_per_byte"):
        values = np.stack([-rng.uniform(1, 5, 50) * 100, rng.integers(50, 150, 50)], axis=1).astype(float)
        items = [tuple(v) for v in values]
    else:
        values = -rng.uniform(0, 3, 50) if aggregation == "perplexity" else rng.integers(0, 2, 50).astype(float)
        items = list(values)
    assert paired.aggregate(values, aggregation) == pytest.approx(get_aggregation(aggregation)(items), rel=1e-12)


def test_single_run_interval_covers_its_own_true_perplexity():
    rng = np.random.default_rng(11)
    covered = 0
    for trial in range(100):
        words = rng.integers(50, 400, 200)
        values = np.stack([(-3.0 + rng.normal(0, 0.3, 200)) * words, words], axis=1)
        low, high = paired.single_interval(values, "weighted_perplexity", paired.PairedSpec(resamples=1000, seed=trial))
        covered += low <= math.exp(3.0) <= high
    assert covered >= 90, f"the 95% interval covered the true perplexity in {covered} of 100 trials"


def test_spec_and_inputs_are_validated():
    with pytest.raises(ValueError, match="level=1.5"):
        paired.PairedSpec(level=1.5)
    with pytest.raises(ValueError, match="method='bca'.*valid: percentile, basic, BCa"):
        paired.PairedSpec(method="bca")
    with pytest.raises(ValueError, match="resamples=10"):
        paired.PairedSpec(resamples=10)
    with pytest.raises(ValueError, match="aggregation 'f1'"):
        paired.compare_values([1, 0], [0, 1], "f1", True)
    with pytest.raises(ValueError, match="'weighted_perplexity' takes pairs per document, got values of shape"):
        paired.compare_values([1, 0], [0, 1], "weighted_perplexity", False)
    with pytest.raises(ValueError, match="one shape"):
        paired.compare_values([1, 0], [0, 1, 1], "mean", True)
