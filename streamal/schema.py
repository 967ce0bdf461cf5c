"""Checks that a record's features are usable before the model sees them.

The first good record fixes which features are numeric; later records must
have every feature, numbers where numbers were, and no NaN or infinity.
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
>>> v.check({"a": 10**400, "b": "x"})
"feature 'a' is too large for a number: 10000000000000000000..."
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["RecordValidator"]

_FLOAT_MAX = sys.float_info.max


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
            # works and is finite; anything else takes the loop that names the problem
            try:
                if math.isfinite(sum(features.values())):
                    return None
            except (TypeError, OverflowError):  # OverflowError: an int past float range
                pass
        isfinite = math.isfinite
        for name, value in features.items():
            kind = type(value)
            # the common case first: a float feature with a text name
            if kind is float and type(name) is str:
                if not isfinite(value):
                    return f"feature {name!r} is NaN or infinite"
                continue
            if not isinstance(name, str):
                return f"feature name {name!r} is not a string"
            if kind is str:
                if numeric is not None and name in numeric:
                    return f"feature {name!r} must be a number, got {value!r}"
            elif kind is float:
                if not isfinite(value):
                    return f"feature {name!r} is NaN or infinite"
            elif not isinstance(value, int | float):  # bool is an int
                return f"feature {name!r} has unsupported type {kind.__name__}"
            elif kind is int and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                return f"feature {name!r} is too large for a number: {str(value)[:20]}..."
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
