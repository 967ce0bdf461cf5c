"""Fuzzing every input surface: whatever comes in, nothing crashes and the model stays finite.

The library (``decide``, ``decide_many``, ``learn``), each file format and
stdin (random bytes, random JSON, deep nesting, long lines), and Kafka
message values through the daemon's decoding and deciding. The example
counts are set here, so CI runs the same number every time.
"""

import gzip
import io
import json
import math
import sys
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamal.connectors.kafka.app import KafkaApp, KafkaSettings
from streamal.connectors.kafka.messages import decode_label, decode_record, decode_records

from streamal import ActiveLearner, InvalidRecord, RecordValidator
from streamal.engine import Engine
from streamal.records import BadInput, Record
from streamal.sinks import CallableSink, dumps
from streamal.sources import CsvSource, JsonlSource, SourceError


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**400), 10**400),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from(["\ud800", "caf\udce9"]),
)
names = st.one_of(st.sampled_from(["a", "b", "c", "id", "label", "ts", "key"]),
                  st.text(max_size=3), st.integers(0, 3))  # fmt: skip
features = st.dictionaries(names, values, max_size=4)
labels = st.one_of(st.none(), st.text(max_size=3), st.integers(-2, 2), st.booleans(),
                   st.floats(), st.lists(st.integers(), max_size=1))  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=12,
)  # fmt: skip
json_records = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["id", "ts", "key", "label", "features", "x", "y"]),
                    json_values, max_size=5),
    st.fixed_dictionaries({"features": st.dictionaries(names.filter(lambda n: isinstance(n, str)),
                                                       json_values, max_size=3)}),
)  # fmt: skip


def _finite(learner: ActiveLearner) -> bool:
    probabilities = learner.model.score_quietly({"a": 1.0, "b": 0.5})[0]
    return all(math.isfinite(p) for p in probabilities.values())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), features),
        st.tuples(st.just("many"), st.lists(features, max_size=4)),
        st.tuples(st.just("learn_request"), st.integers(0, 30), labels),
        st.tuples(st.just("learn_features"), features, labels),
        st.tuples(st.just("good"), st.floats(-5, 5), st.booleans()),
    ),
    max_size=25,
)


@fuzz(1000)
@given(ops=operations, fixed=st.booleans())
def test_the_library_takes_any_sequence_of_calls_and_stays_finite(ops, fixed):
    learner = ActiveLearner(budget=1.0, classes=[False, True] if fixed else None)
    for op in ops:
        try:
            if op[0] == "decide":
                learner.decide(op[1])
            elif op[0] == "many":
                batch = learner.decide_many(op[1])
                assert len(batch) == len(op[1])
            elif op[0] == "learn_request":
                outcome = learner.learn(f"q-r{op[1]}", op[2])
                assert outcome in {"applied", "unknown", "duplicate", "expired", "invalid_label"}
            elif op[0] == "learn_features":
                learner.learn(op[1], op[2])
            else:
                d = learner.decide({"a": op[1], "b": 0.5})
                learner.learn(d.request_id, op[2])
        except InvalidRecord:
            pass  # the one error a bad record may give: a ValueError with the reason
        assert _finite(learner)
    if fixed:
        assert set(learner.label_counts) <= {False, True}


def _drain(source) -> list:
    items = list(source)
    for item in items:
        assert isinstance(item, Record | BadInput)
        if isinstance(item, BadInput):
            json.loads(dumps(item.to_dead_letter()))  # strict JSON, always
    return items


def _decide_all(items) -> None:
    """Everything a file gave, through the engine: nothing stops it, every line strict JSON."""
    lines = []
    sink = CallableSink(lambda obj: lines.append(dumps(obj)))
    learner = ActiveLearner(validator=RecordValidator())
    Engine(learner, iter(items), requests=[sink], dead_letters=sink).run()
    for line in lines:
        json.loads(line, parse_constant=_refuse)
        line.encode("utf-8")
    assert _finite(learner)


def _refuse(name):
    raise AssertionError(f"not strict JSON: {name}")


@fuzz(400)
@given(data=st.binary(max_size=300))
def test_random_bytes_in_any_file_format(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("bytes")
    path = root / "in.jsonl"
    path.write_bytes(data)
    _decide_all(_drain(JsonlSource(path)))
    path.write_bytes(gzip.compress(data))
    _decide_all(_drain(JsonlSource(path)))
    # a file that cannot be read on (a CSV header that is not text, a .gz that is not
    # gzip) stops with one line naming the file
    for name, make in (("in.csv", CsvSource), ("in.jsonl.gz", JsonlSource)):
        path = root / name
        path.write_bytes(data)
        try:
            items = _drain(make(path))
        except SourceError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e)
        else:
            _decide_all(items)


@fuzz(400)
@given(objs=st.lists(json_records, max_size=8), nesting=st.integers(0, 3000))
def test_random_json_lines_and_deep_nesting(tmp_path_factory, objs, nesting):
    path = tmp_path_factory.mktemp("json") / "in.jsonl"
    lines = [json.dumps(o) for o in objs] + ['{"x": ' + "[" * nesting + "]" * nesting + "}"]
    path.write_text("\n".join(lines) + "\n")
    items = _drain(JsonlSource(path))
    assert len(items) == len(lines)
    _decide_all(items)


@fuzz(300)
@given(data=st.binary(max_size=300), objs=st.lists(json_records, max_size=5))
def test_stdin_takes_random_bytes_and_json(monkeypatch, data, objs):
    text = "".join(json.dumps(o) + "\n" for o in objs).encode() + data
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    _decide_all(_drain(JsonlSource("-")))


def test_long_lines_on_stdin(monkeypatch):
    import streamal.sources as sources

    monkeypatch.setattr(sources, "MAX_LINE", 1000)
    text = b'{"x": 1.0}\n' + b"9" * 10_000 + b'\n{"x": 2.0}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    items = _drain(JsonlSource("-"))
    assert [getattr(i, "reason", None) for i in items] == [
        None, "line longer than 1000 characters", None,
    ]  # fmt: skip


class _Producer:
    """Stands in for the Kafka producer: the daemon's logic is what is under test."""

    def __init__(self):
        self.sent = []

    def send(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value))


def _message(value, offset, topic="records"):
    return SimpleNamespace(value=value, key=None, topic=topic, partition=0, offset=offset)


@fuzz(300)
@given(
    st.lists(
        st.one_of(st.binary(max_size=40), json_records.map(lambda o: json.dumps(o).encode()),
                  st.fixed_dictionaries({"id": st.one_of(st.text(max_size=3), st.integers()),
                                         "features": st.dictionaries(st.text(max_size=2),
                                                                     json_values, max_size=2)})
                  .map(lambda o: json.dumps(o).encode()),
                  st.none()),
        max_size=8,
    )
)  # fmt: skip
def test_a_poll_decodes_in_one_pass_as_message_by_message(values):
    """The one-pass fast paths give the same records and reasons as the general path."""
    records, sources, bad = decode_records([_message(v, i) for i, v in enumerate(values)], 0, "t")
    expected = [decode_record(v, 0, i, "t") for i, v in enumerate(values)]
    good = [e for e in expected if isinstance(e, Record)]
    assert [(r.id, r.features, r.ts, r.key, r.offset) for r in records] == [
        (e.id, e.features, e.ts, e.key, e.offset) for e in good
    ]
    assert [m.offset for m in sources] == [e.offset for e in good]
    assert [reason for _, reason in bad] == [e.reason for e in expected if isinstance(e, BadInput)]


@fuzz(400)
@given(
    values=st.lists(
        st.one_of(st.binary(max_size=80), json_records.map(lambda o: json.dumps(o).encode()),
                  st.none()),
        max_size=10,
    ),
    label_values=st.lists(
        st.one_of(st.binary(max_size=40),
                  st.fixed_dictionaries({"request_id": st.sampled_from(["q-0-1", "q-0-2", ""]),
                                         "label": labels.filter(lambda x: not isinstance(x, float)
                                                                or math.isfinite(x))})
                  .map(lambda o: json.dumps(o).encode())),
        max_size=5,
    ),
)  # fmt: skip
def test_kafka_message_values_never_stop_the_daemon(values, label_values):
    for i, value in enumerate(values):
        item = decode_record(value, 0, i, "records")
        assert isinstance(item, Record | BadInput)
    for i, value in enumerate(label_values):
        decode_label(value, f"labels/0/{i}")

    def make_learner(partition):
        return ActiveLearner(budget=1.0, validator=RecordValidator())

    app = KafkaApp(KafkaSettings(records_topic="records"), make_learner, b"k")
    app.producer = _Producer()
    app._on_records(0, [_message(v, i) for i, v in enumerate(values)])
    for i, v in enumerate(label_values):
        app._on_label(_message(v, i, "labels"))
    decided = app.learners[0].n_records
    dead = [json.loads(v) for t, v in app.producer.sent if t == app.settings.dead_letters_topic]
    assert decided + sum(d["kind"] == "record" for d in dead) >= len(values)
    assert all(d["where"].count("/") == 2 for d in dead)
    assert _finite(app.learners[0])
