"""The pending-request table under churn: bounded, in order, and no larger than it needs."""

import sys

from streamal.pending import PendingRequests


def _answer(table: PendingRequests, first: int, n: int) -> None:
    for i in range(first, first + n):
        table.add(f"q-{i}", {}, float(i), f"r-{i}", "UP", 0.1)
        assert table.pop(f"q-{i}", float(i)) != "unknown"


def test_remembered_ids_keep_the_size_of_a_fresh_table_as_they_turn_over():
    table = PendingRequests(memory=50_000)
    _answer(table, 0, 50_000)
    largest = 0
    for start in range(50_000, 250_000, 1_000):
        _answer(table, start, 1_000)
        largest = max(largest, sys.getsizeof(table._closed))
    # a dict that forgets its oldest keys grows to twice the size of a fresh copy
    assert largest <= sys.getsizeof(dict(table._closed))
    assert len(table._closed) == 50_000 and list(table._closed) == list(table._closed_order)
    assert table.pop("q-200000", 0.0) == "duplicate" and table.pop("q-199999", 0.0) == "unknown"


def test_open_requests_keep_the_size_of_a_fresh_table_as_the_oldest_expire():
    table = PendingRequests(ttl=None, max_size=50_000, memory=10)
    largest = 0
    for i in range(250_000):
        table.add(f"q-{i}", {}, float(i), f"r-{i}", "UP", 0.1)
        if i % 1000 == 0:
            largest = max(largest, sys.getsizeof(table._open))
    assert largest <= sys.getsizeof(dict(table._open))
    assert len(table) == 50_000 and table.expired == 200_000
    assert next(iter(table._open)) == "q-200000" and table.peek("q-249999") is not None
