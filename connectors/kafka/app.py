"""The Kafka daemon: records in, label requests out, labels back, exactly once.

One ``ActiveLearner`` per partition of the records topic. Work is done in
cycles of at most ``commit_every`` records or ``commit_seconds``; each cycle
is one Kafka transaction holding, in this order, the label requests and
dead letters it produced, a signed snapshot of every learner it changed
(on the compacted changelog topic, keyed by partition), and the consumed
offsets of the records and labels topics. A ``read_committed`` reader sees
each cycle's requests exactly once, and a restart restores exactly the
learner state that goes with the committed offsets.

Any failure (broker gone, fenced, rebalance) aborts the open cycle and
restarts the clients the way a fresh process would: fence the old
producer, read the changelog, continue from the committed offsets. The
recovery path and the start-up path are one path.

Without transactions (``transactions = false``) the same order holds with
a flush instead of a commit marker: at-least-once delivery.

The Kafka client is ``settings.client`` (kafka-python or confluent-kafka),
behind the small interface of ``streamal.connectors.kafka.clients``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from streamal.connectors.kafka.clients import (
    MAX_STATE_BYTES,
    Client,
    GroupConsumer,
    Offsets,
    Producer,
    TopicSpec,
    open_client,
    read_to_end,
)
from streamal.connectors.kafka.messages import (
    decode_label,
    decode_records,
    encode_dead_letter,
    encode_request,
    encode_second_opinion,
)
from streamal.connectors.kafka.training import TrainingReader, encode_examples

from streamal.checkpoint import CheckpointError
from streamal.config import learner_settings, settings_to_resume_with
from streamal.latency import LabelLatency
from streamal.learner import ActiveLearner
from streamal.records import BadInput
from streamal.schema import why_not_decided
from streamal.shared_model import SharedModel

__all__ = ["KafkaSettings", "KafkaApp", "LearnerGroup", "StateError"]

log = logging.getLogger("streamal.kafka")

_STATE_MAGIC = b"STREAMAL-STATE-1"
#: entries of the pending table a changelog message holds at most: one pickle of a
#: whole table of 100,000 requests set the process's memory high-water mark for good
_TABLE_PIECE = 10_000
#: changelog key of the mark that tells whether a process holds the group's key
_KEY_CHECK = b"key-check"
#: changelog key of the shared model's replica, saved with the training offset it has read to
_MODEL = b"model"


class StateError(CheckpointError):
    """A changelog entry that cannot be trusted."""


class _Restart(Exception):
    """Abort the open cycle and start the clients afresh."""


@dataclass
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    #: the Kafka client: "kafka-python" (pure Python) or "confluent" (librdkafka)
    client: str = "kafka-python"
    records_topic: str = "streamal-records"
    group: str = "streamal"
    requests_topic: str = "streamal-label-requests"
    labels_topic: str = "streamal-labels"
    dead_letters_topic: str = "streamal-dead-letters"
    changelog_topic: str = "streamal-state"
    training_topic: str = "streamal-training"
    #: "shared": one model learns every partition's labels (through the training
    #: topic); "own": each partition's model learns its own labels only
    partition_models: str = "shared"
    #: seconds between saves of the shared model on the changelog (a restart reads
    #: the training topic on from the newest save)
    model_every: float = 10.0
    instance: str = "0"
    transactions: bool = True
    #: records a transaction at most; a commit waits for the broker, so fewer and
    #: larger transactions on a busy topic (commit_seconds bounds the latency)
    commit_every: int = 10_000
    commit_seconds: float = 1.0
    exit_when_idle: float = 0.0
    retry_seconds: float = 2.0
    transaction_timeout: float = 30.0

    @property
    def transactional_id(self) -> str:
        return f"streamal-{self.group}-{self.instance}"


@dataclass
class _Stats:
    """The daemon's own counters, in the shape the metrics collector reads."""

    records: int = 0
    labels_received: int = 0
    intake: Counter = field(default_factory=Counter)  # labels by the way they came
    dead_letters: Counter = field(default_factory=Counter)
    bad_labels: Counter = field(default_factory=Counter)
    cycles: int = 0
    restarts: int = 0
    #: (route, status) -> requests the labelling API answered
    http_requests: Counter = field(default_factory=Counter)


@dataclass
class _PendingTotals:
    """What the metrics read of a pending table, summed over partitions."""

    waiting: int
    expired: int

    def __len__(self) -> int:
        return self.waiting


class LearnerGroup:
    """A read-only view summing the per-partition learners, for metrics and summaries."""

    def __init__(self, learners: dict[int, ActiveLearner], template: ActiveLearner):
        self.learners = learners
        self.template = template

    def _sum(self, name: str) -> int:
        return sum(getattr(lrn, name) for lrn in self.learners.values())

    n_records = property(lambda self: self._sum("n_records"))
    n_queries = property(lambda self: self._sum("n_queries"))
    labels_applied = property(lambda self: self._sum("labels_applied"))
    drift_detections = property(lambda self: self._sum("drift_detections"))

    @property
    def strategy(self) -> Any:
        return self.template.strategy

    @property
    def label_latency(self) -> LabelLatency:
        total = LabelLatency()
        for learner in self.learners.values():
            total.add(learner.label_latency)
        return total

    @property
    def budget(self) -> float:
        return self.template.budget

    def _mean(self, name: str) -> float | None:
        values = [getattr(lrn, name) for lrn in self.learners.values()]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None

    @property
    def label_delay(self) -> float | None:
        return self._mean("label_delay")

    @property
    def late_share(self) -> float:
        return self._mean("late_share") or 0.0

    @property
    def labels_rejected(self) -> Counter:
        total: Counter = Counter()
        for lrn in self.learners.values():
            total.update(lrn.labels_rejected)
        return total

    @property
    def pending(self) -> _PendingTotals:
        return _PendingTotals(
            sum(len(lrn.pending) for lrn in self.learners.values()),
            sum(lrn.pending.expired for lrn in self.learners.values()),
        )

    @property
    def threshold(self) -> float | None:
        values = [lrn.threshold for lrn in self.learners.values() if lrn.threshold is not None]
        return sum(values) / len(values) if values else self.template.threshold

    def _ratio(self, num: str, den: str) -> float | None:
        d = sum(getattr(lrn, den) for lrn in self.learners.values())
        return sum(getattr(lrn, num) for lrn in self.learners.values()) / d if d else None

    @property
    def labelled_accuracy(self) -> float | None:
        return self._ratio("labelled_correct", "labelled_scored")

    @property
    def weighted_accuracy(self) -> float | None:
        return self._ratio("iw_correct", "iw_total")


class KafkaApp:
    """Runs the active-learning loop between Kafka topics.

    Parameters
    ----------
    settings
        Topics, group, transactions, cycle length.
    make_learner
        ``partition -> ActiveLearner`` for a partition with no saved state.
    key
        HMAC key that signs learner snapshots on the changelog.
    metrics
        An optional ``streamal.metrics.Metrics``; it is pointed at this app.
    settings_saved
        The learner settings (``{"--flag": value}``) saved with each
        partition's state; restoring a state saved with other values is
        refused (``SettingsChanged``) unless ``keep_saved_settings``.
    key_source
        Where ``key`` came from, named in the error when the state on the
        changelog was signed with another key.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        make_learner: Callable[[int], ActiveLearner],
        key: bytes,
        *,
        metrics: Any = None,
        summary_every: int = 0,
        max_records: int = 0,
        out: TextIO | None = None,
        settings_saved: dict[str, Any] | None = None,
        keep_saved_settings: bool = False,
        key_source: str = "the key given",
    ):
        self.settings = settings
        self.settings_saved = dict(settings_saved or {})
        self.keep_saved_settings = keep_saved_settings
        self.key_source = key_source
        self._key_checked = False
        self.make_learner = make_learner
        self.key = key
        self.summary_every = summary_every
        self._summarized = 0  # records counted by the last summary line
        self.max_records = max_records
        self.out = out if out is not None else sys.stderr
        self.stats = _Stats()
        self.learners: dict[int, ActiveLearner] = {}
        template = make_learner(0)
        self.view = LearnerGroup(self.learners, template)
        if settings.partition_models not in ("shared", "own"):
            raise ValueError(f"partition_models must be 'shared' or 'own', "
                             f"got {settings.partition_models!r}")  # fmt: skip
        self.sharing = settings.partition_models == "shared"
        if self.sharing and template.warning is not None:
            raise ValueError(
                "a background model swaps one partition's model: not with the model the "
                "partitions share (--partition-models own allows it)"
            )
        #: the process's replica of the model every partition scores with
        self.shared: SharedModel | None = None
        self.training: TrainingReader | None = None
        self._model_saved = (0.0, -1)  # when, and at how many examples
        self._strategy_name = self.view.strategy.name
        self.metrics = metrics
        if metrics is not None:
            metrics.learner = self.view
            metrics.engine_stats = self.stats
        self.client: Client = open_client(settings.client, settings.bootstrap,
                                          f"streamal-{settings.instance}")  # fmt: skip
        self.consumer: GroupConsumer | None = None
        self.producer: Producer | None = None
        self._stopping = False
        self._rebalanced = False
        self._assigned = False
        self._stale = False
        self._dirty: set[int] = set()
        self._seq: dict[int, int] = {}  # changelog sequence per partition
        self._deltas: dict[int, list[int]] = {}  # live delta entries per partition
        self._delta_sizes: dict[int, int] = {}
        self._table_pieces: dict[int, int] = {}  # pieces of the table on the changelog
        self._last_data = time.monotonic()

    # -- lifecycle ------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while connected to Kafka with partitions assigned and the state restored."""
        return self.consumer is not None and self._assigned and not self._stopping

    def stop(self) -> None:
        """Finish the in-flight cycle, commit it, and return from ``run``."""
        self._stopping = True

    def run(self) -> _Stats:
        """Process until ``stop()``, ``max_records``, or the topics stay idle."""
        s = self.settings
        while True:
            try:
                self._start()
                while not self._stopping:
                    if not self._cycle():
                        break
                self._close(commit=True)
                return self.stats
            except (*self.client.errors, _Restart) as e:
                self.stats.restarts += 1
                log.warning("%s; restarting the Kafka clients in %.0f s", _why(e), s.retry_seconds)
                self._close(commit=False)
                if self._stopping:
                    return self.stats
                time.sleep(s.retry_seconds)
                if self._stopping:  # a stop during the wait: no new clients to start
                    return self.stats

    def _start(self) -> None:
        s = self.settings
        self._ensure_topics()
        # with a transactional id: fences any earlier incarnation, aborts its transaction
        self.producer = self.client.producer(s.transactional_id if s.transactions else None)
        # the key and the settings are checked before joining the group; the state is
        # read again, and the model taught, once the group has assigned partitions
        self._load_snapshots(catch_up=False)
        self._rebalanced = False
        self._assigned = False
        self._stale = False
        self._last_data = time.monotonic()  # idle time counts from a working connection
        self.consumer = self.client.group_consumer(
            [s.records_topic, s.labels_topic], s.group, s.transactional_id,
            on_assigned=self._on_assigned, on_revoked=self._on_revoked,
        )  # fmt: skip
        log.info(
            "consuming %s and %s as group %s (%s, %s)", s.records_topic, s.labels_topic, s.group,
            "exactly once" if s.transactions else "at least once", self.client.name,
        )  # fmt: skip

    def _on_revoked(self, revoked: list[tuple[str, int]]) -> None:
        if revoked and self._assigned:
            self._rebalanced = True

    def _on_assigned(self, assigned: list[tuple[str, int]]) -> None:
        # the client has paused them: nothing is read from them until their state is
        # read again, as their previous owners committed until they gave them up
        if assigned:
            self._stale = True
        self._assigned = True

    def _close(self, commit: bool) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:  # closing a client of a dead broker may fail; nothing to save
                pass
        if self.producer is not None:
            try:
                self.producer.close(timeout=5 if commit else 0)
            except Exception:
                pass
        if self.training is not None:
            self.training.close()
        self.consumer = self.producer = self.training = None

    def _ensure_topics(self) -> None:
        s, client = self.settings, self.client
        try:
            existing = client.topics()
            # the labels topic has as many partitions as the records topic: a label goes to
            # the partition of its request's record, which the group assigns to the same
            # process (the range assignor gives co-partitioned topics the same owners)
            records = client.partition_count(s.records_topic) if s.records_topic in existing else 1
            big = str(MAX_STATE_BYTES)
            wanted = [
                TopicSpec(s.records_topic),
                TopicSpec(s.labels_topic, records),
                TopicSpec(s.requests_topic),
                TopicSpec(s.dead_letters_topic),
                TopicSpec(s.changelog_topic, 1, {"cleanup.policy": "compact",
                                                 "max.message.bytes": big}),
            ]  # fmt: skip
            if self.sharing:
                # one partition: one order of the examples for every replica; kept
                # for good, as a replica saved long ago reads on from its offset
                kept = {"retention.ms": "-1", "max.message.bytes": big}
                wanted.append(TopicSpec(s.training_topic, 1, kept))
            missing = [t for t in wanted if t.name not in existing]
            if missing:
                client.create_topics(missing)
            _await_leaders(client, [s.records_topic, s.labels_topic])
            labels = client.partition_count(s.labels_topic)
            if labels < records:
                log.warning(
                    "%s has %d partition(s) and %s %d: in a group of several processes, labels "
                    "for requests another process holds do not reach it; give %s %d partitions",
                    s.labels_topic, labels, s.records_topic, records, s.labels_topic, records,
                )  # fmt: skip
        finally:
            client.close()

    # -- state ----------------------------------------------------------------

    def _sign(self, payload: bytes) -> bytes:
        return _STATE_MAGIC + hmac.new(self.key, payload, hashlib.sha256).digest() + payload

    def _verify(self, value: bytes, where: str) -> Any:
        head = len(_STATE_MAGIC)
        if not value.startswith(_STATE_MAGIC):
            raise StateError(f"{where}: not a streamal state snapshot")
        mac, payload = value[head : head + 32], value[head + 32 :]
        if not hmac.compare_digest(mac, hmac.new(self.key, payload, hashlib.sha256).digest()):
            raise StateError(
                f"{where}: signature does not match; the snapshot was altered or signed with "
                f"another key than {self.key_source} - refusing to load it. "
                f"Every process of group {self.settings.group!r} needs the same key: pass it "
                "with --checkpoint-key-file FILE or $STREAMAL_CHECKPOINT_KEY"
            )
        return pickle.loads(payload)

    def _key_check(self) -> bytes:
        """A value only a holder of the key can write: processes of a group compare it."""
        return hmac.new(self.key, b"streamal key check", hashlib.sha256).digest()

    def _load_snapshots(self, catch_up: bool = True) -> None:
        """Read the changelog to its end and rebuild every partition's learner (and,
        with ``catch_up``, teach the shared model what was written since its save).

        Keys are ``P/core`` (the learner without its pending table),
        ``P/pending/I`` (the whole pending table now and then, in pieces) and
        ``P/delta/SEQ`` (one cycle's pending-request changes after it).
        """
        s = self.settings
        reader = self.client.reader()
        latest: dict[bytes, bytes] = {}
        try:
            parts = reader.partitions(s.changelog_topic)
            if parts:
                reader.assign(s.changelog_topic, parts)
                for m in read_to_end(reader, s.changelog_topic, parts):
                    # a re-written key moves to the end: dict order stays write order
                    latest.pop(m.key, None)
                    if m.value is not None:
                        latest[m.key] = m.value
        finally:
            reader.close()
        self._rebuild(latest)
        if self.sharing and catch_up:
            self._catch_up()

    def _catch_up(self) -> None:
        """Teach the replica every example written since it was saved."""
        s = self.settings
        if self.training is None:
            self.training = TrainingReader(self.client, s.training_topic, self.key)
        self.training.start_at(self._model_offset)
        n = self.training.catch_up(self.shared)
        if n:
            log.info("the model learned %d example(s) from %s since its last save",
                     n, s.training_topic)  # fmt: skip

    def _reassigned(self) -> None:
        """Read the state of the partitions just assigned, then read them."""
        consumer = self.consumer
        self._load_snapshots()
        topic = self.settings.records_topic
        mine = {p for t, p in consumer.assignment() if t == topic}
        for partition in list(self.learners):
            if partition not in mine:  # another process's now: it saves them
                del self.learners[partition]
        consumer.resume_all()
        self._stale = False

    def _rebuild(self, latest: dict[bytes, bytes]) -> None:
        """The learners from the newest changelog value of each key, in write order."""
        s = self.settings
        self.learners.clear()
        self._dirty.clear()
        self._deltas.clear()
        self._table_pieces.clear()
        cores: dict[int, Any] = {}
        tables: dict[int, Any] = {}
        pieces: dict[int, dict[int, Any]] = {}
        deltas: dict[int, list[tuple[int, Any]]] = {}
        check = latest.pop(_KEY_CHECK, None)
        model = latest.pop(_MODEL, None)
        self._key_checked = check is not None
        if check is not None and not hmac.compare_digest(check, self._key_check()):
            raise StateError(
                f"{s.changelog_topic}: the group {s.group!r} signs its state with another key "
                f"than {self.key_source}; pass the group's key with --checkpoint-key-file FILE "
                "or $STREAMAL_CHECKPOINT_KEY"
            )
        for key, value in latest.items():
            where = f"{s.changelog_topic}[{key.decode(errors='replace')}]"
            partition, _, kind = key.decode(errors="replace").partition("/")
            obj = self._verify(value, where)
            if not partition.isdigit():
                raise StateError(f"{where}: not a key this daemon writes")
            p = int(partition)
            if kind == "core":
                cores[p] = obj
            elif kind == "pending":  # the whole table in one piece, as earlier versions wrote it
                tables[p] = obj
                self._table_pieces[p] = -1
            elif kind.startswith("pending/") and kind[8:].isdigit():
                pieces.setdefault(p, {})[int(kind[8:])] = obj
            elif kind.startswith("delta/") and kind[6:].isdigit():
                deltas.setdefault(p, []).append((int(kind[6:]), obj))
            else:
                raise StateError(f"{where}: not a key this daemon writes")
        for p, parts in pieces.items():
            tables[p] = self._whole_table(p, parts)
        for p, core in cores.items():
            saved = core.get("settings", {})
            self.settings_saved = settings_to_resume_with(
                saved, self.settings_saved, f"{s.changelog_topic} (partition {p})",
                self.keep_saved_settings,
            )  # fmt: skip
            learner = ActiveLearner.from_state(core["learner"])
            table = tables.get(p, {"seq": 0, "open": [], "closed": []})
            pending = learner.pending
            pending.refill(table["open"], table["closed"])
            for seq, changes in sorted(deltas.get(p, [])):
                if seq > table["seq"]:
                    pending.apply(changes)
                    self._deltas.setdefault(p, []).append(seq)
            pending.track_changes()
            self._seq[p] = core["seq"]
            if "validator" in core:  # written when the daemon held the schema
                learner.validator = core["validator"]
            if isinstance(learner.model, SharedModel) != self.sharing:
                raise StateError(
                    f"{s.changelog_topic} (partition {p}): saved with partition_models = "
                    f"{'own' if self.sharing else 'shared'}; run with that, or start afresh "
                    "with another group and changelog topic"
                )  # fmt: skip
            self.learners[p] = learner
        self._model_offset = 0
        if self.sharing:
            if model is not None:
                saved = self._verify(model, f"{s.changelog_topic}[model]")
                self.settings_saved = settings_to_resume_with(
                    saved["settings"], self.settings_saved, f"{s.changelog_topic} (model)",
                    self.keep_saved_settings,
                )  # fmt: skip
                self.shared = SharedModel(saved["replica"], saved["learned"])
                self._model_offset = saved["offset"]
            else:
                self.shared = self._fresh_model()
            self._model_saved = (time.monotonic(), self.shared.learned)
            for learner in self.learners.values():
                learner.model = self.shared
        if cores:
            n = sum(lrn.n_records for lrn in self.learners.values())
            log.info("restored %d learner(s) from %s (%d records decided)",
                     len(cores), s.changelog_topic, n)  # fmt: skip

    def _fresh_model(self) -> SharedModel:
        """The shared model of a group that has saved none: a new partition's model."""
        return SharedModel(self.make_learner(0).model)

    def _changes(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """Changelog entries for one partition's learner after a cycle.

        The learner's core every time; the pending-request changes of the
        cycle as one delta; and, once the deltas outgrow the table, the whole
        table instead, with tombstones for the deltas it replaces, so that
        compaction keeps the topic (and a restore) proportional to the state.
        """
        learner = self.learners[partition]
        pending = learner.pending
        seq = self._seq.get(partition, 0) + 1
        self._seq[partition] = seq
        core_state = learner.state()
        core_state["pending"] = pending.shell()
        core = {"learner": core_state, "seq": seq, "settings": self.settings_saved}
        dump, sign = pickle.dumps, self._sign
        out: list[tuple[bytes, bytes | None]] = [
            (f"{partition}/core".encode(), sign(dump(core, protocol=5)))
        ]
        changes = list(pending.drain().items())
        live = self._deltas.setdefault(partition, [])
        self._delta_sizes[partition] = self._delta_sizes.get(partition, 0) + len(changes)
        if self._delta_sizes[partition] > max(1000, pending.size()):
            out += self._table(partition, seq)
            out += [(f"{partition}/delta/{old:012d}".encode(), None) for old in live]
            live.clear()
            self._delta_sizes[partition] = 0
        elif changes:
            out.append((f"{partition}/delta/{seq:012d}".encode(), sign(dump(changes, protocol=5))))
            live.append(seq)
        return out

    def _table(self, partition: int, seq: int) -> list[tuple[bytes, bytes | None]]:
        """The whole pending table of a partition, in pieces of ``_TABLE_PIECE``
        entries (``P/pending/I``), with tombstones for pieces of an earlier, larger
        table."""
        pending = self.learners[partition].pending
        out: list[tuple[bytes, bytes | None]] = []
        for i, (opened, closed) in enumerate(pending.pieces(_TABLE_PIECE)):
            piece = {"seq": seq, "open": opened, "closed": closed}
            out.append((f"{partition}/pending/{i}".encode(),
                        self._sign(pickle.dumps(piece, protocol=5))))  # fmt: skip
        written, before = len(out), self._table_pieces.get(partition, 0)
        if before == -1:  # the whole table in one piece
            out.append((f"{partition}/pending".encode(), None))
        out += [(f"{partition}/pending/{i}".encode(), None) for i in range(written, before)]
        self._table_pieces[partition] = written
        return out

    def _whole_table(self, partition: int, pieces: dict[int, Any]) -> dict[str, Any]:
        """A partition's pending table from its pieces, which one transaction wrote."""
        seqs = {piece["seq"] for piece in pieces.values()}
        if len(seqs) != 1 or sorted(pieces) != list(range(len(pieces))):
            raise StateError(
                f"{self.settings.changelog_topic} (partition {partition}): the pending table's "
                f"pieces {sorted(pieces)} do not make one table"
            )
        self._table_pieces[partition] = len(pieces)
        ordered = [pieces[i] for i in range(len(pieces))]
        return {"seq": seqs.pop(), "open": [e for piece in ordered for e in piece["open"]],
                "closed": [e for piece in ordered for e in piece["closed"]]}  # fmt: skip

    # -- one cycle --------------------------------------------------------------

    def _cycle(self) -> bool:
        """One transaction's worth of work; False when the run should end."""
        s = self.settings
        consumer, producer = self.consumer, self.producer
        assert consumer is not None and producer is not None
        if s.transactions:
            producer.begin()
        offsets: Offsets = {}
        n = 0
        deadline = time.monotonic() + s.commit_seconds
        keep_going = True
        while n < s.commit_every and time.monotonic() < deadline:
            batch = consumer.poll(0.1, 500)
            if self._rebalanced:
                raise _Restart("partitions were reassigned")
            if self._stale:
                if offsets:  # work of this transaction on the state about to be read again
                    raise _Restart("partitions were assigned in the middle of a cycle")
                self._reassigned()
            if self.training is not None:
                self.training.teach(self.shared)
            for tp, msgs in batch.items():
                if tp[0] == s.records_topic:
                    self._on_records(tp[1], msgs)
                    n += len(msgs)
                else:
                    for m in msgs:
                        self._on_label(m)
                offsets[tp] = msgs[-1].offset + 1
            if batch:
                self._last_data = time.monotonic()
            elif self.summary_every and self.stats.records != self._summarized:
                # caught up for now: records come 500 a poll, so the lines every
                # N records can stop short of where the stream stands
                self._summary()
            if self.max_records and self.stats.records >= self.max_records:
                keep_going = False
                break
            if self._stopping:
                break
            if (
                s.exit_when_idle
                and time.monotonic() - self._last_data > s.exit_when_idle
                and self._caught_up()
            ):
                keep_going = False
                break
        last = not keep_going or self._stopping
        self._commit(offsets, last)
        return not last

    def _caught_up(self) -> bool:
        """Every assigned partition read to its end (asks the broker, so an outage
        raises here instead of passing for an idle stream)."""
        if self.consumer.caught_up():
            return True
        self._last_data = time.monotonic()
        return False

    def _commit(self, offsets: Offsets, last: bool = False) -> None:
        s = self.settings
        producer, consumer = self.producer, self.consumer
        if not self._key_checked:  # the first state this group writes: the key's mark first
            producer.send(s.changelog_topic, self._key_check(), _KEY_CHECK)
            self._key_checked = True
        if self.shared is not None:
            examples = self.shared.take_examples()
            if examples:  # one message a cycle: a send costs more than an example
                value, headers = encode_examples(examples, self.key)
                producer.send(s.training_topic, value, None, headers)
            self._save_model(last)
        for partition in sorted(self._dirty):
            for key, value in self._changes(partition):
                producer.send(s.changelog_topic, value, key)
        self._dirty.clear()
        if s.transactions:
            producer.commit(offsets, consumer, s.transaction_timeout)
        else:
            producer.flush(s.transaction_timeout)
            if offsets:
                consumer.commit(offsets)
        self.stats.cycles += 1

    def _save_model(self, now: bool) -> None:
        """The replica on the changelog, with the offset it has read to, now and then.

        Any process may save it: replicas that have read to the same offset are
        the same model, so the newest save is good for every process.
        """
        shared, (when, learned) = self.shared, self._model_saved
        due = now or time.monotonic() - when >= self.settings.model_every
        if shared.learned == learned or not due:
            return
        saved = {"replica": shared.replica, "learned": shared.learned,
                 "offset": self.training.offset, "settings": self.settings_saved}  # fmt: skip
        value = self._sign(pickle.dumps(saved, protocol=5))
        self.producer.send(self.settings.changelog_topic, value, _MODEL)
        self._model_saved = (time.monotonic(), shared.learned)

    def _learner(self, partition: int) -> ActiveLearner:
        learner = self.learners.get(partition)
        if learner is None:
            learner = self.learners[partition] = self.make_learner(partition)
            learner.pending.track_changes()
            if self.sharing:
                if self.shared is None:  # not read from the changelog (a unit test's app)
                    self.shared = self._fresh_model()
                learner.model = self.shared
        return learner

    def _on_records(self, partition: int, msgs: list[Any]) -> None:
        """Decide one partition's share of a poll as one batch."""
        s = self.settings
        learner = self._learner(partition)
        self._dirty.add(partition)
        records, sources, bad = decode_records(msgs, partition, s.records_topic)
        for m, reason in bad:
            self._dead_letter("record", reason, m)
        # the learner checks the features (InvalidRecord) before its model sees them
        decisions = learner.decide_many(records)
        for i, e in decisions.failed:  # a record the model cannot take must not stop us
            self._dead_letter("record", why_not_decided(e), sources[i])
        send, version, name = self.producer.send, learner.labels_applied, self._strategy_name
        peek = learner.pending.peek
        for i, decision in decisions.queried():
            value = encode_request(decision, records[i], name, version)
            key = sources[i].key
            send(s.requests_topic, value, key)
            if key is not None and (entry := peek(decision.request_id)) is not None:
                entry.key = key  # a label sent through the intake is keyed the same
        before = self.stats.records
        self.stats.records += len(msgs)
        every = self.summary_every
        if every and before // every != self.stats.records // every:
            self._summary()

    def _on_label(self, m: Any) -> None:
        self.stats.labels_received += 1
        label = decode_label(m.value, f"{m.topic}/{m.partition}/{m.offset}")
        if isinstance(label, BadInput):
            self.stats.intake["kafka"] += 1
            self.stats.bad_labels["malformed"] += 1
            self._dead_letter("label", label.reason, m)
            return
        # the labelling API and the Label Studio bridge mark what they produce
        via = label.extra.get("intake")
        self.stats.intake[via if via in ("http", "labelstudio") else "kafka"] += 1
        learner, partition = self._holder(label.request_id)
        try:
            outcome = learner.learn(label.request_id, label.label, annotator=label.annotator)
        except Exception as e:
            outcome = f"unusable ({type(e).__name__}: {e})"
        if outcome == "held":  # the annotator is unreliable: ask another one
            self._dirty.add(partition)
            for pending, first in learner.take_second_opinions():
                self.producer.send(
                    self.settings.requests_topic,
                    encode_second_opinion(pending.request_id, pending.record_id,
                                          pending.features, first),
                    m.key,
                )  # fmt: skip
        elif outcome == "applied":
            self._dirty.add(partition)
            if self.shared is not None:  # the example it queued answers this request
                examples = self.shared.examples
                examples[-1] = examples[-1]._replace(request=label.request_id)
        else:
            self._dirty.add(partition)  # the rejection counters changed
            reason = learner.why_refused(label.request_id, label.label, outcome)
            self._dead_letter("label", reason, m)

    def _holder(self, request_id: str) -> tuple[ActiveLearner, int]:
        """The learner waiting for this request (or any, to report why not)."""
        for partition, learner in self.learners.items():
            if request_id in learner.pending:
                return learner, partition
        if not self.learners:
            return self._learner(0), 0
        partition = next(iter(self.learners))
        return self.learners[partition], partition

    def _dead_letter(self, kind: str, reason: str, m: Any) -> None:
        self.stats.dead_letters[kind] += 1
        log.debug("dead letter (%s) at %s-%d@%d: %s", kind, m.topic, m.partition, m.offset, reason)
        self.producer.send(
            self.settings.dead_letters_topic,
            encode_dead_letter(kind, reason, m.value, m.topic, m.partition, m.offset), m.key,
        )  # fmt: skip

    def _summary(self) -> None:
        self._summarized = self.stats.records
        v = self.view
        acc = v.weighted_accuracy
        print(
            f"records={self.stats.records} requested={v.n_queries} "
            f"labels={v.labels_applied} pending={len(v.pending)} "
            f"accuracy~{'-' if acc is None else f'{acc:.3f}'} drifts={v.drift_detections} "
            f"dead={sum(self.stats.dead_letters.values())} cycles={self.stats.cycles} "
            f"restarts={self.stats.restarts}"
            + (f" model={self.shared.learned}" if self.shared is not None else ""),
            file=self.out,
            flush=True,
        )


def _await_leaders(client: Client, topics: list[str], timeout: float = 10.0) -> None:
    """Wait until every partition of ``topics`` has a leader.

    The consumer group assigns the partitions it finds in the metadata when
    it forms; those of a topic created a moment before (by us, or by a
    producer's first record) may not be there yet, and then go to no one
    until the client notices them, which once took minutes.
    """
    deadline = time.monotonic() + timeout
    while True:
        waiting = client.leaderless(topics)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise _Restart(f"no leader yet for the partitions of {', '.join(waiting)}")
        time.sleep(0.1)


def _why(e: BaseException) -> str:
    if isinstance(e, _Restart):
        return str(e)
    return f"Kafka unavailable or refused ({type(e).__name__}: {e})"


def from_settings(
    settings: dict[str, Any],
    make_learner: Callable[[int], ActiveLearner],
    key: bytes,
    *,
    metrics: Any = None,
) -> KafkaApp:
    """Build the app from ``streamal run`` settings (the ``streamal.apps`` entry point)."""
    kafka = KafkaSettings(
        **{name: settings[f"kafka.{name}"] for name in KafkaSettings.__dataclass_fields__
           if f"kafka.{name}" in settings}
    )  # fmt: skip
    return KafkaApp(
        kafka, make_learner, key, metrics=metrics,
        summary_every=settings.get("output.summary_every", 0),
        max_records=settings.get("run.max_records", 0),
        settings_saved=learner_settings(settings),
        keep_saved_settings=settings.get("run.resume_as_saved", False),
        key_source=settings.get("run.key_source", "the key given"),
    )  # fmt: skip
