"""The data that flows: records in, decisions out, labels back.

>>> r = Record(id="r1", features={"x": 1.0})
>>> r.id, r.features
('r1', {'x': 1.0})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record", "Decision", "Label", "BadInput"]


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
