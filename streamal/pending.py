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

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
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
    #: records decided before this one, so a label's delay is known in records
    position: int = -1
    #: what a person answering it is shown: the utility, why it was asked, the
    #: probabilities (requests saved before these existed lack them)
    utility: float | None = None
    reason: str | None = None
    probabilities: dict[Any, float] | None = None
    #: the partitioning key of its record (the Kafka message key), for its label to follow
    key: Any = None


def _compacted(table: dict, removed: int) -> tuple[dict, int]:
    """``table`` copied once half of it has been removed since the last copy.

    A dict that loses its oldest keys as it gains new ones keeps their slots
    until it runs out, then is rebuilt at twice the size a fresh copy takes
    (for 100,000 ids, 7.3 MiB against 3.7): resident memory swings by MiB
    between rebuilds. A copy made before it runs out keeps the smaller size.
    """
    if removed >= 2048 and removed * 2 >= len(table):
        return dict(table), 0
    return table, removed


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
        self._open: dict[str, PendingRequest] = {}
        self._closed: dict[str, str] = {}
        # ids oldest first. A dict's first key would do, but finding it after
        # deletions at the front scans the holes they leave: quadratic in a
        # table that is always losing its oldest entries. Answered ids stay in
        # _open_order until they reach its front (or it is compacted).
        self._open_order: deque[str] = deque()
        self._closed_order: deque[str] = deque()
        self.expired = 0
        # changes since the last drain(), for stores that save increments
        self._journal: dict[tuple[str, str], Any] | None = None

    # keys removed from each dict since it was last copied (``_compacted``);
    # tables saved before these existed take the class's zeros
    _open_removed = 0
    _closed_removed = 0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._open

    def add(
        self,
        request_id: str,
        features: dict[str, Any],
        now: float,
        record_id: str,
        prediction: Any,
        query_probability: float,
        position: int = -1,
        utility: float | None = None,
        reason: str | None = None,
        probabilities: dict[Any, float] | None = None,
    ) -> None:
        pending = self._open
        if request_id not in pending:
            order = self._open_order
            order.append(request_id)
            if len(order) > 2 * len(pending) + 64:
                self._open_order = order = deque(pending)
                order.append(request_id)
        req = pending[request_id] = PendingRequest(
            request_id, record_id, features, now, prediction, query_probability, position,
            utility, reason, probabilities,
        )  # fmt: skip
        if self._journal is not None:
            self._journal["open", request_id] = req
        if len(pending) > self.max_size:
            order = self._open_order
            while order[0] not in pending:
                order.popleft()
            oldest = order.popleft()
            del pending[oldest]
            self._removed_open(1)
            self._close(oldest, "expired")

    def _close(self, request_id: str, why: str) -> None:
        if why == "expired":
            self.expired += 1
        closed = self._closed
        if request_id not in closed:
            self._closed_order.append(request_id)
        closed[request_id] = why
        journal = self._journal
        if journal is not None:
            journal["open", request_id] = None
            journal["closed", request_id] = why
        if len(closed) > self.memory:
            forgotten = self._closed_order.popleft()
            del closed[forgotten]
            if journal is not None:
                journal["closed", forgotten] = None
            self._closed, self._closed_removed = _compacted(closed, self._closed_removed + 1)

    def _removed_open(self, n: int) -> None:
        self._open, self._open_removed = _compacted(self._open, self._open_removed + n)

    def expire(self, now: float) -> int:
        """Drop requests older than the TTL; returns how many were dropped."""
        if self.ttl is None:
            return 0
        dropped = 0
        deadline = now - self.ttl
        pending, order = self._open, self._open_order
        while order:
            request_id = order[0]
            req = pending.get(request_id)
            if req is not None:
                if req.created > deadline:
                    break
                del pending[request_id]
                self._close(request_id, "expired")
                dropped += 1
            order.popleft()
        if dropped:
            self._removed_open(dropped)
        return dropped

    def knows(self, request_id: str) -> bool:
        """Whether the request was ever made (open, answered or expired, as far as
        the table remembers)."""
        return request_id in self._open or request_id in self._closed

    def peek(self, request_id: str) -> PendingRequest | None:
        """The open request, left open; None if it is not waiting."""
        return self._open.get(request_id)

    def pop(self, request_id: str, now: float) -> PendingRequest | str:
        """The request, or the reason it cannot take a label: unknown, duplicate, expired."""
        req = self._open.pop(request_id, None)
        if req is None:
            why = self._closed.get(request_id)
            return "unknown" if why is None else ("duplicate" if why == "answered" else why)
        self._removed_open(1)
        # only this request's age is checked: a sweep of the whole table on
        # every label would cost more than the rest of learning it
        ttl = self.ttl
        if ttl is not None and req.created <= now - ttl:
            self._close(request_id, "expired")
            self.expire(now)  # the others of its age went too
            return "expired"
        self._close(request_id, "answered")
        return req

    # -- incremental persistence -------------------------------------------------

    def track_changes(self) -> None:
        """Start recording changes, so a store can save increments (``drain``)."""
        if self._journal is None:
            self._journal = {}

    def drain(self) -> dict[tuple[str, str], Any]:
        """Changes since the last call: ``("open"|"closed", id) -> entry or None``.

        >>> p = PendingRequests()
        >>> p.track_changes()
        >>> p.add("q1", {}, now=0.0, record_id="r1", prediction=None, query_probability=1.0)
        >>> _ = p.pop("q1", now=1.0)
        >>> sorted(p.drain().items())
        [(('closed', 'q1'), 'answered'), (('open', 'q1'), None)]
        """
        journal, self._journal = self._journal or {}, {} if self._journal is not None else None
        return journal

    def shell(self) -> PendingRequests:
        """A copy with the settings and counters but no entries (saved beside them)."""
        copy = PendingRequests.__new__(PendingRequests)
        copy.__dict__.update(self.__dict__)
        copy._open, copy._closed, copy._journal = {}, {}, None
        copy._open_order, copy._closed_order = deque(), deque()
        return copy

    def refill(self, open_entries: list[PendingRequest], closed: list[tuple[str, str]]) -> None:
        """Put back entries saved apart from the shell, oldest first."""
        self._open = {req.request_id: req for req in open_entries}
        self._closed = dict(closed)
        self._reorder()

    def apply(self, changes: list[tuple[tuple[str, str], Any]]) -> None:
        """Replay changes from ``drain()`` on top of a refilled table."""
        for (kind, request_id), entry in changes:
            table = self._open if kind == "open" else self._closed
            if entry is None:
                table.pop(request_id, None)
            else:
                table.pop(request_id, None)  # a re-added id moves to the end
                table[request_id] = entry
        self._reorder()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_open_order" not in state:  # saved before the orders were kept apart
            self._reorder()

    def _reorder(self) -> None:
        self._open_order, self._closed_order = deque(self._open), deque(self._closed)

    def size(self) -> int:
        """Entries held: open requests and remembered closed ids."""
        return len(self._open) + len(self._closed)

    def open_entries(self) -> list[PendingRequest]:
        return list(self._open.values())

    def closed_entries(self) -> list[tuple[str, str]]:
        return list(self._closed.items())

    def pieces(self, size: int) -> Iterator[tuple[list[PendingRequest], list[tuple[str, str]]]]:
        """The table as ``(open entries, closed ids)`` pieces of at most ``size``
        entries together, oldest first, at least one; ``refill`` takes their
        concatenation. No copy of the whole table is made at once.

        >>> table = PendingRequests(memory=10)
        >>> for i in range(5):
        ...     table.add(f"q{i}", {}, 0.0, f"r{i}", "UP", 0.1)
        >>> _ = table.pop("q0", 1.0), table.pop("q1", 1.0)
        >>> [(len(o), len(c)) for o, c in table.pieces(2)]
        [(2, 0), (1, 1), (0, 1)]
        """
        opened, closed = iter(self._open.values()), iter(self._closed.items())
        left = len(self._open) + len(self._closed)
        while True:
            o = list(islice(opened, size))
            c = list(islice(closed, size - len(o)))
            yield o, c
            left -= len(o) + len(c)
            if left <= 0:
                return
