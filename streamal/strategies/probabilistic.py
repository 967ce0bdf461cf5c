"""Strategies that query with a probability that grows with the uncertainty.

Each draws its decision, so that every uncertain record has a chance and
the query probability is known exactly (which importance weighting needs).
Both keep the windowed budget estimate ``u_t = u_{t-1} (w - 1) / w + l_t``
of Žliobaitė et al. (2014): a label may be requested only while
``u_t / w < budget``.
"""

from __future__ import annotations

import math
import random as _random

from streamal.strategies.base import Windowed, check_unit

__all__ = ["EntropySampling", "SelectiveSampling"]


class _Drawn(Windowed):
    """A draw against ``_probability(utility)``, gated by the windowed estimate."""

    def __init__(self, budget: float, w: int, seed: int | None):
        super().__init__(budget, w)
        self.seed = seed

    def _reset(self) -> None:
        super()._reset()
        self._rng = _random.Random(self.seed)

    def _probability(self, utility: float) -> float:
        raise NotImplementedError

    def ask(self, utility: float, allowed: bool = True) -> bool:
        draw = self._rng.random()  # drawn every time, so decisions do not shift with the gate
        if allowed and self._u / self.w < self.budget:
            p = self._probability(utility)
            query = draw < p
            self.query_probability = p
        else:
            query = False
            self.query_probability = 0.0
        self._u = self._u * self._decay + query
        return query


class EntropySampling(_Drawn):
    """Query with probability ``utility ** discount_factor``, within a budget.

    river's ``EntropySampler`` rule: with ``utility="entropy"`` the utility
    is the entropy of the prediction normalised to [0, 1]; the discount
    factor makes middling uncertainty count for less. river's sampler has no
    budget and never asks again once a model predicts nothing; here the
    windowed estimate bounds the spending and an empty prediction has
    utility 1.

    Its utility is the entropy (``preferred_utility``, what ``"auto"``
    picks): the rule was made for it, and least confidence, at most 0.5 on
    two classes, would keep every probability under 0.125.

    Parameters
    ----------
    budget
        Fraction of records to label.
    discount_factor
        Exponent on the utility (river's default is 3).
    w
        Window of the budget estimate.
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> s = EntropySampling(budget=0.5, seed=1)
    >>> s.ask(1.0), s.query_probability
    (True, 1.0)
    >>> s.ask(0.5), s.query_probability
    (False, 0.125)

    References
    ----------
    river, ``river.active.EntropySampler``; Settles (2009). Active Learning
    Literature Survey, section 3.1.
    """

    preferred_utility = "entropy"

    def __init__(
        self, budget: float = 0.1, discount_factor: float = 3.0, w: int = 100,
        seed: int | None = None,
    ):  # fmt: skip
        super().__init__(budget, w, seed)
        self.discount_factor = check_unit("discount_factor", discount_factor, high=math.inf)
        self._reset()

    def _probability(self, utility: float) -> float:
        return min(1.0, max(0.0, utility)) ** self.discount_factor


class SelectiveSampling(_Drawn):
    """Query with probability ``b / (b + margin)``, within a budget.

    The selective sampling rule of Cesa-Bianchi, Gentile and Zaniboni
    (2006) as MOA's active learners apply it, with ``margin = 1 - utility``
    (exact with ``utility="margin"``; with least confidence it is the top
    class probability). Records near the boundary are almost always queried,
    confident ones seldom but never never, so drift far from the boundary
    is noticed too.

    Its utility is the margin (``preferred_utility``, what ``"auto"`` picks),
    as the rule is stated.

    Parameters
    ----------
    budget
        Fraction of records to label.
    b
        Smoothing of the rule: the larger, the more confident records are
        queried too.
    w
        Window of the budget estimate.
    seed
        Seed of the private random generator.

    Examples
    --------
    >>> s = SelectiveSampling(budget=0.5, b=0.1, seed=2)
    >>> s.ask(1.0), s.query_probability
    (True, 1.0)
    >>> s.ask(0.1), round(s.query_probability, 4)
    (False, 0.1)

    References
    ----------
    Cesa-Bianchi, Gentile, Zaniboni (2006). Worst-case analysis of selective
    sampling for linear classification. JMLR 7, 1205-1230.
    """

    preferred_utility = "margin"

    def __init__(self, budget: float = 0.1, b: float = 0.1, w: int = 100, seed: int | None = None):
        super().__init__(budget, w, seed)
        self.b = check_unit("b", b, high=math.inf)
        self._reset()

    def _probability(self, utility: float) -> float:
        return self.b / (self.b + max(0.0, 1.0 - utility))
