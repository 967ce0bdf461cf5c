"""Density-focused uncertainty sampling: DBALStream (Ienco, Pfahringer, Žliobaitė 2014)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from streamal.strategies.base import check_window
from streamal.strategies.uncertainty import VariableUncertainty

__all__ = ["DensityBasedActiveLearning"]


class _NearestNeighbourGate(VariableUncertainty):
    """Variable uncertainty, asked only about records whose ``density`` is positive.

    Subclasses measure ``density`` in ``observe`` from the distances between
    records, the rows of ``_points``, each with its distance to its nearest
    later record in ``_nearest``.
    """

    needs_features = True

    def _reset(self) -> None:
        super()._reset()
        self._columns: list[str] | None = None
        self._points = np.empty((0, 0))
        self._nearest = np.empty(0)
        self.density: int | None = None

    def _vector(self, features: Mapping[str, Any]) -> np.ndarray:
        """The record's numeric features, in the columns of the first record observed."""
        if self._columns is None:
            self._columns = [k for k, v in features.items() if isinstance(v, int | float)]
            self._points = np.empty((0, len(self._columns)))
        return np.array([_number(features.get(k)) for k in self._columns], dtype=float)

    def ask(self, utility: float, allowed: bool = True) -> bool:
        dense = self.density is None or self.density > 0
        self.density = None  # one observation per ask
        return super().ask(utility, allowed and dense)


class DensityBasedActiveLearning(_NearestNeighbourGate):
    """Variable uncertainty, but only for records in dense regions of the recent stream.

    A record's local density factor counts the records of a sliding window
    whose nearest neighbour it becomes (closer than any record before it). A
    record that is nobody's nearest neighbour is an outlier: labelling it
    teaches little about where the stream is, so it is skipped and the
    threshold does not move. The rest is variable uncertainty.

    The learner shows it each record's features before asking
    (``observe``); fed utilities only, it behaves as variable uncertainty.
    Distances are Euclidean over the numeric features, with the columns
    fixed by the first record observed.

    Parameters
    ----------
    budget, theta, step, w
        As in ``VariableUncertainty``.
    window
        Recent records the density is measured against.

    Examples
    --------
    >>> s = DensityBasedActiveLearning(budget=0.5, window=3)
    >>> for x in (0.0, 0.1, 0.2):
    ...     s.observe({"x": x}); _ = s.ask(0.5)
    >>> s.observe({"x": 0.15}); s.density, s.ask(0.5)   # among the others: dense
    (2, True)
    >>> s.observe({"x": 50.0}); s.density, s.ask(0.5)   # far away: an outlier
    (0, False)

    References
    ----------
    Ienco, Pfahringer, Žliobaitė (2014). High density-focused uncertainty
    sampling for active learning over evolving stream data. BigMine 2014,
    PMLR 36, 133-148.
    """

    def __init__(
        self, budget: float = 0.1, theta: float = 1.0, step: float = 0.01, w: int = 100,
        window: int = 100,
    ):  # fmt: skip
        self.window = check_window(window)
        super().__init__(budget, theta, step, w)

    def observe(self, features: Mapping[str, Any]) -> None:
        """Measure the density of the record about to be asked about."""
        x = self._vector(features)
        own = np.inf  # its own nearest neighbour among the window, as the paper keeps it
        if len(self._points):
            dist = np.sqrt(((self._points - x) ** 2).sum(axis=1))
            closer = dist < self._nearest
            self.density = int(closer.sum())
            self._nearest = np.where(closer, dist, self._nearest)
            own = float(dist.min())
        else:
            self.density = 0
        self._points = np.vstack([self._points, x])[-self.window :]
        self._nearest = np.append(self._nearest, own)[-self.window :]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
