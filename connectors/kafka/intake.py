"""The Kafka daemon's label intake: labels from people onto the labels topic.

What the labelling API (and the Label Studio bridge) takes in Kafka mode is
produced to the labels topic, to the partition of the record its request
came from (which the group gives to the process holding the request) and
keyed like that record, and the reply waits for
the broker's acknowledgement (``acks=all``, idempotent). From there it is a
label like any other on the topic: the learner holding its request learns
it in its next transaction, exactly once, or refuses it to the dead letters
with its reason. The reply's outcome is therefore ``accepted``; a label
whose request this process does not hold is produced all the same, for the
process of the group that does.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from streamal.connectors.kafka.messages import encode_json

from streamal.intake import (
    IntakeUnavailable,
    OpenRequests,
    open_requests,
    progress_of,
    read_unlocked,
)
from streamal.records import Label, label_to_object

__all__ = ["KafkaIntake"]


class KafkaIntake:
    """A ``streamal.intake.LabelIntake`` over a running ``KafkaApp``."""

    def __init__(self, app: Any, timeout: float = 10.0):
        self.app = app
        self.topic = app.settings.labels_topic
        self.timeout = timeout
        self._producer: Any = None

    @property
    def producer(self) -> Any:
        """Made on the first label (the daemon may start before the broker does),
        with the daemon's Kafka client."""
        if self._producer is None:
            self._producer = self.app.client.intake_producer(self.timeout)
        return self._producer

    @property
    def ready(self) -> bool:
        return bool(self.app.ready)

    def _learners(self) -> list[tuple[int, Any]]:
        """The daemon's learners by partition (its thread may be adding one)."""
        return read_unlocked(lambda: list(self.app.learners.items()))

    def open_requests(self) -> OpenRequests:
        return open_requests([learner for _, learner in self._learners()])

    def submit(self, labels: list[Label]) -> Future:
        done: Future = Future()
        waiting = [len(labels)]

        lock = threading.Lock()  # acknowledgements may come from the client's threads

        def acked(error: Exception | None) -> None:
            if error is not None:
                failed(error)
                return
            with lock:
                waiting[0] -= 1
                last = waiting[0] == 0
            if last and not done.done():
                done.set_result(["accepted"] * len(labels))

        def failed(e: Exception) -> None:
            with lock:
                if done.done():
                    return
                done.set_exception(IntakeUnavailable(f"labels topic {self.topic!r}: {e}"))

        try:
            keys = self._keys([label.request_id for label in labels])
            partitions = self.producer.partitions(self.topic)
            for label, (key, partition) in zip(labels, keys, strict=True):
                value = encode_json(label_to_object(label))
                if partition not in partitions:
                    partition = None  # not a partition of its own there: by key, then
                self.producer.send(self.topic, value, key, partition, acked)
        except Exception as e:  # the broker unreachable past max_block_ms, or busy
            failed(e)
        return done

    def _keys(self, request_ids: list[str]) -> list[tuple[Any, int | None]]:
        """Each request's record key and partition, where this process holds it."""
        learners = self._learners()
        keys: list[tuple[Any, int | None]] = []
        for rid in request_ids:
            found: tuple[Any, int | None] = (None, None)
            for partition, learner in learners:
                entry = learner.pending.peek(rid)
                if entry is not None:
                    found = (getattr(entry, "key", None), partition)
                    break
            keys.append(found)
        return keys

    def why_refused(self, label: Label, outcome: str) -> str:
        return f"label for request {label.request_id!r}: {outcome}"

    def progress(self) -> dict[str, Any]:
        return progress_of(self.app.view)

    def count_http(self, route: str, status: int) -> None:
        self.app.stats.http_requests[(route, status)] += 1

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
