"""Utilities: how much a label for a record is worth, from its class probabilities.

Every utility maps a probability dict to a number in [0, 1]; 1 means "as
uncertain as it gets". An empty dict (a model that has seen nothing) is
maximally uncertain.

>>> least_confidence({"a": 0.8, "b": 0.2})
0.19999999999999996
>>> margin({"a": 0.5, "b": 0.5})
1.0
>>> round(entropy({"a": 0.5, "b": 0.5}), 6)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["least_confidence", "margin", "entropy", "UTILITIES", "get_utility"]

#: the learner's default: each strategy's ``preferred_utility``
AUTO = "auto"


def least_confidence(proba: Mapping[Any, float]) -> float:
    """1 - max p: the utility of Žliobaitė et al.'s uncertainty strategies."""
    if not proba:
        return 1.0
    return 1.0 - max(proba.values())


def margin(proba: Mapping[Any, float]) -> float:
    """1 - (p1 - p2), with p1 >= p2 the two largest probabilities.

    On two classes it orders records as least confidence does; on more it
    also looks at the runner-up, the class the record might be instead.
    """
    if len(proba) == 2:  # the common case, on the hot path
        a, b = proba.values()
        return 1.0 - abs(a - b)
    if len(proba) < 2:
        return 1.0 if not proba else 1.0 - max(proba.values())
    p1 = p2 = 0.0
    for p in proba.values():
        if p > p1:
            p1, p2 = p, p1
        elif p > p2:
            p2 = p
    return 1.0 - (p1 - p2)


def entropy(proba: Mapping[Any, float]) -> float:
    """Shannon entropy normalised by log(k) so that it lies in [0, 1]."""
    k = len(proba)
    if k < 2:
        return 1.0 if k == 0 else 0.0
    h = -sum(p * math.log(p) for p in proba.values() if p > 0.0)
    return h / math.log(k)


UTILITIES: dict[str, Callable[[Mapping[Any, float]], float]] = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}


def get_utility(name: str) -> Callable[[Mapping[Any, float]], float]:
    """Look a utility up by name.

    >>> get_utility("margin") is margin
    True
    """
    try:
        return UTILITIES[name]
    except KeyError:
        raise ValueError(
            f"unknown utility {name!r}; choose one of {', '.join(UTILITIES)}"
        ) from None
