"""The contract every query strategy follows.

A strategy turns one utility at a time into a decision. ``ask(utility)``
commits that decision and advances the strategy's adaptive state (threshold,
budget estimate, random stream), so feeding precomputed utilities through
``ask`` reproduces exactly what the learner does with a live model.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable

from streamal.budget import check_budget

__all__ = ["QueryStrategy", "snake_case"]


def snake_case(name: str) -> str:
    """``VariableUncertainty`` -> ``variable_uncertainty``.

    >>> snake_case("BalancedIncrementalQuantileFilter")
    'balanced_incremental_quantile_filter'
    """
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class QueryStrategy:
    """Base class: parameters stored as given, derived state built in ``_reset``.

    Subclasses implement ``ask(utility, allowed=True) -> bool``. ``allowed``
    is False when a guard above the strategy (the learner's hard budget cap)
    forbids a query; the strategy then behaves as if its own budget were
    exhausted, so its state stays consistent with what was really spent.
    After each ``ask``, ``query_probability`` holds the probability with
    which the strategy would have queried that record.
    """

    #: the strategy's adaptive threshold on confidence, if it has one
    threshold: float | None = None
    #: True for strategies that look at each record's features: the learner
    #: then calls ``observe(features)`` before each ``ask``
    needs_features: bool = False
    #: True for strategies that keep labelled records: the learner calls
    #: ``learned(features, label)`` for each label it learns from
    needs_labels: bool = False
    #: the utility the learner gives it unless told otherwise: the
    #: confidence-threshold strategies were written for least confidence
    preferred_utility: str = "least_confidence"
    query_probability: float = 0.0

    def __init__(self, budget: float = 0.1):
        self.budget = check_budget(budget)

    @property
    def name(self) -> str:
        return snake_case(type(self).__name__)

    def _reset(self) -> None:
        """Build the derived state from the parameters."""

    def ask(self, utility: float, allowed: bool = True) -> bool:
        raise NotImplementedError

    def ask_many(self, utilities: Iterable[float]) -> list[bool]:
        """Decide a batch, exactly as calling ``ask`` on each in turn."""
        ask = self.ask
        return [ask(u) for u in utilities]

    def ask_under_cap(
        self, utilities: list[float], budget: float, queried: int, seen: int
    ) -> tuple[list[bool], list[float]] | None:
        """``ask`` on each utility under a hard cap, in one loop; ``None`` if not offered.

        The cap allows a query while ``queried <= budget * seen`` (``seen``
        counting the record at hand). A strategy whose ``ask`` is cheap may
        override this with a loop that keeps its state in local variables:
        the batch path then costs a fraction of one ``ask`` call a record.
        It must make exactly the decisions ``ask`` makes (the shared
        strategy checks test it) and return them with the query
        probabilities.
        """
        return None

    def on_drift(self) -> None:
        """React to a detected concept drift (default: nothing to reset)."""

    def rebudget(self, budget: float) -> None:
        """Spend ``budget`` from the next record on, keeping what was learned.

        The learner calls it when it moves part of the budget to exploration
        (labels coming late). A strategy that counts its spending from the
        start overrides it, so that the change does not count backwards.
        """
        self.budget = check_budget(budget)

    def _params(self) -> dict:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def clone(self) -> QueryStrategy:
        """A fresh strategy with the same parameters and no history."""
        return type(self)(**self._params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def check_window(w: int) -> int:
    if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
        raise ValueError(f"w must be a positive integer, got {w!r}")
    return w


def check_unit(name: str, value: float, *, low_open: bool = True, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (0.0 < value if low_open else 0.0 <= value) or value > high:
        raise ValueError(f"{name} must be in (0, {high}], got {value!r}")
    return float(value)


class CountedFromStart(QueryStrategy):
    """Base of the strategies that count their spending from the first record.

    They compare ``budget * _seen`` with ``_queried``, so a new budget would
    count backwards over every record already seen; ``rebudget`` carries the
    old budget's balance over in ``_credit``, which ``ask`` adds.
    """

    # a class default: states saved before rebudget existed lack it
    _credit = 0.0

    def rebudget(self, budget: float) -> None:
        old = self.budget
        super().rebudget(budget)
        self._credit += (old - self.budget) * self._seen


class Windowed(QueryStrategy):
    """Base of the strategies that keep the windowed budget estimate of Žliobaitė et al. (2014).

    ``u_t = u_{t-1} (w - 1) / w + l_t``; a label may be requested while
    ``u_t / w < budget``. Subclasses call ``_reset`` (which resets ``_u``)
    and update ``self._u = self._u * self._decay + query`` in ``ask``.
    """

    def __init__(self, budget: float = 0.1, w: int = 100):
        super().__init__(budget)
        self.w = check_window(w)

    def _reset(self) -> None:
        self._u = 0.0
        self._decay = (self.w - 1) / self.w
