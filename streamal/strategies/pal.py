"""Probabilistic active learning in streams, OPAL (Kottke, Krempl, Spiliopoulou 2015).

A record's worth is the expected drop in misclassification cost, per
label, if ``m <= m_max`` more labels were bought near it (``expected_gain``,
McPAL's gain). It needs the label frequencies near the record: how many
labels of each class were seen around it, kernel-weighted. The strategy
keeps a window of recent labelled records for that, and spends with the
balanced incremental quantile filter.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from streamal.strategies.base import check_unit, check_window
from streamal.strategies.quantile import BalancedIncrementalQuantileFilter

__all__ = ["ProbabilisticActiveLearning", "expected_gain"]


@cache
def _label_vectors(n_classes: int, m: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Every way ``m`` labels fall into ``n_classes`` classes, with its multinomial count."""
    if n_classes == 1:
        return (((m,), 1),)
    out = []
    for first in range(m, -1, -1):
        for rest, _ in _label_vectors(n_classes - 1, m - first):
            vector = (first, *rest)
            count = math.factorial(m)
            for li in vector:
                count //= math.factorial(li)
            out.append((vector, count))
    return tuple(out)


def expected_gain(frequencies: Sequence[float], prior: float = 1e-3, m_max: int = 2) -> float:
    """McPAL's expected gain per label from labelling near a record with these frequencies.

    ``frequencies[c]`` is the (kernel-weighted) number of labels of class
    ``c`` seen near the record. The misclassification cost after ``m``
    hypothetical labels is averaged over every way they could fall (a
    Dirichlet-multinomial with ``prior`` added to each count); the gain is
    the largest drop from the cost now, divided by ``m``, for ``m`` in
    ``1..m_max``. Equal to scikit-activeml's ``cost_reduction`` with the
    0/1 cost, computed with rising factorials instead of Beta functions.

    >>> round(expected_gain([0.0, 0.0]), 4)       # nothing known nearby: worth a lot
    0.499
    >>> round(expected_gain([20.0, 20.0]), 4)     # many labels, all mixed: little to gain
    0.0122
    >>> expected_gain([30.0, 0.0]) < 0.001        # many labels, all one class
    True
    """
    counts = [float(f) for f in frequencies]
    if len(counts) < 2:  # no second class seen yet: as if it had no label nearby
        counts += [0.0] * (2 - len(counts))
    kp = [c + prior for c in counts]
    total = sum(kp)
    best = -math.inf
    now = 0.0
    for m in range(m_max + 1):
        cost = 0.0
        for vector, count in _label_vectors(len(counts), m):
            weight = float(count)
            for a, li in zip(kp, vector, strict=True):
                for j in range(li):
                    weight *= a + j
            # the decision after these labels: the most frequent class (first on ties)
            top, top_value = 0, -math.inf
            for c, (k, li) in enumerate(zip(counts, vector, strict=True)):
                if k + li > top_value:
                    top, top_value = c, k + li
            cost += weight * (total + m - kp[top] - vector[top])
        rising = 1.0
        for j in range(m + 1):
            rising *= total + j
        cost /= rising
        if m == 0:
            now = cost
        else:
            best = max(best, (now - cost) / m)
    return best


class ProbabilisticActiveLearning(BalancedIncrementalQuantileFilter):
    """OPAL: query where a label is expected to reduce the error most, per label bought.

    For each record, the label frequencies near it are kernel-weighted
    counts over a window of recent labelled records (a Gaussian kernel on
    standardised features, its width by the mean criterion as
    scikit-activeml's Parzen window classifier sets it). Their
    ``expected_gain`` weighs how many labels are near (few: worth asking)
    against how mixed they are (mixed: the boundary). Optionally it is
    multiplied by the record's density among recent records, as in the
    paper, so that outliers are not bought. The balanced incremental
    quantile filter spends the budget.

    The learner shows it each record's features (``observe``) and each
    label it learns (``learned``). Fed utilities only, it is the quantile
    filter on them: give it precomputed gains, and it decides as
    scikit-activeml's ``StreamProbabilisticAL`` does.

    Parameters
    ----------
    budget, w, w_tol
        As in ``BalancedIncrementalQuantileFilter``.
    prior
        Pseudo-count added to each class frequency.
    m_max
        Most hypothetical labels the gain looks ahead.
    window
        Labelled records the frequencies are counted over.
    density
        Multiply the gain by the record's kernel density among the last
        ``window`` records.

    Examples
    --------
    >>> s = ProbabilisticActiveLearning(budget=0.5)
    >>> s.learned({"x": 0.0}, "a"); s.learned({"x": 0.1}, "a")
    >>> s.observe({"x": 0.05}); near_two = s.gain
    >>> s.observe({"x": 9.0}); far_away = s.gain
    >>> near_two < far_away
    True

    References
    ----------
    Kottke, Krempl, Spiliopoulou (2015). Probabilistic Active Learning in
    Datastreams. Advances in Intelligent Data Analysis XIV (IDA 2015).
    Krempl, Kottke, Lemaire (2015). Optimised probabilistic active learning
    (OPAL). Machine Learning 100, 449-476.
    """

    needs_features = True
    needs_labels = True
    #: the utility stands in only until labels of two classes are near
    preferred_utility = "least_confidence"

    def __init__(
        self, budget: float = 0.1, prior: float = 1e-3, m_max: int = 2, window: int = 300,
        density: bool = False, w: int = 100, w_tol: float = 50,
    ):  # fmt: skip
        self.prior = check_unit("prior", prior, high=math.inf)
        if isinstance(m_max, bool) or not isinstance(m_max, int) or m_max < 1:
            raise ValueError(f"m_max must be an integer >= 1, got {m_max!r}")
        self.m_max = m_max
        self.window = check_window(window)
        self.density = bool(density)
        super().__init__(budget, w, w_tol)

    def _reset(self) -> None:
        super()._reset()
        self._columns: list[str] | None = None
        self._labelled: deque[tuple[np.ndarray, Any]] = deque(maxlen=self.window)
        self._recent: deque[np.ndarray] = deque(maxlen=self.window)
        self._classes: dict[Any, int] = {}
        # running mean and variance of each column (Welford), to standardise
        self._n = 0
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        #: the gain of the record last observed, used by the next ask
        self.gain: float | None = None

    def _vector(self, features: Mapping[str, Any]) -> np.ndarray:
        if self._columns is None:
            self._columns = [k for k, v in features.items() if _is_number(v)]
            self._mean = np.zeros(len(self._columns))
            self._m2 = np.zeros(len(self._columns))
        return np.array([_number(features.get(k)) for k in self._columns], dtype=float)

    def _scale(self) -> tuple[np.ndarray, float]:
        """1 / standard deviation of each column, and the kernel's gamma (mean criterion)."""
        std = np.sqrt(self._m2 / self._n) if self._n > 1 else np.ones(len(self._mean))
        inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
        n_labelled = max(2, len(self._labelled))
        spread = float((inverse > 0).sum()) or 1.0  # variance of standardised columns
        delta = math.sqrt(2) * 1e-6
        gamma = 0.5 * (n_labelled - 1) * math.log((n_labelled - 1) / delta**2)
        return inverse, gamma / (2 * n_labelled * spread)

    def observe(self, features: Mapping[str, Any]) -> None:
        """Compute the gain of labelling the record about to be asked about."""
        x = self._vector(features)
        self._n += 1
        delta = x - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (x - self._mean)
        inverse, gamma = self._scale()
        frequencies = [0.0] * len(self._classes)
        if self._labelled:
            points = np.array([p for p, _ in self._labelled])
            kernel = np.exp(-gamma * (((points - x) * inverse) ** 2).sum(axis=1))
            labels = [self._classes[y] for _, y in self._labelled]
            counts = np.bincount(labels, weights=kernel, minlength=len(self._classes))
            frequencies = counts.tolist()
        gain = expected_gain(frequencies, self.prior, self.m_max)
        if self.density and self._recent:
            recent = np.array(self._recent)
            gain *= float(np.exp(-gamma * (((recent - x) * inverse) ** 2).sum(axis=1)).mean())
        self._recent.append(x)
        self.gain = gain

    def learned(self, features: Mapping[str, Any], label: Any) -> None:
        """Count a label the learner learned from, near its record."""
        self._classes.setdefault(label, len(self._classes))
        self._labelled.append((self._vector(features), label))

    def ask(self, utility: float, allowed: bool = True) -> bool:
        gain, self.gain = self.gain, None  # one observation per ask
        return super().ask(utility if gain is None else gain, allowed)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _number(value: Any) -> float:
    return float(value) if _is_number(value) and math.isfinite(value) else 0.0
