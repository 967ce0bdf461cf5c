"""Checks that a record's features are usable before the model sees them.

Every way a record arrives (``ActiveLearner.decide`` and ``learn`` in a
library, a file, stdin, Kafka) goes through one ``RecordValidator``, which
the learner owns. A feature is a number (finite, magnitude at most 1e100,
which would otherwise overflow the scaler's running variance) or a string
(a categorical value); the names ``id``, ``ts``, ``key`` and ``label``
belong to a record's envelope and are never features. The first record
that passes fixes which features are numeric; later records must have
numbers where numbers were and, with ``require_all``, every feature.

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
>>> v.check({"a": 1.0, "b": "x", "label": "up"})
"'label' is part of the record's envelope, not a feature"
"""

from __future__ import annotations

import math
from itertools import chain, repeat
from operator import eq
from typing import Any

__all__ = ["RecordValidator", "InvalidRecord", "ENVELOPE", "why_not_decided"]

#: the largest magnitude a feature may have: a running variance squares it,
#: and one square past float range turns the scaler's state to NaN for good
_LARGEST = 1e100

#: the names of a record's envelope: never features
ENVELOPE = frozenset({"id", "ts", "key", "label"})


class InvalidRecord(ValueError):
    """Features the learner refuses to see; the message says why, in one line."""


def why_not_decided(e: Exception) -> str:
    """The dead letter's reason for a record ``decide`` raised ``e`` on."""
    if isinstance(e, InvalidRecord):
        return str(e)
    return f"model failed on this record: {type(e).__name__}: {e}"


def _unusable(name: str, value: float) -> str:
    """Why a number outside ``[-_LARGEST, _LARGEST]`` cannot be learned from."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"feature {name!r} is NaN or infinite"
    shown = repr(value)
    shown = shown if len(shown) <= 24 else shown[:20] + "..."
    return f"feature {name!r} is too large to learn from (beyond 1e100): {shown}"


def is_text(s: str) -> bool:
    """False for a string that cannot be written as UTF-8: one holding a lone
    surrogate, as undecodable bytes or an escape such as ``"\\ud800"`` leave."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad_name(name: Any) -> str | None:
    """Why ``name`` cannot name a feature, or ``None``."""
    if type(name) is int:  # river's own streams name their features 0, 1, ...
        return None
    if not isinstance(name, str):
        return f"feature name {_shown(name)} is not a string"
    if name in ENVELOPE:
        return f"{name!r} is part of the record's envelope, not a feature"
    if not name or not is_text(name):
        return f"feature name {_shown(name)} is not valid text"
    return None


def _shown(name: Any) -> str:
    text = repr(name)
    return text if len(text) <= 40 else text[:36] + "..."


class RecordValidator:
    """Learns the schema from the first good record and holds later ones to it.

    Parameters
    ----------
    require_all
        Every feature of the first record must be present in later ones.
        Turn off for sparse streams (bag of words), where absent means 0
        (``--no-require-all-features`` for the daemon).
    """

    def __init__(self, require_all: bool = True):
        self.require_all = require_all
        self.numeric: set[str] | None = None
        self.names: frozenset[str] | None = None

    def check(self, features: Any) -> str | None:
        """``None`` if the features are usable, else why not in one line."""
        try:
            # the usual record, in two C-level passes: the names the first good record
            # had, and numbers whose sum is finite and not huge; anything else (a string,
            # a new name, NaN) takes the loop below, which names the problem
            if features.keys() == self.names and sum(map(abs, features.values())) <= _LARGEST:
                return None
        except (AttributeError, TypeError, ValueError, OverflowError):  # OverflowError: an
            pass  # int past float range
        if not isinstance(features, dict):
            return f"features must be an object of name -> value, got {type(features).__name__}"
        if not features:
            return "record has no features"
        numeric = self.numeric
        names = self.names
        for name, value in features.items():
            kind = type(value)
            if (names is None or name not in names) and (problem := _bad_name(name)):
                return problem
            if kind is float:
                if not -_LARGEST <= value <= _LARGEST:  # NaN fails too
                    return _unusable(name, value)
            elif kind is str:
                if numeric is not None and name in numeric:
                    return f"feature {name!r} must be a number, got {_shown(value)}"
                if not is_text(value):
                    return f"feature {name!r} is not valid text"
            elif isinstance(value, int | float):  # bool is an int; numpy's float64 a float
                try:
                    if not -_LARGEST <= value <= _LARGEST:
                        return _unusable(name, value)
                except TypeError:  # a number type that does not compare
                    return f"feature {name!r} has unsupported type {kind.__name__}"
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

    def check_many(self, many: list[Any]) -> list[str | None] | None:
        """``check`` for a batch: ``None`` when every record is usable (tested for the
        whole batch at once: the usual case), else each record's problem or ``None``."""
        names = self.names
        if names is not None:
            try:
                if all(map(eq, map(dict.keys, many), repeat(names))) and (
                    sum(map(abs, chain.from_iterable(map(dict.values, many)))) <= _LARGEST
                ):
                    return None
            except (TypeError, ValueError, OverflowError):  # not all dicts, or not numbers
                pass
        problems = [self.check(features) for features in many]
        return problems if any(p is not None for p in problems) else None

    def ensure(self, features: Any) -> None:
        """Raise ``InvalidRecord`` with the reason if the features are not usable."""
        problem = self.check(features)
        if problem is not None:
            raise InvalidRecord(problem)
