"""How long labels take to come back: counts by bucket, read by the metrics at scrape time.

>>> latency = LabelLatency()
>>> latency.observe(3.0); latency.observe(120.0)
>>> latency.count, latency.sum
(2, 123.0)
>>> [n for le, n in latency.cumulative()][:4]
[0, 0, 1, 1]
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["LabelLatency"]

#: seconds from a request to its label: a person answers in seconds to days
BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86_400.0)


class LabelLatency:
    """Counts of label latencies by bucket (``le`` upper bounds, in seconds)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last: beyond every bucket
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.counts[bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def add(self, other: LabelLatency) -> None:
        """Count ``other``'s latencies too (same buckets): several learners as one."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.count += other.count

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count at or below)`` for each bucket and ``+Inf``, as Prometheus wants."""
        out, total = [], 0
        for le, n in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            total += n
            out.append((le, total))
        return out
