"""Baselines that ignore the utility: random and periodic sampling."""

from __future__ import annotations

import random as _random

from streamal.strategies.base import CountedFromStart, QueryStrategy, check_window

__all__ = ["RandomSampling", "PeriodicSampling"]


class RandomSampling(QueryStrategy):
    """Query each record with probability ``budget``, within the windowed estimate.

    The baseline every strategy must beat. The windowed estimate
    ``u_t = u_{t-1} (w - 1) / w + l_t`` stops it from spending in bursts,
    as in scikit-activeml's ``RandomBudgetManager``.

    Parameters
    ----------
    budget
        Fraction of records to label.
    w
        Window of the budget estimate. The window makes it spend less than
        the budget (about 8.8 % at 10 %). ``None``: spend the whole budget,
        paced. Each record is queried with probability ``budget * (1 +
        d)``, bounded to [0, 1], where ``d = budget * n - queried`` is how
        many labels it is behind after the ``n`` records it was allowed to
        query (those a hard cap held back do not count): the choice of records
        stays blind to them, and it spends what the strategies it is
        compared with spend (plain Bernoulli draws, cut by the learner's hard
        cap whenever they run ahead, spent 4.6 % at 5 % on 1,500 records).
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> s = RandomSampling(budget=0.1, seed=1)  # the window keeps it under 10 %
    >>> sum(s.ask(0.5) for _ in range(10_000))
    884

    References
    ----------
    Žliobaitė, Bifet, Pfahringer, Holmes (2014). Active Learning With
    Drifting Streaming Data. IEEE TNNLS 25(1), "Random" baseline.
    """

    _seen = _queried = 0  # what one saved before they existed resumes with

    def __init__(self, budget: float = 0.1, w: int | None = 100, seed: int | None = None):
        super().__init__(budget)
        self.w = None if w is None else check_window(w)
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._rng = _random.Random(self.seed)
        self._seen = self._queried = 0  # for w=None
        self._u = 0.0
        self._w = self.w or 1
        self._decay = (self.w - 1) / self.w if self.w else 0.0

    def ask(self, utility: float, allowed: bool = True) -> bool:
        draw = self._rng.random()
        if self.w is None:
            if not allowed:
                # a record the cap held back is not one it fell behind on: counted, it
                # would make every record the cap lets through a sure query, and the
                # draws periodic (every other record at a budget of 0.5)
                self.query_probability = 0.0
                return False
            self._seen += 1
            behind = self.budget * self._seen - self._queried
            p = min(1.0, max(0.0, self.budget * (1.0 + behind)))
            query = draw < p
            self._queried += query
            self.query_probability = p
            return query
        if allowed and self._u / self._w < self.budget:
            query = draw <= self.budget
            self.query_probability = self.budget
        else:
            query = False
            self.query_probability = 0.0
        self._u = self._u * self._decay + query
        return query


class PeriodicSampling(CountedFromStart):
    """Query every ``1 / budget``-th record: whenever ``n b - queried >= 1``.

    Deterministic and utility-blind; useful as a second baseline and for
    streams where labels must be spread evenly in time.

    Examples
    --------
    >>> s = PeriodicSampling(budget=0.25)
    >>> [s.ask(0.0) for _ in range(8)]
    [False, False, False, True, False, False, False, True]

    References
    ----------
    Kottke, Krempl, Spiliopoulou (2015). Probabilistic Active Learning in
    Datastreams. IDA 2015, "periodic" baseline (scikit-activeml
    ``PeriodicSampling``).
    """

    def __init__(self, budget: float = 0.1):
        super().__init__(budget)
        self._reset()

    def _reset(self) -> None:
        self._seen = 0
        self._queried = 0
        self._credit = 0.0

    def ask(self, utility: float, allowed: bool = True) -> bool:
        self._seen += 1
        query = allowed and self._seen * self.budget - self._queried + self._credit >= 1
        self._queried += query
        self.query_probability = 1.0 if query else 0.0
        return query
