"""The training topic: the labelled examples every process's model learns, in one order.

A partition's learner that applies a label does not teach the model: it
queues the example (``streamal.shared_model.SharedModel``), and the daemon
writes it here in the transaction that consumed the label, so that a label
becomes one example exactly once. Every process reads this one-partition
topic (``read_committed``) and teaches its replica of the model each
example in offset order, so replicas that have read to the same offset are
the same model, whichever process made the examples. A replica is saved on
the changelog with the offset it has read to; a process that starts takes
the newest one and reads on from its offset.

A message holds the examples of one transaction, as a JSON list, signed
with the group's key in the ``streamal-sig`` header: a message that someone
without the key wrote is not learned.

>>> from streamal.shared_model import Example
>>> key = b"k" * 32
>>> value, headers = encode_examples([Example({"x": 1.5}, "UP", 1.0, True, "q-3")], key)
>>> decode_examples(value, headers, key)
[Example(features={'x': 1.5}, label='UP', weight=1.0, seen=True, request='q-3')]
>>> decode_examples(value, [], key)
'no signature'
>>> decode_examples(value.replace(b"UP", b"DOWN"), headers, key)
'signature does not match the group key'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from itertools import chain
from typing import Any

import orjson
from streamal.connectors.kafka.clients import Client, Message, read_to_end

from streamal.shared_model import Example, SharedModel

__all__ = ["encode_examples", "decode_examples", "TrainingReader"]

log = logging.getLogger("streamal.kafka")

SIGNATURE = "streamal-sig"


def _mac(value: bytes, key: bytes) -> bytes:
    return hmac.new(key, b"example:" + value, hashlib.sha256).digest()


def encode_examples(examples: list[Example], key: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of one message holding ``examples``, in their order."""
    value = orjson.dumps([
        {"features": e.features, "label": e.label, "weight": e.weight, "seen": e.seen,
         "request": e.request}
        for e in examples
    ])  # fmt: skip
    return value, [(SIGNATURE, _mac(value, key))]


def decode_examples(value: bytes, headers: Any, key: bytes) -> list[Example] | str:
    """The examples in a message, or why it holds none to learn."""
    mac = next((v for k, v in headers or () if k == SIGNATURE), None)
    if mac is None:
        return "no signature"
    if not hmac.compare_digest(mac, _mac(value, key)):
        return "signature does not match the group key"
    try:
        return [
            Example(dict(obj["features"]), obj["label"], float(obj["weight"]),
                    bool(obj["seen"]), obj.get("request"))
            for obj in orjson.loads(value)
        ]  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        return f"not a list of examples ({type(e).__name__}: {e})"


class TrainingReader:
    """Reads the training topic from a replica's offset and teaches it each example."""

    def __init__(self, client: Client, topic: str, key: bytes):
        self.topic = topic
        self.key = key
        self.offset = 0
        self.bad = 0  # messages not learned: unsigned, signed with another key, malformed
        self._reader = client.reader()
        self._reader.assign(topic, [0])

    def start_at(self, offset: int) -> None:
        """Read on from ``offset`` (the replica has learned everything before it)."""
        reader = self._reader
        first = reader.first_offset(self.topic, 0)
        if offset < first:
            raise RuntimeError(
                f"{self.topic}: the model was saved at offset {offset}, but the topic "
                f"starts at {first} now: the examples between are gone (retention); give the "
                "topic retention.ms=-1, or start the group afresh"
            )
        reader.seek(self.topic, 0, offset)
        self.offset = offset

    def catch_up(self, model: SharedModel, timeout: float = 30.0) -> int:
        """Teach every committed example up to the end; how many."""
        n = self._learn(read_to_end(self._reader, self.topic, [0], timeout=timeout), model)
        self.offset = self._reader.position(self.topic, 0)
        return n

    def teach(self, model: SharedModel) -> int:
        """Teach what has come since the last call, without waiting; how many."""
        return self._learn(chain.from_iterable(self._reader.poll(0).values()), model)

    def _learn(self, messages: Iterable[Message], model: SharedModel) -> int:
        n = 0
        for m in messages:
            self.offset = m.offset + 1
            examples = decode_examples(m.value, m.headers, self.key)
            if isinstance(examples, str):
                self.bad += 1
                log.warning("%s@%d not learned: %s", m.topic, m.offset, examples)
                continue
            for example in examples:
                model.teach(example)
            n += len(examples)
        return n

    def close(self) -> None:
        try:
            self._reader.close()
        except Exception:  # a client of a dead broker may fail to close; nothing to save
            pass
