"""How much may be spent: the windowed estimate of the papers, and a hard cap.

``EstimatedBudget`` is the estimate of Žliobaitė et al. (2014): after each
record, ``u_t = u_{t-1} (w - 1) / w + l_t`` with ``l_t`` 1 if the record
was queried, and labels are available while ``u_t / w < b``. It is what the
reference strategies use, and it overspends slightly (about 10.8 % at a 10 %
budget on long runs), so the learner puts ``BudgetCap`` on top: after ``n``
records at most ``ceil(b n) + 1`` labels have been requested, for every ``n``.

>>> cap = BudgetCap(0.1)
>>> spent = [cap.spend(cap.allows()) for _ in range(100)]
>>> cap.queried, cap.seen
(11, 100)
"""

from __future__ import annotations

from typing import Any

__all__ = ["EstimatedBudget", "BudgetCap"]


def check_budget(budget: float) -> float:
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        raise TypeError(f"budget must be a number, got {budget!r}")
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"budget must be in (0, 1], got {budget!r}")
    return float(budget)


class EstimatedBudget:
    """The windowed spending estimate ``u_t`` of Žliobaitė et al. (2014).

    Parameters
    ----------
    budget
        Fraction of records that may be labelled.
    w
        Window length of the estimate.

    Examples
    --------
    >>> est = EstimatedBudget(budget=0.1, w=100)
    >>> est.available()
    True
    >>> for _ in range(11):
    ...     est.update(True)
    >>> est.available()
    False

    References
    ----------
    Žliobaitė, Bifet, Pfahringer, Holmes (2014). Active Learning With
    Drifting Streaming Data. IEEE TNNLS 25(1).
    """

    def __init__(self, budget: float = 0.1, w: int = 100):
        self.budget = check_budget(budget)
        if not isinstance(w, int) or w <= 0:
            raise ValueError(f"w must be a positive integer, got {w!r}")
        self.w = w
        self.u = 0.0
        self._decay = (w - 1) / w

    def available(self) -> bool:
        return self.u / self.w < self.budget

    def update(self, queried: bool) -> None:
        self.u = self.u * self._decay + queried


class BudgetCap:
    """A hard cap: after ``n`` records at most ``ceil(budget * n) + 1`` requests.

    ``allows()`` says whether the next record may be queried (it counts that
    record as seen); ``spend(query)`` records the final decision.
    """

    #: a loan after drift: (first record, last record, extra rate); a class
    #: default, so caps saved before loans existed read None
    _loan: tuple[int, int, float] | None = None

    def __init__(self, budget: float = 0.1):
        self.budget = check_budget(budget)
        self.seen = 0
        self.queried = 0

    def allows(self) -> bool:
        self.seen += 1
        # queried <= b*n  implies  queried + 1 <= ceil(b*n) + 1
        return self.queried <= self.budget * self.seen or self._on_loan(self.queried, self.seen)

    def lend(self, extra_rate: float, records: int) -> None:
        """Allow ``extra_rate`` more labels per record for the next ``records`` records.

        The loan is paid back afterwards: the cap returns to
        ``ceil(budget n) + 1``, which holds no query until the spending is
        back under it. At every ``n`` the labels stay below
        ``ceil(budget n) + 1 + extra_rate * records``.

        >>> cap = BudgetCap(0.1)
        >>> cap.lend(0.2, records=100)
        >>> sum(cap.spend(cap.allows()) for _ in range(100))   # three times the rate
        31
        >>> sum(cap.spend(cap.allows()) for _ in range(200))   # paid back
        0
        >>> sum(cap.spend(cap.allows()) for _ in range(100))   # and back to the budget
        10
        """
        self._loan = (self.seen, self.seen + records, float(extra_rate))

    def _on_loan(self, queried: int, seen: int) -> bool:
        loan = self._loan
        if loan is None:
            return False
        start, end, rate = loan
        if seen > end:
            self._loan = None
            return False
        return queried <= self.budget * seen + rate * (seen - start)

    def spend(self, query: bool) -> bool:
        if query:
            self.queried += 1
        return query

    def ask_each(self, strategy: Any, utilities: list[float]) -> tuple[list[bool], list[float]]:
        """``strategy.ask`` on each utility under the cap, as ``allows``/``spend`` would do.

        Returns the decisions and the strategy's query probabilities.

        >>> from streamal.strategies import FixedUncertainty
        >>> cap = BudgetCap(0.1)
        >>> queries, _ = cap.ask_each(FixedUncertainty(budget=1.0), [1.0] * 100)
        >>> sum(queries), cap.queried, cap.seen
        (11, 11, 100)
        """
        budget = self.budget
        queried, seen = self.queried, self.seen
        fast = getattr(strategy, "ask_under_cap", None)
        if fast is not None and self._loan is None:
            made = fast(utilities, budget, queried, seen)
            if made is not None:
                self.queried, self.seen = queried + sum(made[0]), seen + len(utilities)
                return made
        ask = strategy.ask
        queries: list[bool] = []
        probabilities: list[float] = []
        add_query, add_probability = queries.append, probabilities.append
        try:
            for utility in utilities:
                seen += 1
                allowed = queried <= budget * seen or (  # as allows()
                    self._loan is not None and self._on_loan(queried, seen)
                )
                query = ask(utility, allowed)
                queried += query
                add_query(query)
                add_probability(strategy.query_probability)
        finally:
            self.queried, self.seen = queried, seen
        return queries, probabilities

    @property
    def spent_ratio(self) -> float:
        return self.queried / self.seen if self.seen else 0.0
