"""The daemon's Kafka client over confluent-kafka (librdkafka, in C).

Chosen with ``[kafka] client = "confluent"``; installed with the ``confluent``
extra. librdkafka fetches and batches in its own threads, so the daemon's
Python thread does only the daemon's work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

try:
    from confluent_kafka import (
        OFFSET_BEGINNING,
        Consumer,
        KafkaError,
        KafkaException,
        Producer,
        TopicPartition,
    )
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the confluent Kafka client needs confluent-kafka: pip install 'streamal[confluent]'"
    ) from e
from streamal.connectors.kafka.clients import (
    MAX_STATE_BYTES,
    Batch,
    Message,
    Offsets,
    TopicSpec,
)

__all__ = ["ConfluentClient"]

log = logging.getLogger("streamal.kafka")
#: librdkafka's own log lines, through Python's logging
_rdkafka_log = logging.getLogger("kafka.librdkafka")

# bounded waits, so that an unreachable broker means a retry, and SIGTERM is heard
_TIMEOUT = 10.0

#: what the daemon fetches of a partition at once: at librdkafka's default of 1 MiB,
#: a round trip for every ~7,000 small records; at 4 MiB one partition is read 15 %
#: faster, within the same read-ahead bound
PARTITION_FETCH_BYTES = 4 * 1024 * 1024


def _batch(messages: list[Any]) -> Batch:
    """Messages by (topic, partition); errors raised, end-of-partition events skipped."""
    out: Batch = {}
    for m in messages:
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(err)
        topic, partition = m.topic(), m.partition()
        msg = Message(topic, partition, m.offset(), m.key(), m.value(), m.headers())
        group = out.get((topic, partition))
        if group is None:
            out[(topic, partition)] = [msg]
        else:
            group.append(msg)
    return out


class ConfluentClient:
    name = "confluent"
    errors = (KafkaException, BufferError, OSError)

    def __init__(self, bootstrap: str, client_id: str):
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._admin: AdminClient | None = None

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id,
                "logger": _rdkafka_log, **extra}  # fmt: skip

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self.config())
        return self._admin

    def _metadata(self) -> Any:
        return self.admin.list_topics(timeout=_TIMEOUT)

    def topics(self) -> set[str]:
        return set(self._metadata().topics)

    def partition_count(self, topic: str) -> int:
        described = self._metadata().topics.get(topic)
        return max(1, len(described.partitions) if described is not None else 0)

    def create_topics(self, specs: list[TopicSpec]) -> None:
        futures = self.admin.create_topics(
            [NewTopic(s.name, s.partitions, 1, config=s.configs) for s in specs],
            request_timeout=_TIMEOUT,
        )  # fmt: skip
        for future in futures.values():
            try:
                future.result(timeout=_TIMEOUT)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def leaderless(self, topics: list[str]) -> list[str]:
        known = self._metadata().topics
        waiting = []
        for name in topics:
            t = known.get(name)
            if (t is None or t.error is not None or not t.partitions
                    or any(p.leader < 0 for p in t.partitions.values())):  # fmt: skip
                waiting.append(name)
        return waiting

    def producer(self, transactional_id: str | None) -> _Producer:
        return _Producer(self, transactional_id)

    def group_consumer(
        self, topics: list[str], group: str, instance: str,
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
    ) -> _GroupConsumer:  # fmt: skip
        return _GroupConsumer(self, topics, group, instance, on_assigned, on_revoked)

    def reader(self) -> _Reader:
        return _Reader(self)

    def intake_producer(self, timeout: float) -> _IntakeProducer:
        return _IntakeProducer(self, timeout)

    def close(self) -> None:
        self._admin = None


class _Producer:
    def __init__(self, client: ConfluentClient, transactional_id: str | None):
        self._failed: KafkaError | None = None
        config = client.config(
            acks="all", **{"linger.ms": 5, "message.max.bytes": MAX_STATE_BYTES,
                           "delivery.report.only.error": True,
                           "socket.timeout.ms": int(_TIMEOUT * 1000)},
            on_delivery=self._delivered,
        )  # fmt: skip
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
        self._p = Producer(config)
        self._produce = self._p.produce
        if transactional_id is not None:
            # fences any earlier incarnation and aborts its open transaction
            self._p.init_transactions(_TIMEOUT)

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None and self._failed is None:
            self._failed = err

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        try:
            self._produce(topic, value, key, headers=headers)
        except BufferError:  # the local queue is full: let librdkafka send some first
            self._p.poll(0.5)
            self._produce(topic, value, key, headers=headers)

    def begin(self) -> None:
        self._p.poll(0)
        self._p.begin_transaction()

    def commit(self, offsets: Offsets, consumer: _GroupConsumer, timeout: float) -> None:
        if offsets:
            positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self._p.send_offsets_to_transaction(
                positions, consumer.consumer.consumer_group_metadata(), timeout
            )
        self._p.commit_transaction(timeout)
        self._check()

    def flush(self, timeout: float) -> None:
        left = self._p.flush(timeout)
        self._check()
        if left:
            why = f"{left} message(s) not delivered in {timeout:.0f} s"
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, why))

    def _check(self) -> None:
        if self._failed is not None:
            err, self._failed = self._failed, None
            raise KafkaException(err)

    def close(self, timeout: float) -> None:
        if timeout:
            self._p.flush(timeout)
        else:
            self._p.purge()


class _GroupConsumer:
    def __init__(self, client: ConfluentClient, topics: list[str], group: str, instance: str,
                 on_assigned: Callable, on_revoked: Callable):  # fmt: skip
        self.on_assigned, self.on_revoked = on_assigned, on_revoked
        self.consumer = Consumer(client.config(**{
            "group.id": group, "group.instance.id": instance,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "partition.assignment.strategy": "range", "session.timeout.ms": 10_000,
            "fetch.wait.max.ms": 100, "socket.timeout.ms": int(_TIMEOUT * 1000),
            # a topic just created may not be in the first metadata the group assigns from
            "topic.metadata.refresh.interval.ms": 5_000,
            # what librdkafka fetches ahead, 64 MiB by default: a fifth of that is seconds of
            # work, and the memory stays the same whether the stream is behind or not
            "queued.max.messages.kbytes": 12 * 1024,
            "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,
        }))  # fmt: skip
        self.consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)  # fmt: skip
        self._consume = self.consumer.consume

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        if partitions:
            consumer.pause(partitions)
        self.on_assigned([(tp.topic, tp.partition) for tp in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.on_revoked([(tp.topic, tp.partition) for tp in partitions])

    def poll(self, timeout: float, max_records: int) -> Batch:
        return _batch(self._consume(max_records, timeout))

    def commit(self, offsets: Offsets) -> None:
        self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                             asynchronous=False)  # fmt: skip

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    def caught_up(self) -> bool:
        consumer = self.consumer
        assigned = consumer.assignment()
        if not assigned:
            return False
        positions = consumer.position(assigned)
        unknown = [tp for tp in positions if tp.offset < 0]  # nothing fetched yet
        asked = consumer.committed(unknown, timeout=_TIMEOUT) if unknown else []
        committed = {(tp.topic, tp.partition): tp.offset for tp in asked}
        for tp in positions:
            low, end = consumer.get_watermark_offsets(tp, timeout=_TIMEOUT, cached=False)
            at = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            if (at if at >= 0 else low) < end:
                return False
        return True

    def resume_all(self) -> None:
        assigned = self.consumer.assignment()
        self.consumer.resume(assigned)
        # librdkafka's broker thread does not notice a resume until its next wake-up, up
        # to a second later; a request to each partition's leader wakes it now
        for tp in assigned:
            try:
                self.consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
            except KafkaException:  # only a wake-up: the poll after reports an outage
                break

    def close(self) -> None:
        self.consumer.close()


class _Reader:
    def __init__(self, client: ConfluentClient):
        self._c = Consumer(client.config(**{
            # a group id the reader never joins nor commits to: it only assigns
            "group.id": f"{client.client_id}-reader", "enable.auto.commit": False,
            "isolation.level": "read_committed", "fetch.max.bytes": MAX_STATE_BYTES,
            "max.partition.fetch.bytes": MAX_STATE_BYTES,
            "receive.message.max.bytes": MAX_STATE_BYTES + 1024 * 1024,
            "socket.timeout.ms": int(_TIMEOUT * 1000),
            # a watermark query waits behind the fetch the broker holds (500 ms by
            # default) on the same connection: 170 ms a query, six of them at a start
            "fetch.wait.max.ms": 20,
        }))  # fmt: skip
        self._start: dict[tuple[str, int], int] = {}

    def partitions(self, topic: str) -> list[int]:
        described = self._c.list_topics(timeout=_TIMEOUT).topics.get(topic)
        if described is None or described.error is not None:
            return []
        return sorted(described.partitions)

    def assign(self, topic: str, partitions: list[int]) -> None:
        self._start = {(topic, p): OFFSET_BEGINNING for p in partitions}
        self._c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

    def seek(self, topic: str, partition: int, offset: int) -> None:
        # a seek right after assign() finds the partition not fetching yet: assign again
        self._start[(topic, partition)] = offset
        self._c.assign([TopicPartition(t, p, o) for (t, p), o in self._start.items()])

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        tp = TopicPartition(topic, partition)  # read_committed: the high is the last stable
        try:
            return self._c.get_watermark_offsets(tp, timeout=_TIMEOUT, cached=False)
        except KafkaException as e:
            if e.args[0].code() == KafkaError._UNKNOWN_PARTITION:  # no such topic: empty
                return 0, 0
            raise

    def first_offset(self, topic: str, partition: int) -> int:
        return self._watermarks(topic, partition)[0]

    def end_offset(self, topic: str, partition: int) -> int:
        return self._watermarks(topic, partition)[1]

    def position(self, topic: str, partition: int) -> int:
        (tp,) = self._c.position([TopicPartition(topic, partition)])
        if tp.offset >= 0:
            return tp.offset
        start = self._start.get((topic, partition), OFFSET_BEGINNING)
        return start if start >= 0 else self.first_offset(topic, partition)

    def poll(self, timeout: float) -> Batch:
        # consume(500, timeout) waits for all 500 or the whole timeout (before
        # confluent-kafka 2.13), so each read of a short changelog cost its full
        # timeout: take what is fetched, else the first to come and what came with it
        got = self._c.consume(500, 0)
        if not got and timeout > 0:
            got = self._c.consume(1, timeout)
            if got:
                got.extend(self._c.consume(499, 0))
        return _batch(got)

    def close(self) -> None:
        self._c.close()


class _IntakeProducer:
    """Idempotent, ``acks=all``; ``send`` calls ``done(None)`` once the broker has
    the message, ``done(error)`` if it cannot. A thread of its own serves the
    acknowledgements, so that the caller never waits for them."""

    def __init__(self, client: ConfluentClient, timeout: float):
        ms = int(timeout * 1000)
        self._p = Producer(client.config(acks="all", **{
            "enable.idempotence": True, "linger.ms": 1, "message.timeout.ms": ms,
            "socket.timeout.ms": ms}))  # fmt: skip
        self.timeout = timeout
        self._closed = threading.Event()
        self._acks = threading.Thread(target=self._serve, name="streamal-intake-acks",
                                      daemon=True)  # fmt: skip
        self._acks.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            self._p.poll(0.1)

    def partitions(self, topic: str) -> set[int]:
        described = self._p.list_topics(topic, timeout=self.timeout).topics.get(topic)
        return set(described.partitions) if described is not None else set()

    def send(self, topic: str, value: bytes, key: bytes | None, partition: int | None,
             done: Callable[[Exception | None], None]) -> None:  # fmt: skip
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            done(None if err is None else KafkaException(err))

        extra = {} if partition is None else {"partition": partition}
        self._p.produce(topic, value, key, on_delivery=delivered, **extra)

    def close(self) -> None:
        self._p.flush(self.timeout)
        self._closed.set()
        self._acks.join()
