"""Pending label requests: request id -> what is needed to learn when the label comes.

Labels arrive late and in any order. A request waits here until its label
comes, its time-to-live runs out, or the table is full and it is the
oldest. A label for a request that is not waiting is rejected with a
reason, never raised.

>>> p = PendingRequests(ttl=60.0, max_size=2)
>>> p.add("q1", {"x": 1.0}, now=0.0, record_id="r1", prediction=True, query_probability=1.0)
>>> p.pop("q1", now=10.0).features
{'x': 1.0}
>>> p.pop("q1", now=11.0)
'duplicate'
>>> p.pop("nope", now=11.0)
'unknown'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PendingRequest", "PendingRequests"]


@dataclass(slots=True)
class PendingRequest:
    request_id: str
    record_id: str
    features: dict[str, Any]
    created: float
    prediction: Any
    query_probability: float


class PendingRequests:
    """Bounded table of open requests with a time-to-live.

    Parameters
    ----------
    ttl
        Seconds (in the learner's clock) a request waits for its label;
        ``None`` waits forever.
    max_size
        Most requests kept; past it the oldest is dropped as expired.
    memory
        How many answered and expired ids are remembered, so that a late
        or repeated label is reported as ``duplicate`` or ``expired``
        rather than ``unknown``.
    """

    def __init__(
        self, ttl: float | None = 86_400.0, max_size: int = 100_000, memory: int = 100_000
    ):
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive or None, got {ttl!r}")
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size!r}")
        self.ttl = ttl
        self.max_size = max_size
        self.memory = memory
        # plain dicts keep insertion order, so the first key is the oldest
        self._open: dict[str, PendingRequest] = {}
        self._closed: dict[str, str] = {}
        self.expired = 0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._open

    def add(
        self,
        request_id: str,
        features: dict[str, Any],
        *,
        now: float,
        record_id: str,
        prediction: Any,
        query_probability: float,
    ) -> None:
        self._open[request_id] = PendingRequest(
            request_id, record_id, features, now, prediction, query_probability
        )
        if len(self._open) > self.max_size:
            oldest = next(iter(self._open))
            del self._open[oldest]
            self._close(oldest, "expired")

    def _close(self, request_id: str, why: str) -> None:
        if why == "expired":
            self.expired += 1
        closed = self._closed
        closed[request_id] = why
        if len(closed) > self.memory:
            del closed[next(iter(closed))]

    def expire(self, now: float) -> int:
        """Drop requests older than the TTL; returns how many were dropped."""
        if self.ttl is None:
            return 0
        dropped = 0
        deadline = now - self.ttl
        pending = self._open
        while pending:
            request_id = next(iter(pending))
            if pending[request_id].created > deadline:
                break
            del pending[request_id]
            self._close(request_id, "expired")
            dropped += 1
        return dropped

    def pop(self, request_id: str, now: float) -> PendingRequest | str:
        """The request, or the reason it cannot take a label: unknown, duplicate, expired."""
        if self.ttl is not None:
            self.expire(now)
        req = self._open.pop(request_id, None)
        if req is None:
            why = self._closed.get(request_id)
            return "unknown" if why is None else ("duplicate" if why == "answered" else why)
        self._close(request_id, "answered")
        return req
