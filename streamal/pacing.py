"""Pacing: budgets in labels per hour and per day, and in cost, on top of the fraction.

A fraction budget says nothing about when labels are asked for: a burst of
records at night may use up a day's annotator time in minutes. A pacing
guard sits beside the learner's hard cap and forbids a query while it is
over its own limit; the strategy then behaves as if its budget were spent.
Guards take the time from the learner (event time, or its injected clock),
so tests drive them exactly.

>>> rate = LabelRate(per_hour=2, burst=2)
>>> [rate.take(now=t) for t in (0, 1, 2)]   # a burst of two, then wait
[True, True, False]
>>> rate.take(now=1800 + 2)                 # half an hour refills one label
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LabelRate", "CostBudget"]


class _Guard:
    """``allows(record, now)`` says, ``spend(record, now, query)`` records."""

    def allows(self, record: Any, now: float = 0.0) -> bool:
        raise NotImplementedError

    def spend(self, record: Any, now: float = 0.0, query: bool = False) -> None:
        raise NotImplementedError

    def take(self, record: Any = None, now: float = 0.0) -> bool:
        """``allows`` then ``spend``: one call for a loop of your own."""
        ok = self.allows(record, now)
        self.spend(record, now, ok)
        return ok


class LabelRate(_Guard):
    """At most ``per_hour`` labels an hour on average, ``burst`` at once, ``per_day`` a day.

    A token bucket: it holds up to ``burst`` labels and refills at
    ``per_hour``; each query takes one. ``per_day`` caps the labels of a
    calendar day (UTC, by the learner's time).

    Parameters
    ----------
    per_hour
        Sustained rate.
    burst
        Labels that may be asked for at once (default: one minute's worth,
        at least 1).
    per_day
        Cap per day (``None``: none).
    """

    def __init__(self, per_hour: float, burst: float | None = None, per_day: int | None = None):
        if not (isinstance(per_hour, int | float) and per_hour > 0 and math.isfinite(per_hour)):
            raise ValueError(f"per_hour must be a positive number, got {per_hour!r}")
        if burst is None:
            burst = max(1.0, per_hour / 60)
        if not (isinstance(burst, int | float) and burst >= 1):
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        if per_day is not None and (not isinstance(per_day, int) or per_day < 1):
            raise ValueError(f"per_day must be a positive integer or None, got {per_day!r}")
        self.per_hour = float(per_hour)
        self.burst = float(burst)
        self.per_day = per_day
        self.tokens = self.burst
        self._last: float | None = None
        self._day: int | None = None
        self.today = 0

    def _tokens_at(self, now: float) -> float:
        if self._last is not None and now > self._last:
            return min(self.burst, self.tokens + (now - self._last) * self.per_hour / 3600.0)
        return self.tokens

    def allows(self, record: Any = None, now: float = 0.0) -> bool:
        """Whether a query is allowed at ``now``; changes nothing."""
        today = self.today if self._day == int(now // 86_400) else 0
        return self._tokens_at(now) >= 1.0 and (self.per_day is None or today < self.per_day)

    def spend(self, record: Any = None, now: float = 0.0, query: bool = False) -> None:
        """Advance the bucket to ``now`` and take a label if ``query``."""
        self.tokens = self._tokens_at(now)
        if self._last is None or now > self._last:
            self._last = now
        day = int(now // 86_400)
        if day != self._day:
            self._day, self.today = day, 0
        if query:
            self.tokens -= 1.0
            self.today += 1


class CostBudget(_Guard):
    """At most ``per_record`` cost units per record on average, so cheap labels go further.

    Each record's cost comes from a feature (``cost="pages"``) or a function
    of the features. After ``n`` records the queried records cost at most
    ``per_record * n`` plus the cost of one record.

    >>> budget = CostBudget(per_record=0.5, cost="pages")
    >>> [budget.take({"pages": p}) for p in (5, 1, 1, 1, 1, 1, 1)]
    [False, True, False, True, False, True, False]

    Parameters
    ----------
    per_record
        Average cost that may be spent per record seen.
    cost
        Feature name, or a function ``features -> cost``. A missing or
        non-numeric cost counts as 1.
    """

    def __init__(self, per_record: float, cost: str | Callable[[Mapping[str, Any]], float]):
        if not (isinstance(per_record, int | float) and per_record > 0):
            raise ValueError(f"per_record must be a positive number, got {per_record!r}")
        if not (isinstance(cost, str) or callable(cost)):
            raise TypeError(f"cost must be a feature name or a function, got {cost!r}")
        self.per_record = float(per_record)
        self.cost = cost
        self.seen = 0
        self.spent = 0.0

    def cost_of(self, features: Mapping[str, Any]) -> float:
        value = features.get(self.cost) if isinstance(self.cost, str) else self.cost(features)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return 1.0
        return float(value)

    def allows(self, features: Mapping[str, Any], now: float = 0.0) -> bool:
        return self.spent + self.cost_of(features) <= self.per_record * (self.seen + 1)

    def spend(self, features: Mapping[str, Any], now: float = 0.0, query: bool = False) -> None:
        self.seen += 1
        if query:
            self.spent += self.cost_of(features)
