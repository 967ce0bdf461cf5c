"""The daemon's Kafka client over kafka-python (pure Python; the default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata
from streamal.connectors.kafka.clients import MAX_STATE_BYTES, Batch, Offsets, TopicSpec

__all__ = ["KafkaPythonClient"]

# bounded waits, so that an unreachable broker means a retry, and SIGTERM is heard
_BLOCKING = {"max_block_ms": 10_000, "request_timeout_ms": 10_000}


class KafkaPythonClient:
    name = "kafka-python"
    errors = (KafkaError, OSError)

    def __init__(self, bootstrap: str, client_id: str):
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._admin: KafkaAdminClient | None = None

    @property
    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                           request_timeout_ms=10_000)  # fmt: skip
        return self._admin

    def topics(self) -> set[str]:
        return set(self.admin.list_topics())

    def partition_count(self, topic: str) -> int:
        (described,) = self.admin.describe_topics([topic])
        return max(1, len(described["partitions"]))

    def create_topics(self, specs: list[TopicSpec]) -> None:
        try:
            self.admin.create_topics([NewTopic(s.name, s.partitions, 1, topic_configs=s.configs)
                                      for s in specs])  # fmt: skip
        except TopicAlreadyExistsError:
            pass

    def leaderless(self, topics: list[str]) -> list[str]:
        return [t["name"] for t in self.admin.describe_topics(topics)
                if t["error_code"] or not t["partitions"]
                or any(p["leader_id"] < 0 for p in t["partitions"])]  # fmt: skip

    def producer(self, transactional_id: str | None) -> _Producer:
        return _Producer(self, transactional_id)

    def group_consumer(
        self, topics: list[str], group: str, instance: str,
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
    ) -> _GroupConsumer:  # fmt: skip
        return _GroupConsumer(self, topics, group, instance, on_assigned, on_revoked)

    def reader(self) -> _Reader:
        return _Reader(self.bootstrap)

    def intake_producer(self, timeout: float) -> _IntakeProducer:
        return _IntakeProducer(self.bootstrap, timeout)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class _Producer:
    def __init__(self, client: KafkaPythonClient, transactional_id: str | None):
        self._p = KafkaProducer(
            bootstrap_servers=client.bootstrap, client_id=client.client_id, **_BLOCKING,
            transactional_id=transactional_id, acks="all", max_request_size=MAX_STATE_BYTES,
            linger_ms=5,
        )  # fmt: skip
        if transactional_id is not None:
            # fences any earlier incarnation and aborts its open transaction
            self._p.init_transactions()

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        self._p.send(topic, value=value, key=key, headers=headers)

    def begin(self) -> None:
        self._p.begin_transaction()

    def commit(self, offsets: Offsets, consumer: _GroupConsumer, timeout: float) -> None:
        if offsets:
            positions = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                         for (t, p), o in offsets.items()}  # fmt: skip
            self._bounded("sending the offsets", "send_offsets_to_transaction", timeout,
                          positions, consumer.consumer.group_metadata())  # fmt: skip
        self._bounded("committing the transaction", "begin_commit", timeout)

    def _bounded(self, what: str, step: str, timeout: float, *args: Any) -> None:
        """A transaction step with a deadline.

        kafka-python's ``commit_transaction`` and ``send_offsets_to_transaction``
        wait without a timeout, and after a broker outage they can wait forever;
        the same steps through its transaction manager take one.
        """
        result = getattr(self._p._transaction_manager, step)(*args)
        self._p._sender.wakeup()
        if not result.wait(timeout_ms=int(timeout * 1000)):
            raise KafkaTimeoutError(f"{what} took longer than {timeout:.0f} s")

    def flush(self, timeout: float) -> None:
        self._p.flush(timeout=timeout)

    def close(self, timeout: float) -> None:
        self._p.close(timeout=timeout)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, group: _GroupConsumer):
        self.group = group

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.group.on_revoked([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self.group.consumer.pause(*assigned)
        self.group.on_assigned([(tp.topic, tp.partition) for tp in assigned])


class _GroupConsumer:
    def __init__(self, client: KafkaPythonClient, topics: list[str], group: str, instance: str,
                 on_assigned: Callable, on_revoked: Callable):  # fmt: skip
        self.on_assigned, self.on_revoked = on_assigned, on_revoked
        self.consumer = KafkaConsumer(
            bootstrap_servers=client.bootstrap, client_id=client.client_id,
            group_id=group, group_instance_id=instance,
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", max_poll_records=500,
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=100, session_timeout_ms=10_000,
            # a topic just created may not be in the first metadata the group assigns
            # from; the client would then see its partitions only at the next
            # refresh, 5 minutes by default
            metadata_max_age_ms=5_000,
        )  # fmt: skip
        self.consumer.subscribe(topics, listener=_Listener(self))

    def poll(self, timeout: float, max_records: int) -> Batch:
        # kafka-python's TopicPartition is a (topic, partition) named tuple
        return self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)

    def commit(self, offsets: Offsets) -> None:
        self.consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                              for (t, p), o in offsets.items()})  # fmt: skip

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    def caught_up(self) -> bool:
        consumer = self.consumer
        assigned = list(consumer.assignment())
        if not assigned:
            return False
        ends = consumer.end_offsets(assigned)
        return all(consumer.position(tp) >= ends[tp] for tp in assigned)

    def resume_all(self) -> None:
        self.consumer.resume(*self.consumer.paused())

    def close(self) -> None:
        self.consumer.close(autocommit=False)


class _Reader:
    def __init__(self, bootstrap: str):
        self._c = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
            isolation_level="read_committed", fetch_max_bytes=MAX_STATE_BYTES,
            max_partition_fetch_bytes=MAX_STATE_BYTES,
        )  # fmt: skip

    def partitions(self, topic: str) -> list[int]:
        return sorted(self._c.partitions_for_topic(topic) or ())

    def assign(self, topic: str, partitions: list[int]) -> None:
        tps = [TopicPartition(topic, p) for p in partitions]
        self._c.assign(tps)
        self._c.seek_to_beginning(*tps)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._c.seek(TopicPartition(topic, partition), offset)

    def first_offset(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return self._c.beginning_offsets([tp])[tp]

    def end_offset(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return self._c.end_offsets([tp])[tp]  # read_committed: the last stable offset

    def position(self, topic: str, partition: int) -> int:
        return self._c.position(TopicPartition(topic, partition))

    def poll(self, timeout: float) -> Batch:
        return self._c.poll(timeout_ms=int(timeout * 1000))

    def close(self) -> None:
        self._c.close()


class _IntakeProducer:
    """Idempotent, ``acks=all``; ``send`` calls ``done(None)`` once the broker has
    the message, ``done(error)`` if it cannot."""

    def __init__(self, bootstrap: str, timeout: float):
        ms = int(timeout * 1000)
        self._p = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1,
            max_block_ms=ms, request_timeout_ms=ms,
        )  # fmt: skip
        self.timeout = timeout

    def partitions(self, topic: str) -> set[int]:
        return set(self._p.partitions_for(topic) or ())

    def send(self, topic: str, value: bytes, key: bytes | None, partition: int | None,
             done: Callable[[Exception | None], None]) -> None:  # fmt: skip
        future = self._p.send(topic, key=key, value=value, partition=partition)
        future.add_callback(lambda _: done(None)).add_errback(done)

    def close(self) -> None:
        self._p.close(timeout=self.timeout)
