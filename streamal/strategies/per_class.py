"""One strategy per predicted class (or class boundary): every region gets its share of labels."""

from __future__ import annotations

from typing import Any

from streamal.strategies.base import QueryStrategy
from streamal.strategies.quantile import BalancedIncrementalQuantileFilter

__all__ = ["PerPredictedClass", "PerClassQuantileFilter", "PerBoundaryQuantileFilter"]


class PerPredictedClass(QueryStrategy):
    """Runs a fresh copy of ``strategy`` for each class the model predicts.

    An uncertainty strategy compares a record with the records before it, so
    records the model is sure of are never asked about, right or wrong.
    When the model is confidently wrong over a whole region (a class it
    mistakes for another after a drift, or never learned), no label ever
    reaches that region. Here the utility of a record is compared only with
    the records predicted as the same class: each predicted class gets about
    ``budget`` of its records labelled, the least sure of them.

    With ``runner_up=True`` the records of a predicted class are kept apart
    further by the class the model rates second: one copy per class
    boundary a record lies near, so that a boundary crossed by few records
    (between two rare classes, say) is not outbid by a busy one. On two
    classes the runner-up is always the other class, and nothing changes.

    The learner tells the strategy each record's prediction and
    probabilities (``needs_prediction``) before its ``ask``; driven through
    ``ask`` alone, it behaves as ``strategy``.

    >>> import random
    >>> rng = random.Random(0)
    >>> plain = BalancedIncrementalQuantileFilter(budget=0.2)
    >>> per_class = PerPredictedClass(BalancedIncrementalQuantileFilter(budget=0.2))
    >>> asked, asked_plain = [], []
    >>> for i in range(1000):
    ...     predicted = "rare" if i % 10 == 0 else "common"
    ...     utility = rng.uniform(0.0, 0.1) if predicted == "rare" else rng.uniform(0.3, 0.5)
    ...     per_class.observe_prediction(predicted)
    ...     asked.append(per_class.ask(utility))
    ...     asked_plain.append(plain.ask(utility))
    >>> sum(asked[::10]), sum(asked_plain[::10])  # of the 100 confident "rare" records
    (20, 1)
    >>> sum(asked), sum(asked_plain)
    (204, 202)
    """

    needs_prediction = True
    runner_up = False  # what states saved before the option existed resume with

    def __init__(self, strategy: QueryStrategy, runner_up: bool = False):
        if not callable(getattr(strategy, "ask", None)):
            raise TypeError(f"strategy must be a QueryStrategy, got {strategy!r}")
        super().__init__(strategy.budget)
        self.strategy = strategy
        self.runner_up = bool(runner_up)
        self._reset()

    def _reset(self) -> None:
        self._by_class: dict[Any, QueryStrategy] = {}
        self._prediction: Any = None

    @property
    def preferred_utility(self) -> str:  # type: ignore[override]
        return self.strategy.preferred_utility

    def observe_prediction(self, prediction: Any, proba: dict | None = None) -> None:
        """The class the model predicts for the record about to be asked about,
        and its probabilities (which name the runner-up)."""
        if self.runner_up and proba is not None and len(proba) > 2:
            prediction = (prediction, _runner_up(proba, prediction))
        self._prediction = prediction

    def ask(self, utility: float, allowed: bool = True) -> bool:
        current = self._by_class.get(self._prediction)
        if current is None:
            current = self._by_class[self._prediction] = self.strategy.clone()
        query = current.ask(utility, allowed)
        self.query_probability = current.query_probability
        self.threshold = current.threshold
        return query

    def on_drift(self) -> None:
        for strategy in self._by_class.values():
            strategy.on_drift()

    def rebudget(self, budget: float) -> None:
        super().rebudget(budget)
        self.strategy.rebudget(budget)
        for strategy in self._by_class.values():
            strategy.rebudget(budget)

    @property
    def classes(self) -> list[Any]:
        """The predicted classes asked about so far (``None``: records without a prediction),
        as ``(class, runner-up)`` on more than two classes with ``runner_up``."""
        return list(self._by_class)

    def clone(self) -> PerPredictedClass:
        return type(self)(**{k: v.clone() if k == "strategy" else v
                             for k, v in self._params().items()})  # fmt: skip


class PerClassQuantileFilter(PerPredictedClass):
    """The balanced incremental quantile filter, one per predicted class.

    ``PerPredictedClass(BalancedIncrementalQuantileFilter(budget, w, w_tol))``
    under a name of its own: the quantile of the last ``w`` utilities of the
    records predicted as the same class. Each class the model predicts gets
    about ``budget`` of its records labelled, the least sure of them, so a
    stretch where the model is sure and wrong is not left unlabelled.

    >>> s = PerClassQuantileFilter(budget=0.2)
    >>> s
    PerClassQuantileFilter(budget=0.2, w=100, w_tol=50.0)
    >>> s.observe_prediction(True); s.ask(0.4)
    True

    References
    ----------
    Kottke, Krempl, Spiliopoulou (2015). Probabilistic Active Learning in
    Datastreams. Advances in Intelligent Data Analysis XIV (IDA 2015).
    """

    def __init__(self, budget: float = 0.1, w: int = 100, w_tol: float = 50):
        strategy = BalancedIncrementalQuantileFilter(budget, w, w_tol)  # checks them
        self.w, self.w_tol = strategy.w, strategy.w_tol
        super().__init__(strategy, runner_up=type(self).runner_up)


class PerBoundaryQuantileFilter(PerClassQuantileFilter):
    """The balanced incremental quantile filter, one per class boundary.

    ``PerPredictedClass(BalancedIncrementalQuantileFilter(budget, w, w_tol),
    runner_up=True)``: a record's utility is compared with those of the
    records with the same predicted class *and* the same runner-up. On two
    classes it decides as ``PerClassQuantileFilter``; on more, every
    boundary the stream crosses gets about ``budget`` of its records
    labelled, the least sure of them, where one filter per predicted class
    spends most of a class's labels on its busiest boundary.

    >>> s = PerBoundaryQuantileFilter(budget=0.2)
    >>> s.observe_prediction("a", {"a": 0.5, "b": 0.2, "c": 0.3}); s.ask(0.4)
    True
    >>> s.classes
    [('a', 'c')]

    References
    ----------
    Kottke, Krempl, Spiliopoulou (2015). Probabilistic Active Learning in
    Datastreams. Advances in Intelligent Data Analysis XIV (IDA 2015).
    """

    runner_up = True


def _runner_up(proba: dict, prediction: Any) -> Any:
    """The most probable label after ``prediction`` (the first one on ties)."""
    second, best = None, -1.0
    for label, p in proba.items():
        if p > best and label != prediction:
            second, best = label, p
    return second
