"""Cognitive dual-query strategy, CogDQS (Liu, Xue, Wu, Zhou, Yang, Li, Cao 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from streamal.strategies.base import check_unit, check_window
from streamal.strategies.density import _NearestNeighbourGate

__all__ = ["CognitiveDualQuery"]


class CognitiveDualQuery(_NearestNeighbourGate):
    """Query a record only if it is both representative and uncertain; forget as people do.

    The strategy keeps a memory of recent records. A new record *recalls*
    each remembered record it is closer to than any record before it, if it
    is also within the median nearest-neighbour distance of the memory; the
    number it recalls is its local density, and a record that recalls none
    is not representative of the stream (an outlier or noise) and is not
    queried. Of the representative ones, the uncertain ones are queried, by
    the variable-uncertainty rule: the two queries of the name.

    Memory follows Ebbinghaus's forgetting curve: a remembered record's
    retention is ``exp(-age / strength)``, where ``age`` counts the records
    since it was last recalled and ``strength = fading * (1 + recalls)``
    grows each time it is recalled. A record whose retention falls below
    ``forget_below`` is forgotten. Noise, never recalled, fades after about
    ``fading`` records; a concept the stream keeps returning to stays; after
    a drift the old concept is no longer recalled and fades, so the density
    is measured against the new one.

    Fed utilities only (no ``observe``), it is variable uncertainty.

    Parameters
    ----------
    budget, theta, step, w
        As in ``VariableUncertainty``.
    memory
        Most records remembered; past it the weakest is forgotten first.
    fading
        Records a never-recalled memory lasts before its retention is ``1/e``.
    forget_below
        Retention under which a memory is dropped.

    Examples
    --------
    >>> s = CognitiveDualQuery(budget=0.5, memory=10)
    >>> for x in (0.0, 0.1, 0.2):
    ...     s.observe({"x": x}); _ = s.ask(0.5)
    >>> s.observe({"x": 0.15}); s.density, s.ask(0.5)   # among the others: representative
    (2, True)
    >>> s.observe({"x": 50.0}); s.density, s.ask(0.5)   # far away: not
    (0, False)

    References
    ----------
    Liu, Xue, Wu, Zhou, Yang, Li, Cao (2023). Online Active Learning for
    Drifting Data Streams. IEEE Transactions on Neural Networks and
    Learning Systems 34(1), 186-200.
    """

    def __init__(
        self, budget: float = 0.1, theta: float = 1.0, step: float = 0.01, w: int = 100,
        memory: int = 100, fading: float = 200.0, forget_below: float = 0.1,
    ):  # fmt: skip
        self.memory = check_window(memory)
        self.fading = check_unit("fading", fading, high=math.inf)
        self.forget_below = check_unit("forget_below", forget_below)
        super().__init__(budget, theta, step, w)

    def _reset(self) -> None:
        super()._reset()
        self._recalls = np.empty(0)
        self._last = np.empty(0)  # when each memory was last recalled
        self._t = 0
        self.forgotten = 0

    def observe(self, features: Mapping[str, Any]) -> None:
        """Measure how representative the record about to be asked about is, and remember it."""
        self._t += 1
        x = self._vector(features)
        own = np.inf
        if len(self._points):
            dist = np.sqrt(((self._points - x) ** 2).sum(axis=1))
            closer = dist < self._nearest
            self._nearest = np.where(closer, dist, self._nearest)
            # an outlier's nearest record is far, so almost any record is closer: a
            # recall must also be within the usual nearest-neighbour distance
            finite = self._nearest[np.isfinite(self._nearest)]
            radius = float(np.median(finite)) if len(finite) else np.inf
            recalled = closer & (dist <= radius)
            self.density = int(recalled.sum())
            self._recalls = self._recalls + recalled
            self._last = np.where(recalled, self._t, self._last)
            own = float(dist.min())
            self._forget()
        else:
            self.density = 0
        self._points = np.vstack([self._points, x])
        self._nearest = np.append(self._nearest, own)
        self._recalls = np.append(self._recalls, 0.0)
        self._last = np.append(self._last, float(self._t))
        if len(self._points) > self.memory:
            self._drop(int(np.argmin(self._retention())))

    def _retention(self) -> np.ndarray:
        return np.exp(-(self._t - self._last) / (self.fading * (1.0 + self._recalls)))

    def _forget(self) -> None:
        keep = self._retention() >= self.forget_below
        if not keep.all():
            self.forgotten += int((~keep).sum())
            self._points, self._nearest = self._points[keep], self._nearest[keep]
            self._recalls, self._last = self._recalls[keep], self._last[keep]

    def _drop(self, i: int) -> None:
        self.forgotten += 1
        self._points = np.delete(self._points, i, axis=0)
        self._nearest = np.delete(self._nearest, i)
        self._recalls = np.delete(self._recalls, i)
        self._last = np.delete(self._last, i)
