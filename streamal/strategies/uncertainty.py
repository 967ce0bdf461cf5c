"""Uncertainty strategies of Žliobaitė, Bifet, Pfahringer and Holmes (2014).

All four work on the confidence ``c = 1 - utility`` (with the default
least-confidence utility, ``c`` is the largest class probability) and keep
the windowed budget estimate ``u_t = u_{t-1} (w - 1) / w + l_t``: a label
may be requested only while ``u_t / w < budget``.

Reference: Žliobaitė, Bifet, Pfahringer, Holmes (2014). Active Learning
With Drifting Streaming Data. IEEE Transactions on Neural Networks and
Learning Systems 25(1), 27-39.
"""

from __future__ import annotations

import math
import random as _random

from streamal.strategies.base import Windowed, check_unit

__all__ = [
    "FixedUncertainty",
    "VariableUncertainty",
    "RandomizedVariableUncertainty",
    "Split",
]


class FixedUncertainty(Windowed):
    """Query when the confidence is at most a fixed threshold.

    The threshold is ``1 / k + budget (1 - 1 / k)`` for ``k`` classes
    (Žliobaitė et al. 2014, Algorithm 1). It never adapts, so under drift it
    may spend nothing or everything; it is here as the paper's reference.

    Parameters
    ----------
    budget
        Fraction of records to label.
    n_classes
        Number of classes ``k`` the threshold is computed for.
    w
        Window of the budget estimate.

    Examples
    --------
    >>> s = FixedUncertainty(budget=0.1, n_classes=2)
    >>> s.threshold
    0.55
    >>> s.ask(0.5), s.ask(0.1)
    (True, False)
    """

    def __init__(self, budget: float = 0.1, n_classes: int = 2, w: int = 100):
        super().__init__(budget, w)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        self.n_classes = n_classes
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._set_threshold()

    def rebudget(self, budget: float) -> None:
        super().rebudget(budget)
        self._set_threshold()

    def _set_threshold(self) -> None:
        k = self.n_classes
        self.threshold = 1 / k + self.budget * (1 - 1 / k)

    def ask(self, utility: float, allowed: bool = True) -> bool:
        query = allowed and self._u / self.w < self.budget and 1.0 - utility <= self.threshold
        self._u = self._u * self._decay + query
        self.query_probability = 1.0 if query else 0.0
        return query

    def ask_under_cap(
        self, utilities: list[float], budget: float, queried: int, seen: int
    ) -> tuple[list[bool], list[float]] | None:
        if type(self).ask is not FixedUncertainty.ask:
            return None
        u, w, decay, own, threshold = self._u, self.w, self._decay, self.budget, self.threshold
        queries = []
        add = queries.append
        for utility in utilities:
            seen += 1
            query = queried <= budget * seen and u / w < own and 1.0 - utility <= threshold
            u = u * decay + query
            queried += query
            add(query)
        self._u = u
        self.query_probability = 1.0 if queries and queries[-1] else 0.0
        return queries, [1.0 if q else 0.0 for q in queries]


class VariableUncertainty(Windowed):
    """Query when the confidence is below a threshold that adapts to the stream.

    After a query the threshold shrinks by ``(1 - step)``, after a skipped
    record it grows by ``(1 + step)``, so the strategy keeps asking about
    the least certain records whatever the model's confidence level
    (Žliobaitė et al. 2014, Algorithm 2). The threshold only moves while
    budget is left. The usual first choice.

    Parameters
    ----------
    budget
        Fraction of records to label.
    theta
        Initial confidence threshold.
    step
        Relative threshold adjustment ``s``.
    w
        Window of the budget estimate.

    Examples
    --------
    >>> s = VariableUncertainty(budget=0.1)
    >>> s.ask(0.3), round(s.threshold, 4)
    (True, 0.99)
    >>> s.ask(0.0), round(s.threshold, 4)
    (False, 0.9999)
    """

    def __init__(self, budget: float = 0.1, theta: float = 1.0, step: float = 0.01, w: int = 100):
        super().__init__(budget, w)
        self.theta = float(theta)
        self.step = check_unit("step", step)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self.threshold = self.theta
        self._down = 1.0 - self.step
        self._up = 1.0 + self.step

    def on_drift(self) -> None:
        self.threshold = self.theta

    def ask(self, utility: float, allowed: bool = True) -> bool:
        if allowed and self._u / self.w < self.budget:
            query = 1.0 - utility < self.threshold
            self.threshold *= self._down if query else self._up
        else:
            query = False
        self._u = self._u * self._decay + query
        self.query_probability = 1.0 if query else 0.0
        return query

    def ask_under_cap(
        self, utilities: list[float], budget: float, queried: int, seen: int
    ) -> tuple[list[bool], list[float]] | None:
        if type(self).ask is not VariableUncertainty.ask:  # a subclass decides otherwise
            return None
        u, w, decay, own, threshold = self._u, self.w, self._decay, self.budget, self.threshold
        down, up = self._down, self._up
        queries = []
        add = queries.append
        for utility in utilities:
            seen += 1
            if queried <= budget * seen and u / w < own:
                query = 1.0 - utility < threshold
                threshold *= down if query else up
            else:
                query = False
            u = u * decay + query
            queried += query
            add(query)
        self._u, self.threshold = u, threshold
        self.query_probability = 1.0 if queries and queries[-1] else 0.0
        return queries, [1.0 if q else 0.0 for q in queries]


def _normal_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


class RandomizedVariableUncertainty(VariableUncertainty):
    """Variable uncertainty with the threshold multiplied by ``N(1, delta)`` noise.

    The randomisation lets it query confident records now and then, so it
    notices drift where the model is wrong but sure of itself (Žliobaitė et
    al. 2014, Algorithm 3).

    Parameters
    ----------
    budget, theta, step, w
        As in ``VariableUncertainty``.
    delta
        Standard deviation of the threshold noise.
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> s = RandomizedVariableUncertainty(budget=0.1, seed=0)
    >>> sum(s.ask(0.2) for _ in range(1000)) <= 120
    True
    """

    def __init__(
        self,
        budget: float = 0.1,
        theta: float = 1.0,
        step: float = 0.01,
        delta: float = 1.0,
        w: int = 100,
        seed: int | None = None,
    ):
        self.delta = check_unit("delta", delta, high=math.inf)
        self.seed = seed
        super().__init__(budget, theta, step, w)

    def _reset(self) -> None:
        super()._reset()
        self._rng = _random.Random(self.seed)

    def ask(self, utility: float, allowed: bool = True) -> bool:
        if allowed and self._u / self.w < self.budget:
            confidence = 1.0 - utility
            theta = self.threshold
            query = confidence < theta * self._rng.gauss(1.0, self.delta)
            self.query_probability = (
                _normal_sf((confidence / theta - 1.0) / self.delta) if theta > 0 else 0.0
            )
            self.threshold *= self._down if query else self._up
        else:
            query = False
            self.query_probability = 0.0
        self._u = self._u * self._decay + query
        return query


class Split(VariableUncertainty):
    """Split the budget: with probability ``v`` sample at random, else variable uncertainty.

    The random part keeps an unbiased view of the whole stream, which helps
    when drift happens far from the decision boundary; the paper's best
    strategy on several real streams (Žliobaitė et al. 2014, Algorithm 4).

    Parameters
    ----------
    budget, theta, step, w
        As in ``VariableUncertainty``.
    v
        Share of records decided by random sampling.
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> s = Split(budget=0.1, seed=0)
    >>> sum(s.ask(0.2) for _ in range(1000)) <= 120
    True
    """

    def __init__(
        self,
        budget: float = 0.1,
        v: float = 0.1,
        theta: float = 1.0,
        step: float = 0.01,
        w: int = 100,
        seed: int | None = None,
    ):
        self.v = check_unit("v", v)
        self.seed = seed
        super().__init__(budget, theta, step, w)

    def _reset(self) -> None:
        super()._reset()
        self._rng = _random.Random(self.seed)

    def ask(self, utility: float, allowed: bool = True) -> bool:
        if allowed and self._u / self.w < self.budget:
            rng = self._rng
            uncertain = 1.0 - utility < self.threshold
            if self.v > rng.random():
                query = rng.random() <= self.budget
            else:
                query = uncertain
                self.threshold *= self._down if query else self._up
            self.query_probability = self.v * self.budget + (1.0 - self.v) * uncertain
        else:
            query = False
            self.query_probability = 0.0
        self._u = self._u * self._decay + query
        return query
