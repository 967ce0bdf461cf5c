"""Stream query strategies, one family per module.

Each strategy is a small object with ``ask(utility) -> bool``; the CLI and
configuration name them in snake_case.

>>> from streamal import strategies
>>> strategies.get("variable_uncertainty", budget=0.05)
VariableUncertainty(budget=0.05, theta=1.0, step=0.01, w=100)
>>> sorted(strategies.STRATEGIES)[:3]
['balanced_incremental_quantile_filter', 'cognitive_dual_query', 'density_based_active_learning']
"""

from __future__ import annotations

import inspect
from typing import Any

from streamal.strategies.base import QueryStrategy, snake_case
from streamal.strategies.cognitive import CognitiveDualQuery
from streamal.strategies.density import DensityBasedActiveLearning
from streamal.strategies.ema import EmaUncertaintyFilter
from streamal.strategies.exploration import Exploration
from streamal.strategies.pal import ProbabilisticActiveLearning
from streamal.strategies.per_class import (
    PerBoundaryQuantileFilter,
    PerClassQuantileFilter,
    PerPredictedClass,
)
from streamal.strategies.probabilistic import EntropySampling, SelectiveSampling
from streamal.strategies.quantile import BalancedIncrementalQuantileFilter
from streamal.strategies.random import PeriodicSampling, RandomSampling
from streamal.strategies.uncertainty import (
    FixedUncertainty,
    RandomizedVariableUncertainty,
    Split,
    VariableUncertainty,
)

__all__ = [
    "QueryStrategy",
    "RandomSampling",
    "PeriodicSampling",
    "FixedUncertainty",
    "VariableUncertainty",
    "RandomizedVariableUncertainty",
    "Split",
    "BalancedIncrementalQuantileFilter",
    "EntropySampling",
    "SelectiveSampling",
    "DensityBasedActiveLearning",
    "ProbabilisticActiveLearning",
    "CognitiveDualQuery",
    "EmaUncertaintyFilter",
    "PerPredictedClass",
    "PerClassQuantileFilter",
    "PerBoundaryQuantileFilter",
    "Exploration",
    "STRATEGIES",
    "get",
    "takes_seed",
]

STRATEGIES: dict[str, type[QueryStrategy]] = {
    snake_case(cls.__name__): cls
    for cls in (
        RandomSampling,
        PeriodicSampling,
        FixedUncertainty,
        VariableUncertainty,
        RandomizedVariableUncertainty,
        Split,
        BalancedIncrementalQuantileFilter,
        PerClassQuantileFilter,
        PerBoundaryQuantileFilter,
        EntropySampling,
        SelectiveSampling,
        EmaUncertaintyFilter,
        DensityBasedActiveLearning,
        ProbabilisticActiveLearning,
        CognitiveDualQuery,
    )
}


def get(name: str, **params: Any) -> QueryStrategy:
    """Build a strategy from its snake_case name; ``seed`` is dropped where unused."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None
    if "seed" in params and not takes_seed(name):
        params.pop("seed")
    return cls(**params)


def takes_seed(name: str) -> bool:
    """Whether the strategy draws random numbers (and so takes a ``seed``).

    >>> takes_seed("split"), takes_seed("variable_uncertainty")
    (True, False)
    """
    return "seed" in inspect.signature(STRATEGIES[name]).parameters
