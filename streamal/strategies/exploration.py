"""Exploration: a floor under every record's chance of being queried."""

from __future__ import annotations

import random as _random

from streamal.strategies.base import QueryStrategy, check_unit

__all__ = ["Exploration"]


class Exploration(QueryStrategy):
    """Wraps a strategy: a record it skips is still queried with probability ``rate``.

    Deterministic strategies never query confident records, so the labelled
    records say nothing about the accuracy there. With a floor ``rate`` every
    record has a positive query probability, and weighting each label by the
    inverse of that probability estimates the accuracy over all records
    (Horvitz and Thompson 1952). Its budget is the strategy's plus ``rate``;
    give the strategy the rest of the budget you mean to spend.

    Parameters
    ----------
    strategy
        The strategy that decides first.
    rate
        Probability of querying a record the strategy skipped.
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> from streamal.strategies import FixedUncertainty
    >>> s = Exploration(FixedUncertainty(budget=0.1), rate=0.1, seed=1)
    >>> s.ask(0.0), s.query_probability   # certain: queried only by exploring
    (False, 0.1)
    >>> s.ask(0.5), s.query_probability
    (True, 1.0)
    """

    def __init__(self, strategy: QueryStrategy, rate: float = 0.01, seed: int | None = None):
        if not callable(getattr(strategy, "ask", None)):
            raise TypeError(f"strategy must be a QueryStrategy, got {strategy!r}")
        self.rate = check_unit("rate", rate, low_open=False)
        super().__init__(min(1.0, strategy.budget + self.rate))
        self.strategy = strategy
        self.seed = seed
        self._rng = _random.Random(seed)
        self._boost_rate = 0.0
        self._boost_left = 0

    def boost(self, extra_rate: float, records: int) -> None:
        """Explore ``extra_rate`` more for the next ``records`` records (after a drift).

        >>> from streamal.strategies import FixedUncertainty
        >>> s = Exploration(FixedUncertainty(budget=0.1), rate=0.0, seed=1)
        >>> s.boost(0.5, records=2)
        >>> [(s.ask(0.0), s.query_probability) for _ in range(3)]
        [(True, 0.5), (False, 0.5), (False, 0.0)]
        """
        self._boost_rate, self._boost_left = float(extra_rate), int(records)

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def preferred_utility(self) -> str:  # type: ignore[override]
        return self.strategy.preferred_utility

    @property
    def threshold(self) -> float | None:  # type: ignore[override]
        return self.strategy.threshold

    def ask(self, utility: float, allowed: bool = True) -> bool:
        inner = self.strategy
        query = inner.ask(utility, allowed)
        if not allowed:
            self.query_probability = 0.0
            return False
        rate = self.rate
        if self._boost_left > 0:
            self._boost_left -= 1
            rate = min(1.0, rate + self._boost_rate)
        p = inner.query_probability
        self.query_probability = p + (1.0 - p) * rate
        return query or self._rng.random() < rate

    def on_drift(self) -> None:
        self.strategy.on_drift()

    def rebudget(self, budget: float) -> None:
        # the exploring rate stays; the wrapped strategy gets the rest
        if budget <= self.rate:
            raise ValueError(f"budget {budget} leaves nothing beside exploration rate {self.rate}")
        self.strategy.rebudget(budget - self.rate)
        self.budget = min(1.0, self.strategy.budget + self.rate)

    def clone(self) -> Exploration:
        return Exploration(self.strategy.clone(), self.rate, self.seed)
