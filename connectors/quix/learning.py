"""The active learner as a step of a Quix Streams application.

Quix Streams owns the consumer, the producer, the commits and the state;
``ActiveLearning`` adds a learner per partition of the records topic, kept
in Quix's state store (RocksDB, backed by its changelog topic), so that a
restart or a rebalance restores it with the offsets it goes with, exactly
once under ``processing_guarantee="exactly-once"``.

Records and labels are two dataframes (read them with
``value_deserializer="bytes"``, and malformed JSON becomes a dead letter
here instead of an error in Quix's consumer) of co-partitioned topics: a label is
produced to the partition its request names (``"partition"`` in the
request), where the learner holding the request reads it. The step gives
back two dataframes to send where you like: label requests, and dead
letters (a record or label that cannot be used, with the reason).

Usage::

    app = Application(broker_address="127.0.0.1:9092", consumer_group="streamal",
                      processing_guarantee="exactly-once")
    records = app.topic("records", value_deserializer="bytes")
    labels = app.topic("labels", value_deserializer="bytes")
    learning = ActiveLearning(lambda partition: ActiveLearner(budget=0.05), key)
    out = learning.attach(app.dataframe(records), app.dataframe(labels))
    out.requests.to_topic(app.topic("label-requests", value_serializer="json"))
    out.dead_letters.to_topic(app.topic("dead-letters", value_serializer="json"))
    app.run()

The learner's state is pickled, so it is signed with ``key`` and refused
when the signature does not match (``streamal.checkpoint.resolve_key``
makes or reads a key file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quixstreams import message_context
from quixstreams.dataframe import StreamingDataFrame

from streamal.checkpoint import dumps, loads
from streamal.learner import ActiveLearner
from streamal.records import BadInput, json_line, label_from_object, record_from_object
from streamal.schema import why_not_decided

__all__ = ["ActiveLearning", "Outputs"]

log = logging.getLogger("streamal.quix")

#: the state key the learner is stored under, in a namespace of its own
_PREFIX = b"streamal-learner"
_KEY = "learner"


@dataclass
class Outputs:
    """The dataframes ``ActiveLearning.attach`` gives back."""

    #: label requests, keyed like their record
    requests: StreamingDataFrame
    #: records and labels that could not be used, with the reason
    dead_letters: StreamingDataFrame


class ActiveLearning:
    """One ``ActiveLearner`` per partition, in Quix's state store.

    Parameters
    ----------
    make_learner
        ``partition -> ActiveLearner`` for a partition with no saved state.
    key
        HMAC key that signs the saved learners.
    """

    def __init__(self, make_learner: Callable[[int], ActiveLearner], key: bytes):
        self.make_learner = make_learner
        self.key = key
        self._sdf: StreamingDataFrame | None = None
        self._labels_topics: set[str] = set()
        # partition -> (the state transaction it was read in, the learner): read
        # once per checkpoint, since a new checkpoint (and a recovery) brings a
        # new transaction
        self._cache: dict[int, tuple[Any, ActiveLearner]] = {}

    def attach(self, records: StreamingDataFrame, labels: StreamingDataFrame) -> Outputs:
        """Decide the records and learn the labels; the requests and dead letters."""
        self._labels_topics = {t.name for t in labels.topics}
        sdf = records.concat(labels)
        sdf.register_store()  # also checks that the topics are co-partitioned
        self._sdf = sdf
        out = sdf.apply(self._on_message, expand=True)
        return Outputs(
            requests=out.filter(lambda m: m[0] == "request").apply(lambda m: m[1]),
            dead_letters=out.filter(lambda m: m[0] == "dead_letter").apply(lambda m: m[1]),
        )

    def learner(self, partition: int) -> ActiveLearner:
        """The learner of ``partition`` in the current checkpoint (inside a step only)."""
        return self._open(partition)[1]

    def _open(self, partition: int) -> tuple[Any, ActiveLearner]:
        sdf = self._sdf
        tx = sdf.processing_context.checkpoint.get_store_transaction(
            stream_id=sdf.stream_id, partition=partition
        )
        cached = self._cache.get(partition)
        if cached is not None and cached[0] is tx:
            return tx, cached[1]
        state = tx.as_state(prefix=_PREFIX)
        saved = state.get_bytes(_KEY)
        if saved is None:
            learner = self.make_learner(partition)
        else:
            learner = ActiveLearner.from_state(
                loads(saved, self.key, f"the learner of partition {partition}")
            )
        self._cache[partition] = (tx, learner)
        return tx, learner

    def _on_message(self, value: Any) -> list[tuple[str, dict[str, Any]]]:
        ctx = message_context()
        where = f"{ctx.topic}/{ctx.partition}/{ctx.offset}"
        tx, learner = self._open(ctx.partition)
        if isinstance(value, bytes | str):  # read as bytes: malformed JSON is a dead letter
            value = json_line(value, where)
        if ctx.topic in self._labels_topics:
            out = self._learn(learner, value, where)
        else:
            out = self._decide(learner, value, ctx.partition, ctx.offset, where)
        # serialised now: Quix writes what is set when it commits, and has no hook before
        tx.as_state(prefix=_PREFIX).set_bytes(_KEY, dumps(learner.state(), self.key))
        return out

    def _decide(
        self, learner: ActiveLearner, value: Any, partition: int, offset: int, where: str
    ) -> list[tuple[str, dict[str, Any]]]:
        if isinstance(value, BadInput):
            record = value
        elif isinstance(value, dict):
            record = record_from_object(value, f"{partition}-{offset}", where)
        else:
            record = BadInput("a record must be a JSON object", value, where)
        if isinstance(record, BadInput):
            return [("dead_letter", {"kind": "record", **record.to_dead_letter()})]
        record.partition, record.offset = partition, offset
        try:
            decision = learner.decide(record)
        except Exception as e:  # a record the model cannot take must not stop the app
            letter = BadInput(why_not_decided(e), value, where).to_dead_letter()
            return [("dead_letter", {"kind": "record", **letter})]
        if not decision.query:
            return []
        request = decision.to_request(record, learner.strategy.name)
        request["model_version"] = learner.labels_applied
        request["partition"] = partition  # where its label goes
        return [("request", request)]

    def _learn(
        self, learner: ActiveLearner, value: Any, where: str
    ) -> list[tuple[str, dict[str, Any]]]:
        label = value if isinstance(value, BadInput) else label_from_object(value, value, where)
        if isinstance(label, BadInput):
            return [("dead_letter", {"kind": "label", **label.to_dead_letter()})]
        try:
            outcome = learner.learn(label.request_id, label.label, annotator=label.annotator)
        except Exception as e:
            outcome = f"unusable ({type(e).__name__}: {e})"
        if outcome in ("applied", "held"):
            partition = message_context().partition
            return [
                ("request", {
                    "request_id": pending.request_id, "record_id": pending.record_id,
                    "features": pending.features, "second_opinion": True,
                    "exclude_annotator": first, "partition": partition,
                })
                for pending, first in learner.take_second_opinions()
            ]  # fmt: skip
        reason = learner.why_refused(label.request_id, label.label, outcome)
        return [("dead_letter", {"kind": "label", "reason": reason, "where": where, "raw": value})]
