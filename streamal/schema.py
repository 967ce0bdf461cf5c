"""Checks that a record's features are usable before the model sees them.

The first good record fixes which features are numeric; later records must
have every feature, numbers where numbers were, and no NaN, infinity or
magnitude beyond 1e100 (which would overflow the scaler's running variance).
A failing record gets a one-line reason and goes to the dead letters.

>>> v = RecordValidator()
>>> v.check({"a": 1.0, "b": "x"}) is None
True
>>> v.check({"a": "high", "b": "x"})
"feature 'a' must be a number, got 'high'"
>>> v.check({"a": float("nan"), "b": "x"})
"feature 'a' is NaN or infinite"
>>> v.check({"b": "x"})
"missing feature 'a'"
>>> v.check({"a": 1e300, "b": "x"})
"feature 'a' is too large to learn from (beyond 1e100): 1e+300"
>>> v.check({"a": 10**400, "b": "x"})
"feature 'a' is too large to learn from (beyond 1e100): 10000000000000000000..."
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["RecordValidator"]

#: the largest magnitude a feature may have: a running variance squares it,
#: and one square past float range turns the scaler's state to NaN for good
_LARGEST = 1e100


def _unusable(name: str, value: float) -> str:
    """Why a number outside ``[-_LARGEST, _LARGEST]`` cannot be learned from."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"feature {name!r} is NaN or infinite"
    shown = repr(value)
    shown = shown if len(shown) <= 24 else shown[:20] + "..."
    return f"feature {name!r} is too large to learn from (beyond 1e100): {shown}"


class RecordValidator:
    """Learns the schema from the first good record and holds later ones to it.

    Parameters
    ----------
    require_all
        Every feature of the first record must be present in later ones.
        Turn off for sparse streams (bag of words), where absent means 0.
    """

    def __init__(self, require_all: bool = True):
        self.require_all = require_all
        self.numeric: set[str] | None = None
        self.names: frozenset[str] | None = None

    def check(self, features: Any) -> str | None:
        if type(features) is not dict:
            if not isinstance(features, dict):
                return f"features must be an object of name -> value, got {type(features).__name__}"
        if not features:
            return "record has no features"
        numeric = self.numeric
        if numeric is not None and features.keys() == self.names:
            # fast path for the usual record: known names, numbers wherever a sum
            # works, none of them NaN, infinite or huge; anything else takes the
            # loop that names the problem
            try:
                if sum(map(abs, features.values())) <= _LARGEST:
                    return None
            except (TypeError, OverflowError):  # OverflowError: an int past float range
                pass
        for name, value in features.items():
            kind = type(value)
            # the common case first: a float feature with a text name. NaN and
            # infinity fail the bound too; _unusable says which it was
            if kind is float and type(name) is str:
                if not -_LARGEST <= value <= _LARGEST:
                    return _unusable(name, value)
                continue
            if not isinstance(name, str):
                return f"feature name {name!r} is not a string"
            if kind is str:
                if numeric is not None and name in numeric:
                    return f"feature {name!r} must be a number, got {value!r}"
            elif isinstance(value, int | float):  # bool is an int; numpy's float64 a float
                if not -_LARGEST <= value <= _LARGEST:
                    return _unusable(name, value)
            else:
                return f"feature {name!r} has unsupported type {kind.__name__}"
        if numeric is None:
            self.numeric = {
                k for k, v in features.items() if not isinstance(v, str) and not isinstance(v, bool)
            }
            self.names = frozenset(features)
        elif self.require_all and not features.keys() >= self.names:
            missing = sorted(self.names - features.keys())
            return f"missing feature {missing[0]!r}" + (
                f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            )
        return None
