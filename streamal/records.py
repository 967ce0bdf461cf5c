"""The data that flows: records in, decisions out, labels back.

>>> r = Record(id="r1", features={"x": 1.0})
>>> r.id, r.features
('r1', {'x': 1.0})
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamal.schema import ENVELOPE, is_text

__all__ = [
    "Record",
    "Decision",
    "Decisions",
    "Label",
    "BadInput",
    "record_from_object",
    "label_from_object",
    "json_line",
    "label_problem",
    "label_to_object",
]


@dataclass(slots=True)
class Record:
    """One event of the stream.

    Parameters
    ----------
    id
        Stable identifier; label requests refer back to it.
    features
        Feature name -> number (or string for a categorical feature).
    ts
        Event time in seconds, if the source knows it.
    key
        Partitioning key, carried through to the label request.
    label
        The true label, known only when replaying a labelled file.
    where
        Where it came from, for the dead letters: ``file:line`` for a
        file, ``topic/partition/offset`` for Kafka.
    """

    id: str
    features: dict[str, Any]
    ts: float | None = None
    key: str | None = None
    label: Any = None
    partition: int | None = None
    offset: int | None = None
    where: str | None = None


@dataclass(slots=True)
class Decision:
    """What the learner decided for one record.

    ``query`` says whether a label should be requested; ``request_id`` names
    the request (``None`` when not queried). ``query_probability`` is the
    probability with which the strategy would query this record, which an
    importance-weighted estimate needs.
    """

    record_id: str
    query: bool
    request_id: str | None
    utility: float
    confidence: float
    prediction: Any
    probabilities: dict[Any, float]
    query_probability: float
    reason: str = "strategy"

    def to_request(self, record: Record, strategy: str) -> dict[str, Any]:
        """The label request as written to a sink (JSON-serialisable)."""
        return {
            "request_id": self.request_id,
            "record_id": self.record_id,
            "key": record.key,
            "features": record.features,
            "utility": self.utility,
            "confidence": self.confidence,
            "prediction": self.prediction,
            "probabilities": {str(k): v for k, v in self.probabilities.items()},
            "query_probability": self.query_probability,
            "reason": self.reason,
            "strategy": strategy,
            "ts": record.ts,
        }


class Decisions(Sequence[Decision | None]):
    """The decisions for a batch of records, in batch order, built on access.

    A batch is kept as columns (one list per field) and a ``Decision`` is made
    only when one is read, so that deciding a batch costs little more than
    scoring it. A record the learner refused (``InvalidRecord``) or the model
    could not score has ``None`` in its slot and ``(index, exception)`` in
    ``failed``.

    >>> from streamal import ActiveLearner
    >>> learner = ActiveLearner(budget=1.0)
    >>> learner.learn({"x": 1.0}, "a"), learner.learn({"x": 0.0}, "b")
    ('applied', 'applied')
    >>> batch = learner.decide_many([{"x": 1.0}, {"x": None}, {"x": 2.0}])
    >>> len(batch), batch[1], str(batch.failed[0][1])
    (3, None, "feature 'x' has unsupported type NoneType")
    >>> [(i, d.request_id) for i, d in batch.queried()]
    [(0, 'q-r1'), (2, 'q-r2')]
    """

    __slots__ = ("_columns", "_predict", "_predictions", "_reason", "_where", "failed")

    def __init__(
        self,
        record_ids: list[str],
        probabilities: list[dict[Any, float]],
        confidences: list[float],
        utilities: list[float],
        queries: list[bool],
        query_probabilities: list[float],
        request_ids: list[str | None],
        *,
        prediction_of: Callable[[dict[Any, float]], Any] | None = None,
        predictions: list[Any] | None = None,
        reason: str | list[str] = "strategy",
        failed: list[tuple[int, Exception]] | None = None,
    ):
        self._columns = (record_ids, queries, request_ids, utilities, confidences, probabilities,
                         query_probabilities)  # fmt: skip
        if prediction_of is None and predictions is None:
            raise TypeError("give the predictions, or prediction_of to make them on access")
        self._predict = prediction_of
        self._predictions = predictions
        self._reason = reason
        self.failed: list[tuple[int, Exception]] = failed or []
        # batch index -> column index, only when some records failed
        self._where: list[int | None] | None = None
        if self.failed:
            bad = {i for i, _ in self.failed}
            where, k = [], 0
            for i in range(len(record_ids) + len(bad)):
                where.append(None if i in bad else k)
                k += i not in bad
            self._where = where

    def __len__(self) -> int:
        return len(self._columns[0]) + len(self.failed)

    def _make(self, k: int) -> Decision:
        ids, queries, request_ids, utilities, confidences, probas, qps = self._columns
        reason = self._reason if isinstance(self._reason, str) else self._reason[k]
        predictions = self._predictions
        prediction = predictions[k] if predictions is not None else self._predict(probas[k])
        return Decision(ids[k], queries[k], request_ids[k], utilities[k], confidences[k],
                        prediction, probas[k], qps[k], reason)  # fmt: skip

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self._where is None:
            return self._make(range(len(self))[i])
        k = self._where[i]
        return None if k is None else self._make(k)

    def __iter__(self) -> Iterator[Decision | None]:
        return (self[i] for i in range(len(self)))

    @property
    def queries(self) -> list[bool]:
        """Whether each scored record's label is requested (failed records left out)."""
        return self._columns[1]

    def queried(self) -> list[tuple[int, Decision]]:
        """``(index in the batch, decision)`` for each record whose label is requested."""
        where = self._where
        ks = [k for k, q in enumerate(self._columns[1]) if q]
        if where is None:
            return [(k, self._make(k)) for k in ks]
        index = {k: i for i, k in enumerate(where) if k is not None}
        return [(index[k], self._make(k)) for k in ks]


@dataclass(slots=True)
class Label:
    """A label coming back for a request."""

    request_id: str
    label: Any
    annotator: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadInput:
    """Input that could not be used, with the reason; it goes to the dead letters."""

    reason: str
    raw: Any = None
    where: str | None = None

    def to_dead_letter(self) -> dict[str, Any]:
        """The dead letter: reason, where, and the input as it came (``raw``), or
        its bytes as base64 (``raw_base64``) when they are not valid UTF-8."""
        letter: dict[str, Any] = {"reason": self.reason, "where": self.where}
        raw = self.raw
        if isinstance(raw, str):  # undecodable bytes ride in it as lone surrogates
            raw = raw if is_text(raw) else _original_bytes(raw)
        if isinstance(raw, bytes | bytearray):
            try:
                letter["raw"] = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                letter["raw_base64"] = base64.b64encode(raw).decode("ascii")
        else:
            letter["raw"] = raw
        return letter


def _original_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")  # bytes a file reader could not decode
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate escaped in JSON


def label_problem(label: Any) -> str | None:
    """Why ``label`` cannot be a class, or ``None``: a class is text, a number or a boolean.

    >>> label_problem("UP") is None, label_problem(None)
    (True, 'label is missing (null)')
    """
    if label is None:
        return "label is missing (null)"
    if isinstance(label, float) and not math.isfinite(label):
        return f"label is {label!r}, not a class"
    if isinstance(label, str):
        if not is_text(label):
            return "label is not valid text"
        return None if label else "label is empty"
    if isinstance(label, bool | int | float):
        return None
    if hasattr(label, "item") and not hasattr(label, "__len__"):  # a numpy scalar
        return label_problem(label.item())
    return f"label must be a string, number or boolean, got {type(label).__name__}"


def json_line(line: str | bytes, where: str | None = None) -> Any:
    """The value one line of JSON holds, or a ``BadInput`` saying why it holds none.

    >>> json_line('{"x": 1}\\n')
    {'x': 1}
    >>> json_line("{not json", "f:3").reason
    'malformed JSON: Expecting property name enclosed in double quotes at column 2'
    """
    text = line.rstrip(b"\r\n" if isinstance(line, bytes) else "\r\n")
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        return BadInput("line is not valid UTF-8", text, where)
    except json.JSONDecodeError as e:
        return BadInput(f"malformed JSON: {e.msg} at column {e.colno}", text, where)
    except RecursionError:
        return BadInput("JSON nested too deeply", text[:200], where)


_ENVELOPE_AND_FEATURES = ENVELOPE | {"features"}


def record_from_object(
    obj: dict[str, Any], default_id: str, where: str | None = None
) -> Record | BadInput:
    """A record from a decoded JSON object: an envelope or a flat object of features.

    ``id``, ``ts``, ``key`` and ``label`` are the envelope, never features,
    whether the object is flat or has ``features``.

    >>> record_from_object({"id": 7, "features": {"x": 1.0}, "ts": 3}, "0").id
    '7'
    >>> r = record_from_object({"id": "e0", "x": 1.2, "label": "UP"}, "0")
    >>> r.id, r.features, r.label
    ('e0', {'x': 1.2}, 'UP')
    >>> record_from_object({"features": [1]}, "0").reason
    'features must be an object of name -> value'
    >>> record_from_object({"id": "oops", "ts": 5}, "0").reason
    'record has no features (only its envelope: id, ts)'
    """
    where = where or default_id
    if "features" in obj:
        features = obj["features"]
        if not isinstance(features, dict):
            return BadInput("features must be an object of name -> value", obj, where)
        if len(obj) > 1 and not obj.keys() <= _ENVELOPE_AND_FEATURES:
            extra = sorted(k for k in obj if k not in _ENVELOPE_AND_FEATURES)
            return BadInput(
                f"unknown field {extra[0]!r} beside 'features' (the envelope is "
                "id, ts, key, label)", obj, where,
            )  # fmt: skip
    else:
        features = {k: v for k, v in obj.items() if k not in ENVELOPE}
        if not features:
            present = ", ".join(k for k in ("id", "ts", "key", "label") if k in obj)
            return BadInput(
                "record has no features" + (f" (only its envelope: {present})" if present else ""),
                obj, where,
            )  # fmt: skip
    ts = obj.get("ts")
    if ts is not None and (
        isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts)
    ):
        return BadInput(f"ts must be a finite number of seconds, got {ts!r}", obj, where)
    key = obj.get("key")
    if key is not None and not isinstance(key, str):
        if isinstance(key, bool) or not isinstance(key, int | float):
            return BadInput(f"key must be a string or a number, got {key!r}", obj, where)
        key = str(key)
    rid = obj.get("id")
    if isinstance(rid, dict | list):
        return BadInput("id must be a string or a number", obj, where)
    return Record(
        id=default_id if rid is None else str(rid),
        features=features,
        ts=ts,
        key=key,
        label=obj.get("label"),
        where=where,
    )


def label_from_object(obj: Any, raw: Any = None, where: str | None = None) -> Label | BadInput:
    """A label from a decoded JSON object ``{"request_id", "label", "annotator"}``,
    the one format of every way a label arrives (a file, Kafka), or why not.

    >>> label_from_object({"request_id": "q-1", "label": "UP", "annotator": 7})
    Label(request_id='q-1', label='UP', annotator='7', extra={})
    >>> label_from_object({"request_id": "q-1", "label": None}).reason
    "label for 'q-1' is null"
    """
    if not isinstance(obj, dict):
        return BadInput("a label must be a JSON object", raw if raw is not None else obj, where)
    request_id = obj.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return BadInput("label has no request_id", raw if raw is not None else obj, where)
    if "label" not in obj:
        return BadInput(
            f"label for {request_id!r} has no 'label' field", raw if raw is not None else obj, where
        )
    if obj["label"] is None:
        return BadInput(f"label for {request_id!r} is null", raw if raw is not None else obj, where)
    annotator = obj.get("annotator")
    label = Label(request_id, obj["label"], None if annotator is None else str(annotator))
    if isinstance(intake := obj.get("intake"), str):  # what carried it: counted by that
        label.extra["intake"] = intake
    return label


def label_to_object(label: Label) -> dict[str, Any]:
    """The JSON object of a label, the inverse of ``label_from_object``.

    >>> label_to_object(label_from_object({"request_id": "q-1", "label": "UP", "intake": "http"}))
    {'request_id': 'q-1', 'label': 'UP', 'annotator': None, 'intake': 'http'}
    """
    obj = {"request_id": label.request_id, "label": label.label, "annotator": label.annotator}
    if "intake" in label.extra:
        obj["intake"] = label.extra["intake"]
    return obj
