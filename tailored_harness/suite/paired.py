"""Paired statistics of two runs scored on the same documents.

Two configurations evaluated on the same documents are paired: most documents get the same answer
from both, and only those that flip carry information about the difference. lm-eval reports one
stderr per task and nothing about the difference of two runs; this module gives it.

Pure core over per-document values, one array per run, documents aligned (index ``i`` is the same
document in both):

* :func:`mcnemar`: for 0/1 metrics (accuracy), the documents only one run gets right and the exact
  two-sided McNemar p-value (scipy's binomial test of one side's count among the discordant ones);
* :func:`bootstrap_interval`: the difference of the task's aggregate (a mean, or lm-eval's weighted
  perplexity over ``(loglikelihood, weight)`` pairs) with a paired bootstrap interval, documents
  resampled together (scipy's ``bootstrap`` with ``paired=True``, seeded);
* :func:`minimum_detectable`: the smallest difference this many documents with this many flips could
  have called significant;
* :func:`compare_values`: all of it and a one-word verdict, as one :class:`PairedResult`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

#: Verdicts of run A against run B, from A's side, after the metric's direction.
BETTER, WORSE, UNDECIDED = "better", "worse", "undecided"
BOOTSTRAP_METHODS = ("percentile", "basic", "BCa")


@dataclasses.dataclass(frozen=True)
class PairedSpec:
    """How a paired comparison is tested.

    ``level``: the significance level of the verdict (the interval's confidence is ``1 - level``);
    ``resamples``: bootstrap resamples of the documents; ``seed``: the bootstrap's generator, so the
    same runs give the same interval; ``method``: scipy's bootstrap interval method (percentile is
    stable when most per-document differences are zero, where BCa's acceleration is undefined).
    """

    level: float = 0.05
    resamples: int = 10_000
    seed: int = 0
    method: str = "percentile"

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level={self.level} must be in (0, 1)")
        if self.resamples < 100:
            raise ValueError(f"resamples={self.resamples} must be at least 100")
        if self.method not in BOOTSTRAP_METHODS:
            raise ValueError(f"method={self.method!r} is not a bootstrap method (valid: {', '.join(BOOTSTRAP_METHODS)})")

    @property
    def confidence(self) -> float:
        return 1 - self.level


@dataclasses.dataclass(frozen=True)
class PairedResult:
    """One task and metric of run A against run B on ``n`` shared documents.

    ``difference`` is ``a - b`` of the task's aggregate, ``interval`` its bootstrap interval;
    ``only_a``/``only_b``/``p_value`` are set for 0/1 metrics (McNemar), ``None`` otherwise;
    ``p_value`` for other metrics is ``None`` and the verdict reads the interval.
    """

    a: float
    b: float
    difference: float
    interval: tuple[float, float]
    n: int
    higher_is_better: bool
    verdict: str
    minimum_detectable: float
    only_a: int | None = None
    only_b: int | None = None
    p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: an undefined interval (one document) and an unreachable minimum are ``None``."""
        out = dataclasses.asdict(self)
        out["interval"] = [None if math.isnan(x) else x for x in self.interval]
        if math.isinf(self.minimum_detectable) or math.isnan(self.minimum_detectable):
            out["minimum_detectable"] = None
        return out


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test of two runs' 0/1 outcomes on the same documents.

    ``a``, ``b``: shape ``(n,)``, 1 where the run got the document right. Returns ``(only_a, only_b,
    p)``: the documents only A gets right, only B gets right, and the two-sided exact p-value of
    ``only_a`` among the ``only_a + only_b`` discordant documents under a fair coin (1.0 when none
    is discordant: nothing tells the runs apart).
    """
    from scipy.stats import binomtest

    a, b = np.asarray(a), np.asarray(b)
    only_a = int(np.sum((a == 1) & (b == 0)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    discordant = only_a + only_b
    return only_a, only_b, float(binomtest(only_a, discordant, 0.5).pvalue) if discordant else 1.0


def _weighted(transform: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    """A run's aggregate over ``(loglikelihood, weight)`` pairs: ``transform(sum(ll) / sum(w))``."""
    def statistic(ll, w, axis=-1):
        return transform(np.sum(ll, axis=axis) / np.sum(w, axis=axis))
    return statistic


#: lm-eval's aggregations (by their registry name) as vectorised statistics of one run's documents,
#: with the number of columns a document's value has: a scalar for ``mean`` and ``perplexity`` (of
#: log-likelihoods), a ``(loglikelihood, weight)`` pair for the weighted ones, as lm-eval logs them.
AGGREGATIONS: dict[str, tuple[Callable[..., np.ndarray], int]] = {
    "mean": (lambda v, axis=-1: np.mean(v, axis=axis), 1),
    "perplexity": (lambda v, axis=-1: np.exp(-np.mean(v, axis=axis)), 1),
    "weighted_perplexity": (_weighted(lambda x: np.exp(-x)), 2),
    "bits_per_byte": (_weighted(lambda x: -x / math.log(2)), 2),
}


def columns(values: np.ndarray, aggregation: str) -> tuple[np.ndarray, ...]:
    """``(n,)`` or ``(n, 2)`` values as the statistic's column arguments, checked against its arity."""
    width = AGGREGATIONS[aggregation][1]
    if (values.ndim == 1 and width == 1) or (values.ndim == 2 and values.shape[1] == width == 2):
        return (values,) if width == 1 else (values[:, 0], values[:, 1])
    raise ValueError(f"aggregation {aggregation!r} takes {'scalars' if width == 1 else 'pairs'} per document, "
                     f"got values of shape {values.shape}")


def aggregate(values: np.ndarray, aggregation: str) -> float:
    """A run's value of the task as lm-eval aggregates it, from its per-document values."""
    return float(AGGREGATIONS[aggregation][0](*columns(np.asarray(values, dtype=float), aggregation)))


def resampled_interval(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], spec: PairedSpec) -> tuple[float, float]:
    """Bootstrap interval of ``statistic`` over documents: ``data`` holds columns of shape ``(n,)``,
    aligned by document; each resample draws ``n`` documents with replacement and takes them from every
    column (scipy's ``bootstrap``, ``paired=True``, seeded by ``spec``, so the same ``n`` draws the same
    documents whatever the statistic)."""
    from scipy.stats import bootstrap

    n = len(data[0])
    result = bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=spec.resamples,
                       confidence_level=spec.confidence, method=spec.method, batch=max(1, 2_000_000 // n),
                       random_state=np.random.default_rng(spec.seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_interval(a: np.ndarray, b: np.ndarray, aggregation: str, spec: PairedSpec) -> tuple[float, float]:
    """Paired bootstrap interval of ``aggregate(a) - aggregate(b)``.

    ``a``, ``b``: shape ``(n,)`` (scalar metrics) or ``(n, 2)`` (``(loglikelihood, weight)`` pairs),
    aligned by document. Each resample draws ``n`` documents with replacement and takes the same
    documents from both runs, so what the two runs share cancels out of the interval. One document
    has no interval: ``(nan, nan)``.
    """
    columns_a, columns_b = columns(a, aggregation), columns(b, aggregation)
    if all(np.array_equal(x, y) for x, y in zip(columns_a, columns_b)):
        return 0.0, 0.0  # identical runs: every resample's difference is 0 (scipy warns on such data)
    if len(a) < 2:
        return math.nan, math.nan  # one document: nothing to resample, no interval
    single, width = AGGREGATIONS[aggregation]

    def difference(*data, axis=-1):
        return single(*data[:width], axis=axis) - single(*data[width:], axis=axis)

    return resampled_interval(columns_a + columns_b, difference, spec)


def single_interval(values: np.ndarray, aggregation: str, spec: PairedSpec) -> tuple[float, float]:
    """Bootstrap interval of one run's aggregate (documents resampled), for metrics lm-eval gives no
    stderr for (the perplexities); ``(nan, nan)`` for fewer than two documents."""
    per_document = columns(np.asarray(values, dtype=float), aggregation)
    if len(per_document[0]) < 2:
        return math.nan, math.nan
    if all(np.all(c == c[0]) for c in per_document):
        value = aggregate(values, aggregation)
        return value, value
    return resampled_interval(per_document, AGGREGATIONS[aggregation][0], spec)


def minimum_detectable(n: int, discordant: int, level: float) -> float:
    """The smallest ``|accuracy difference|`` that ``n`` documents with ``discordant`` flips could call
    significant at ``level`` by the exact McNemar test: ``(2k - discordant) / n`` for the least
    ``k`` whose split ``k : discordant - k`` has ``p < level`` (``inf`` when even all flips one way
    would not be enough)."""
    from scipy.stats import binomtest

    for k in range((discordant + 1) // 2, discordant + 1) if discordant else ():
        if binomtest(k, discordant, 0.5).pvalue < level:
            return (2 * k - discordant) / n
    return math.inf


def is_binary(values: np.ndarray) -> bool:
    return values.ndim == 1 and bool(np.all((values == 0) | (values == 1)))


def excludes_zero(interval: tuple[float, float]) -> bool:
    """Whether a (defined) interval of a difference leaves out 0: the difference is significant."""
    return not math.isnan(interval[0]) and not interval[0] <= 0 <= interval[1]


def verdict(difference: float, significant: bool, higher_is_better: bool) -> str:
    """A's verdict from ``difference`` (A's side minus B's): ``better``/``worse`` after the metric's
    direction when significant and not 0, ``undecided`` otherwise."""
    if not significant or difference == 0:
        return UNDECIDED
    return BETTER if (difference > 0) == higher_is_better else WORSE


def compare_values(a: Sequence, b: Sequence, aggregation: str, higher_is_better: bool,
                   spec: PairedSpec = PairedSpec()) -> PairedResult:
    """Run A against run B on one task and metric: both aggregates, the difference with its
    interval, McNemar for 0/1 metrics, the minimum detectable difference and the verdict.

    ``a``, ``b``: per-document values aligned by document (see :func:`bootstrap_interval`);
    ``aggregation``: a key of :data:`AGGREGATIONS`. The verdict reads McNemar's p for 0/1 metrics
    and whether the interval excludes 0 otherwise; it says whether A is ``better`` or ``worse`` than
    B after the metric's direction, or ``undecided``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation {aggregation!r} has no paired statistic (valid: {', '.join(AGGREGATIONS)})")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"paired values must have one shape and at least one document (got {a.shape} and {b.shape})")
    value_a, value_b = aggregate(a, aggregation), aggregate(b, aggregation)
    interval = bootstrap_interval(a, b, aggregation, spec)
    extra: dict[str, Any] = {}
    if aggregation == "mean" and is_binary(a) and is_binary(b):
        only_a, only_b, p_value = mcnemar(a, b)
        significant = p_value < spec.level
        detectable = minimum_detectable(len(a), only_a + only_b, spec.level)
        extra = {"only_a": only_a, "only_b": only_b, "p_value": p_value}
    else:
        significant = excludes_zero(interval)
        # Half the interval; none for runs equal on every document (no spread to judge a difference by).
        detectable = math.nan if np.array_equal(a, b) else (interval[1] - interval[0]) / 2
    difference = value_a - value_b
    return PairedResult(a=value_a, b=value_b, difference=difference, interval=interval, n=len(a),
                        higher_is_better=higher_is_better, verdict=verdict(difference, significant, higher_is_better),
                        minimum_detectable=detectable, **extra)
