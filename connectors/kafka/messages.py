"""The JSON messages on streamal's Kafka topics (format version 1).

* record in: ``{"id": ..., "features": {...}, "ts": ..., "key": ...}``; ``id``,
  ``ts`` and ``key`` are optional (``PARTITION-OFFSET`` is the id when none
  is given); a flat object is read as the features, less the envelope
  (``id``, ``ts``, ``key``, ``label``), which is never a feature;
* label request out: ``request_id``, ``record_id``, ``features``, ``utility``,
  ``confidence``, ``prediction``, ``probabilities``, ``strategy``,
  ``model_version``, ``ts`` (and ``v``), keyed like the record;
* label in: ``{"request_id": ..., "label": ..., "annotator": ...}``;
* dead letter: ``v``, ``kind``, ``reason``, ``where`` (``topic/partition/offset``),
  ``topic``, ``partition``, ``offset`` and the original bytes (``raw`` as
  text, or ``raw_base64``).

>>> rec = decode_record(b'{"features": {"x": 1.5}}', partition=0, offset=7)
>>> rec.id, rec.features
('0-7', {'x': 1.5})
>>> decode_record(b'{"features": 3}', 0, 8).reason
'features must be an object of name -> value'
>>> decode_record(b'{"id": "e0", "x": 1.2, "label": "UP"}', 0, 9).features
{'x': 1.2}
>>> decode_label(b'{"request_id": "q-1", "label": null}', "0-3").reason
"label for 'q-1' is null"
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streamal.records import (
    BadInput,
    Decision,
    Label,
    Record,
    label_from_object,
    record_from_object,
)

__all__ = [
    "FORMAT",
    "decode_record",
    "decode_records",
    "decode_label",
    "encode_request",
    "encode_dead_letter",
    "encode_json",
]

FORMAT = 1


def _default(obj: Any) -> Any:
    return str(obj)


def encode_json(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _json_object(value: bytes | None, what: str, where: str) -> dict | BadInput:
    if value is None:
        return BadInput("empty message", None, where)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        return BadInput(f"malformed JSON: {str(e)[:200]}", value, where)
    if not isinstance(obj, dict):
        return BadInput(f"a {what} must be a JSON object", value, where)
    return obj


def decode_record(
    value: bytes | None, partition: int, offset: int, topic: str = ""
) -> Record | BadInput:
    """A record from a message value, or why it cannot be one."""
    where = f"{topic}/{partition}/{offset}"
    obj = _json_object(value, "record", where)
    if isinstance(obj, BadInput):
        return obj
    return _record(obj, value, partition, offset, where)


def _record(obj: dict, value: bytes, partition: int, offset: int, where: str) -> Record | BadInput:
    record = record_from_object(obj, f"{partition}-{offset}", where)
    if isinstance(record, BadInput):
        return BadInput(record.reason, value, where)
    record.partition, record.offset, record.label = partition, offset, None
    return record


def decode_records(
    msgs: list[Any], partition: int, topic: str = ""
) -> tuple[list[Record], list[Any], list[tuple[Any, str]]]:
    """One partition's share of a poll in one pass: its records, the message
    each came from, and the messages that are not records, with why.

    The common shapes, ``{"features": {...}}`` alone or with a string
    ``"id"``, become records without the general checks; any other object
    gets them.

    >>> from streamal.connectors.kafka.clients import Message
    >>> values = (b'{"features": {"x": 1}}', b'{"id": "e7", "features": {"x": 2}}', b"[")
    >>> msgs = [Message("t", 0, 5 + i, None, v, None) for i, v in enumerate(values)]
    >>> records, sources, bad = decode_records(msgs, 0, "t")
    >>> [(r.id, r.features) for r in records], sources[1].offset, bad[0][1][:13]
    ([('0-5', {'x': 1}), ('e7', {'x': 2})], 6, 'malformed JSO')
    """
    records: list[Record] = []
    sources: list[Any] = []
    bad: list[tuple[Any, str]] = []
    loads, dict_ = orjson.loads, dict
    for m in msgs:
        try:
            obj = loads(m.value)
        except (orjson.JSONDecodeError, TypeError):
            obj = None
        if type(obj) is dict_:
            features = obj.get("features")
            if type(features) is dict_:
                n, offset = len(obj), m.offset
                rid = f"{partition}-{offset}" if n == 1 else obj.get("id") if n == 2 else None
                if type(rid) is str:
                    records.append(Record(rid, features, None, None, None, partition, offset))
                    sources.append(m)
                    continue
            item = _record(obj, m.value, partition, m.offset, f"{topic}/{partition}/{m.offset}")
        else:  # not JSON, or not an object: the reason comes from the general path
            item = decode_record(m.value, partition, m.offset, topic)
        if isinstance(item, Record):
            records.append(item)
            sources.append(m)
        else:
            bad.append((m, item.reason))
    return records, sources, bad


def decode_label(value: bytes | None, where: str) -> Label | BadInput:
    """A label from a message value, or why it cannot be one."""
    obj = _json_object(value, "label", where)
    if isinstance(obj, BadInput):
        return obj
    return label_from_object(obj, value, where)


def encode_request(decision: Decision, record: Record, strategy: str, model_version: int) -> bytes:
    return encode_json(
        {
            "v": FORMAT,
            "request_id": decision.request_id,
            "record_id": record.id,
            "features": record.features,
            "utility": decision.utility,
            "confidence": decision.confidence,
            "prediction": decision.prediction,
            "probabilities": {str(k): v for k, v in decision.probabilities.items()},
            "query_probability": decision.query_probability,
            "strategy": strategy,
            "model_version": model_version,
            "ts": record.ts,
            # its label goes to this partition of the labels topic, where the learner
            # holding the request reads it
            "partition": record.partition,
        }
    )


def encode_second_opinion(request_id: str, record_id: str, features: dict, exclude: str) -> bytes:
    """A request sent again: its first label came from an unreliable annotator."""
    return encode_json(
        {
            "v": FORMAT,
            "request_id": request_id,
            "record_id": record_id,
            "features": features,
            "second_opinion": True,
            "exclude_annotator": exclude,
        }
    )


def encode_dead_letter(
    kind: str, reason: str, raw: bytes | None, topic: str, partition: int, offset: int
) -> bytes:
    letter: dict[str, Any] = {
        "v": FORMAT,
        "kind": kind,
        "reason": reason,
        "where": f"{topic}/{partition}/{offset}",
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
    if raw is not None:
        try:
            letter["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            letter["raw_base64"] = base64.b64encode(raw).decode()
    return encode_json(letter)
