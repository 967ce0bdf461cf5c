"""Balanced incremental quantile filter (Kottke, Krempl, Spiliopoulou 2015)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

from streamal.strategies.base import CountedFromStart, check_unit, check_window

__all__ = ["BalancedIncrementalQuantileFilter"]


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of a sorted list, bit-for-bit as numpy's."""
    n = len(sorted_values)
    virtual = (n - 1) * q
    lo = min(max(math.floor(virtual), 0), n - 1)
    hi = min(lo + 1, n - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    gamma = virtual - lo
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


class BalancedIncrementalQuantileFilter(CountedFromStart):
    """Query records whose utility reaches the ``1 - budget`` quantile of recent ones.

    The quantile is taken over the last ``w`` utilities and shifted by a
    balancing term ``range * (budget * n - queried) / w_tol`` that pulls the
    spending back to the budget. Being relative to recent utilities, it
    needs no threshold tuning and spends evenly even when the utility scale
    drifts; a good choice with utilities other than least confidence.

    Parameters
    ----------
    budget
        Fraction of records to label.
    w
        Number of recent utilities the quantile is taken over.
    w_tol
        Tolerance window of the balancing term: the smaller, the tighter
        the spending follows the budget.

    Examples
    --------
    >>> s = BalancedIncrementalQuantileFilter(budget=0.2)
    >>> [s.ask(u) for u in [0.1, 0.5, 0.2, 0.9, 0.3]]
    [True, True, False, True, False]

    References
    ----------
    Kottke, Krempl, Spiliopoulou (2015). Probabilistic Active Learning in
    Datastreams. Advances in Intelligent Data Analysis XIV (IDA 2015).
    """

    #: a quantile of recent utilities has no scale to keep; margin also
    #: looks at the runner-up class, which helped on the multi-class streams
    preferred_utility = "margin"

    def __init__(self, budget: float = 0.1, w: int = 100, w_tol: float = 50):
        super().__init__(budget)
        self.w = check_window(w)
        self.w_tol = check_unit("w_tol", w_tol, high=math.inf)
        self._reset()

    def _reset(self) -> None:
        self._window: deque[float] = deque()
        self._sorted: list[float] = []
        self._seen = 0
        self._queried = 0
        self._credit = 0.0

    def ask(self, utility: float, allowed: bool = True) -> bool:
        window, ordered = self._window, self._sorted
        if len(window) == self.w:
            del ordered[bisect_left(ordered, window.popleft())]
        window.append(utility)
        insort(ordered, utility)
        self._seen += 1
        theta = _quantile(ordered, 1 - self.budget)
        acq_left = self.budget * self._seen - self._queried + self._credit
        self.threshold = theta - (ordered[-1] - ordered[0]) * (acq_left / self.w_tol)
        query = allowed and utility >= self.threshold
        self._queried += query
        self.query_probability = 1.0 if query else 0.0
        return query

    def ask_under_cap(
        self, utilities: list[float], budget: float, queried: int, seen: int
    ) -> tuple[list[bool], list[float]] | None:
        if type(self).ask is not BalancedIncrementalQuantileFilter.ask:
            return None
        window, ordered, w, w_tol = self._window, self._sorted, self.w, self.w_tol
        own, level, credit = self.budget, 1 - self.budget, self._credit
        n_seen, n_queried, threshold = self._seen, self._queried, self.threshold
        pop, push = window.popleft, window.append
        queries = []
        add = queries.append
        for utility in utilities:
            seen += 1
            if len(window) == w:
                del ordered[bisect_left(ordered, pop())]
            push(utility)
            insort(ordered, utility)
            n_seen += 1
            acq_left = own * n_seen - n_queried + credit
            threshold = _quantile(ordered, level) - (ordered[-1] - ordered[0]) * (acq_left / w_tol)
            query = queried <= budget * seen and utility >= threshold
            n_queried += query
            queried += query
            add(query)
        self._seen, self._queried, self.threshold = n_seen, n_queried, threshold
        self.query_probability = 1.0 if queries and queries[-1] else 0.0
        return queries, [1.0 if q else 0.0 for q in queries]
