"""The uncertainty filter labelling tools use: above the running mean plus k deviations."""

from __future__ import annotations

import math
from statistics import NormalDist

from streamal.strategies.base import Windowed, check_unit

__all__ = ["EmaUncertaintyFilter"]


class EmaUncertaintyFilter(Windowed):
    """Query when the utility exceeds its exponential moving mean by ``k`` deviations.

    The mean and variance are exponentially weighted (West 1979), so the
    filter follows a drifting uncertainty level with no threshold to tune.
    ``k`` starts at the normal quantile that lets a ``budget`` share
    through (1.28 at 10 %) and then moves by ``adapt`` towards the share
    actually spent (``k += adapt * (queried - budget)``), since real
    utilities are far from normal: with a fixed ``k`` the filter spent 0.7 %
    of a 10 % budget on luxembourg. The windowed budget estimate of
    Žliobaitė et al. (2014) bounds the spending.

    Parameters
    ----------
    budget
        Fraction of records to label.
    alpha
        Weight of the newest utility in the moving mean and variance.
    k
        Initial deviations above the mean; ``None`` derives it from the budget.
    adapt
        Step of the adaptation of ``k`` (0: fixed ``k``).
    w
        Window of the budget estimate.

    Examples
    --------
    >>> s = EmaUncertaintyFilter(budget=0.1)
    >>> round(s.k, 3)
    1.282
    >>> asked = [s.ask(0.2 + 0.01 * (i % 3)) for i in range(300)]
    >>> s.ask(0.9), round(s.threshold, 3), s.ask(0.2)
    (True, 0.22, False)

    References
    ----------
    West (1979). Updating mean and variance estimates: an improved method.
    Communications of the ACM 22(9); Žliobaitė, Bifet, Pfahringer, Holmes
    (2014). Active Learning With Drifting Streaming Data. IEEE TNNLS 25(1).
    """

    def __init__(
        self, budget: float = 0.1, alpha: float = 0.01, k: float | None = None,
        adapt: float = 0.01, w: int = 100,
    ):  # fmt: skip
        super().__init__(budget, w)
        self.alpha = check_unit("alpha", alpha)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int | float)):
            raise TypeError(f"k must be a number or None, got {k!r}")
        self.k = float(k) if k is not None else NormalDist().inv_cdf(1.0 - min(budget, 0.999))
        self._k_given = k
        self.adapt = check_unit("adapt", adapt, low_open=False)
        self._reset()

    def _params(self) -> dict:
        return {"budget": self.budget, "alpha": self.alpha, "k": self._k_given,
                "adapt": self.adapt, "w": self.w}  # fmt: skip

    def _reset(self) -> None:
        super()._reset()
        self._k = self.k
        self._mean: float | None = None
        self._var = 0.0

    def ask(self, utility: float, allowed: bool = True) -> bool:
        mean = self._mean
        if mean is None:
            query = allowed  # nothing to compare with yet
            self._mean = utility
        else:
            self.threshold = mean + self._k * math.sqrt(self._var)
            query = allowed and self._u / self.w < self.budget and utility > self.threshold
            if allowed:
                self._k += self.adapt * (query - self.budget)
            diff = utility - mean
            incr = self.alpha * diff
            self._mean = mean + incr
            self._var = (1.0 - self.alpha) * (self._var + diff * incr)
        self._u = self._u * self._decay + query
        self.query_probability = 1.0 if query else 0.0
        return query
