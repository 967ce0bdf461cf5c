"""The Kafka clients the daemon runs on, behind one small interface.

``[kafka] client`` (``--kafka-client``) picks one:

* ``kafka-python`` (the default): pure Python, installed with the ``kafka`` extra;
* ``confluent``: confluent-kafka, over librdkafka (C), installed with the
  ``confluent`` extra; several times the records a second on a busy topic.

The daemon (``streamal.connectors.kafka.app``) sees only what this module
names, so the two give it the same semantics: transactions that hold the
consumed offsets, ``read_committed`` readers, a group with the range
assignor and static membership, partitions paused when assigned.

A message is anything with ``topic``, ``partition``, ``offset``, ``key``,
``value`` and ``headers`` attributes (``Message``); offsets to commit map
``(topic, partition)`` to the next offset to read.

>>> client = open_client("kafka-python", "127.0.0.1:9092", "streamal-0")
>>> client.name
'kafka-python'
>>> open_client("librdkafka", "127.0.0.1:9092", "x")
Traceback (most recent call last):
...
ValueError: unknown Kafka client 'librdkafka' (kafka-python or confluent)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = [
    "CLIENTS",
    "Client",
    "GroupConsumer",
    "Message",
    "Producer",
    "Reader",
    "TopicSpec",
    "open_client",
]

CLIENTS = ("kafka-python", "confluent")

#: the most a changelog entry (one partition's learner, or the shared model) may weigh
MAX_STATE_BYTES = 64 * 1024 * 1024


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


@dataclass
class TopicSpec:
    """A topic the daemon creates when it is missing."""

    name: str
    partitions: int = 1
    configs: dict[str, str] = field(default_factory=dict)


Offsets = dict[tuple[str, int], int]
Batch = dict[tuple[str, int], list[Any]]


class Producer(Protocol):
    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> None: ...  # fmt: skip

    def begin(self) -> None: ...

    def commit(self, offsets: Offsets, consumer: GroupConsumer, timeout: float) -> None:
        """Send the consumed offsets into the open transaction and commit it."""

    def flush(self, timeout: float) -> None: ...

    def close(self, timeout: float) -> None: ...


class GroupConsumer(Protocol):
    def poll(self, timeout: float, max_records: int) -> Batch:
        """Messages by ``(topic, partition)``, in offset order."""

    def commit(self, offsets: Offsets) -> None: ...

    def assignment(self) -> list[tuple[str, int]]: ...

    def caught_up(self) -> bool:
        """Every assigned partition read to its last committed offset (asks the broker)."""

    def resume_all(self) -> None: ...

    def close(self) -> None: ...


class Reader(Protocol):
    """A ``read_committed`` reader of partitions it is given, outside any group."""

    def partitions(self, topic: str) -> list[int]: ...

    def assign(self, topic: str, partitions: list[int]) -> None:
        """Read these partitions (only), from their beginning."""

    def seek(self, topic: str, partition: int, offset: int) -> None: ...

    def first_offset(self, topic: str, partition: int) -> int: ...

    def end_offset(self, topic: str, partition: int) -> int:
        """The last stable offset: nothing at or after it is committed yet."""

    def position(self, topic: str, partition: int) -> int: ...

    def poll(self, timeout: float) -> Batch:
        """What has been fetched; if nothing, waits up to ``timeout`` and returns as
        soon as something comes."""

    def close(self) -> None: ...


class Client(Protocol):
    name: str
    #: what a broken connection, an outage or a fenced producer raises
    errors: tuple[type[BaseException], ...]

    def topics(self) -> set[str]: ...

    def partition_count(self, topic: str) -> int: ...

    def create_topics(self, specs: list[TopicSpec]) -> None:
        """Create them; one that exists already is not an error."""

    def leaderless(self, topics: list[str]) -> list[str]:
        """Those of ``topics`` with a partition that has no leader yet."""

    def producer(self, transactional_id: str | None) -> Producer:
        """``acks=all``; with a transactional id, fenced and ready for transactions."""

    def group_consumer(
        self, topics: list[str], group: str, instance: str,
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
    ) -> GroupConsumer:  # fmt: skip
        """Subscribed to ``topics``; partitions are paused as they are assigned,
        then ``on_assigned`` is called with them."""

    def reader(self) -> Reader: ...

    def intake_producer(self, timeout: float) -> Any:
        """Idempotent, ``acks=all``: ``partitions(topic)``, ``send(topic, value, key,
        partition, done)`` (``done(None)`` once the broker has it, ``done(error)`` if
        it cannot), ``close()``."""

    def close(self) -> None: ...


def open_client(name: str, bootstrap: str, client_id: str) -> Client:
    """The client called ``name``: ``kafka-python`` or ``confluent``."""
    if name == "kafka-python":
        from streamal.connectors.kafka.clients.kafka_python import KafkaPythonClient

        return KafkaPythonClient(bootstrap, client_id)
    if name == "confluent":
        from streamal.connectors.kafka.clients.confluent import ConfluentClient

        return ConfluentClient(bootstrap, client_id)
    raise ValueError(f"unknown Kafka client {name!r} ({' or '.join(CLIENTS)})")


def read_to_end(reader: Reader, topic: str, partitions: list[int], quiet: float = 10.0,
                timeout: float | None = None) -> Iterator[Any]:  # fmt: skip
    """Every committed message of ``partitions`` from where the reader stands to
    the end as it was when called; stops early after ``quiet`` seconds with
    nothing read (only transaction markers can be left then), or after
    ``timeout`` seconds in all."""
    import time

    end = {p: reader.end_offset(topic, p) for p in partitions}
    partitions = [p for p in partitions if end[p] > 0]  # an empty one needs no position
    last_progress = time.monotonic()
    deadline = None if timeout is None else last_progress + timeout
    while any(reader.position(topic, p) < end[p] for p in partitions):
        batch = reader.poll(0.5)
        for msgs in batch.values():
            yield from msgs
        now = time.monotonic()
        if deadline is not None and now > deadline:
            return
        if batch:
            last_progress = now
        elif now - last_progress > quiet:
            return
