"""The data that flows: records in, decisions out, labels back.

>>> r = Record(id="r1", features={"x": 1.0})
>>> r.id, r.features
('r1', {'x': 1.0})
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record", "Decision", "Label", "BadInput", "record_from_object"]


@dataclass(slots=True)
class Record:
    """One event of the stream.

    Parameters
    ----------
    id
        Stable identifier; label requests refer back to it.
    features
        Feature name -> number (or string for a categorical feature).
    ts
        Event time in seconds, if the source knows it.
    key
        Partitioning key, carried through to the label request.
    label
        The true label, known only when replaying a labelled file.
    """

    id: str
    features: dict[str, Any]
    ts: float | None = None
    key: str | None = None
    label: Any = None
    partition: int | None = None
    offset: int | None = None


@dataclass(slots=True)
class Decision:
    """What the learner decided for one record.

    ``query`` says whether a label should be requested; ``request_id`` names
    the request (``None`` when not queried). ``query_probability`` is the
    probability with which the strategy would query this record, which an
    importance-weighted estimate needs.
    """

    record_id: str
    query: bool
    request_id: str | None
    utility: float
    confidence: float
    prediction: Any
    probabilities: dict[Any, float]
    query_probability: float
    reason: str = "strategy"

    def to_request(self, record: Record, strategy: str) -> dict[str, Any]:
        """The label request as written to a sink (JSON-serialisable)."""
        return {
            "request_id": self.request_id,
            "record_id": self.record_id,
            "key": record.key,
            "features": record.features,
            "utility": self.utility,
            "confidence": self.confidence,
            "prediction": self.prediction,
            "probabilities": {str(k): v for k, v in self.probabilities.items()},
            "query_probability": self.query_probability,
            "reason": self.reason,
            "strategy": strategy,
            "ts": record.ts,
        }


@dataclass(slots=True)
class Label:
    """A label coming back for a request."""

    request_id: str
    label: Any
    annotator: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadInput:
    """Input that could not be used, with the reason; it goes to the dead letters."""

    reason: str
    raw: Any = None
    where: str | None = None

    def to_dead_letter(self) -> dict[str, Any]:
        raw = self.raw
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        return {"reason": self.reason, "where": self.where, "raw": raw}


def record_from_object(obj: dict[str, Any], default_id: str) -> Record | BadInput:
    """A record from a decoded JSON object: an envelope or a flat object of features.

    >>> record_from_object({"id": 7, "features": {"x": 1.0}, "ts": 3}, "0").id
    '7'
    >>> record_from_object({"x": 1.0}, "0").features
    {'x': 1.0}
    >>> record_from_object({"features": [1]}, "0").reason
    'features must be an object of name -> value'
    """
    if "features" not in obj:
        return Record(id=default_id, features=obj)
    features = obj["features"]
    if not isinstance(features, dict):
        return BadInput("features must be an object of name -> value", obj, default_id)
    ts = obj.get("ts")
    if ts is not None and (
        isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts)
    ):
        return BadInput(f"ts must be a finite number of seconds, got {ts!r}", obj, default_id)
    rid = obj.get("id")
    return Record(
        id=default_id if rid is None else str(rid),
        features=features,
        ts=ts,
        key=obj.get("key"),
        label=obj.get("label"),
    )
