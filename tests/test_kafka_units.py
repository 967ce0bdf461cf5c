"""Kafka connector logic that needs no broker: messages, the learner view, state entries."""

import json
import pickle

import pytest
from prometheus_client import CollectorRegistry
from streamal.connectors.kafka import app as kafka_app
from streamal.connectors.kafka.app import (
    KafkaApp,
    KafkaSettings,
    LearnerGroup,
    StateError,
    _await_leaders,
    _Restart,
)
from streamal.connectors.kafka.messages import (
    decode_label,
    decode_record,
    encode_dead_letter,
    encode_request,
    encode_second_opinion,
)

from streamal import ActiveLearner, Record, strategies
from streamal.metrics import Metrics
from streamal.records import BadInput, Label


def test_record_and_label_decoding():
    rec = decode_record(b'{"id": 42, "features": {"a": 1}, "ts": 5}', 3, 9)
    assert (rec.id, rec.ts, rec.partition, rec.offset) == ("42", 5, 3, 9)
    assert decode_record(b'{"a": 1.0}', 0, 1).features == {"a": 1.0}
    assert "finite" in decode_record(b'{"features": {"a": 1}, "ts": "now"}', 0, 2).reason
    assert isinstance(decode_record(None, 0, 3), BadInput)
    assert decode_label(b'{"request_id": "q-1", "label": "UP", "annotator": 7}', "0-1") == Label(
        "q-1", "UP", "7"
    )
    assert (
        decode_label(b'{"request_id": "q-1"}', "x").reason == "label for 'q-1' has no 'label' field"
    )


def test_request_and_dead_letter_encoding():
    learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=1.0))
    record = Record("0-5", {"a": 1.0}, ts=3.0)
    d = learner.decide(record)
    msg = json.loads(encode_request(d, record, "variable_uncertainty", 0))
    assert msg["request_id"] == "q-0-5" and msg["model_version"] == 0 and msg["v"] == 1
    dead = json.loads(encode_dead_letter("record", "bad", b"\xff\x00", "t", 1, 2))
    assert dead["raw_base64"] == "/wA=" and (dead["topic"], dead["partition"], dead["offset"]) == (
        "t",
        1,
        2,
    )


def test_learner_group_sums_partitions_for_metrics():
    a, b = ActiveLearner(), ActiveLearner()
    for i in range(300):
        a.decide({"x": float(i)})
    for i in range(100):
        b.decide({"x": float(i)})
    group = LearnerGroup({0: a, 1: b}, ActiveLearner())
    registry = CollectorRegistry()
    Metrics(registry, group)
    assert registry.get_sample_value("streamal_records_total") == 400
    assert registry.get_sample_value("streamal_label_requests_total") == a.n_queries + b.n_queries
    assert registry.get_sample_value("streamal_pending_requests") == len(a.pending) + len(b.pending)
    assert registry.get_sample_value("streamal_label_delay_records") is None  # no label yet
    requests = [d.request_id for d in map(a.decide, [{"x": float(i)} for i in range(50)])]
    for i, request_id in enumerate(r for r in requests if r is not None):
        a.learn(request_id, i % 2 == 0)
    assert registry.get_sample_value("streamal_label_delay_records") == a.label_delay
    # the time from request to label, over both partitions' learners
    answered = [d.request_id for d in map(b.decide, [{"x": 0.5}] * 40) if d.request_id]
    b.learn(answered[0], True)
    count = a.label_latency.count + 1
    assert registry.get_sample_value("streamal_label_latency_seconds_count") == count
    assert registry.get_sample_value("streamal_budget_ratio") == 0.1
    # the whole scrape works, expired requests included
    b.pending.expire(now=b.clock() + 10**9)
    assert registry.get_sample_value("streamal_pending_expired_total") == b.pending.expired > 0


def _app():
    return KafkaApp(KafkaSettings(), lambda p: ActiveLearner(), key=b"k")


def test_state_entries_are_signed_and_checked():
    app = _app()
    signed = app._sign(pickle.dumps({"n": 1}))
    assert app._verify(signed, "x") == {"n": 1}
    with pytest.raises(StateError, match="signature does not match"):
        app._verify(signed[:-1] + b"!", "x")
    with pytest.raises(StateError, match="not a streamal state"):
        app._verify(pickle.dumps({"n": 1}), "x")


def test_changelog_increments_rebuild_the_pending_table_in_order():
    app = _app()
    learner = app._learner(0)
    learner.strategy = strategies.VariableUncertainty(budget=1.0)
    learner.cap = None
    topic: dict[bytes, bytes] = {}  # what compaction keeps: the newest value per key
    kinds = set()
    for i in range(3000):
        d = learner.decide(Record(str(i), {"x": float(i)}), now=float(i))
        if i % 5:  # most requests are answered; every fifth stays open
            learner.learn(d.request_id, i % 2 == 0, now=float(i))
        if i % 10 == 9:  # one cycle
            for key, value in app._changes(0):
                kinds.add(key.split(b"/")[1])
                topic.pop(key, None)
                if value is not None:
                    topic[key] = value
    assert kinds == {b"core", b"delta", b"pending"}  # deltas, then a whole table
    assert len(topic) < 150  # replaced deltas were tombstoned
    restored = _app()
    restored._rebuild(topic)
    again = restored.learners[0]
    assert list(again.pending._open) == list(learner.pending._open)
    assert again.pending._closed == learner.pending._closed
    assert again.n_records == learner.n_records
    assert again.learn("q-1", True, now=3000.0) == "duplicate"
    assert again.learn("q-0", True, now=3000.0) == "applied"
    # and it keeps writing increments from where it was
    assert restored._changes(0)[0][0] == b"0/core"


def test_a_pending_table_larger_than_a_piece_goes_in_pieces_and_comes_back(monkeypatch):
    monkeypatch.setattr(kafka_app, "_TABLE_PIECE", 400)
    app = _app()
    learner = app._learner(0)
    learner.strategy = strategies.VariableUncertainty(budget=1.0)
    learner.cap = None
    topic: dict[bytes, bytes] = {}

    def write(entries):
        for key, value in entries:
            topic.pop(key, None)
            if value is not None:
                topic[key] = value

    for i in range(3000):
        d = learner.decide(Record(str(i), {"x": float(i)}), now=float(i))
        if i % 5:
            learner.learn(d.request_id, True, now=float(i))
        if i % 10 == 9:
            write(app._changes(0))
    pieces = sorted(k for k in topic if k.startswith(b"0/pending/"))
    assert len(pieces) > 1  # no message holds more than 400 entries
    restored = _app()
    restored._rebuild(dict(topic))
    again = restored.learners[0].pending
    assert list(again._open) == list(learner.pending._open)
    assert again._closed == learner.pending._closed
    # a smaller table later: the pieces it no longer needs are tombstoned
    monkeypatch.setattr(kafka_app, "_TABLE_PIECE", 100_000)
    write(app._table(0, app._seq[0]))
    assert sorted(k for k in topic if k.startswith(b"0/pending")) == [b"0/pending/0"]
    # pieces of two different tables do not make one
    broken = dict(topic)
    broken[b"0/pending/1"] = app._sign(pickle.dumps({"seq": -5, "open": [], "closed": []}))
    with pytest.raises(StateError, match="do not make one table"):
        _app()._rebuild(broken)


def test_second_opinion_request_encoding():
    msg = json.loads(encode_second_opinion("q-7", "7", {"a": 1.0}, "sloppy"))
    assert msg == {"v": 1, "request_id": "q-7", "record_id": "7", "features": {"a": 1.0},
                   "second_opinion": True, "exclude_annotator": "sloppy"}  # fmt: skip


class _Admin:
    """A client whose broker elects the topics' leaders after a few requests."""

    def __init__(self, requests_until_elected: int):
        self.left = requests_until_elected
        self.asked = 0

    def leaderless(self, topics):
        self.asked += 1
        self.left -= 1
        return list(topics) if self.left >= 0 else []


def test_the_group_forms_once_the_topics_partitions_have_leaders():
    admin = _Admin(requests_until_elected=3)
    _await_leaders(admin, ["records", "labels"])
    assert admin.asked == 4
    with pytest.raises(_Restart, match="no leader yet"):
        _await_leaders(_Admin(requests_until_elected=10**9), ["records"], timeout=0.3)


def test_partitions_share_one_model_that_learns_only_what_comes_back_from_the_topic():
    app = _app()
    first, second = app._learner(0), app._learner(1)
    assert first.model is second.model is app.shared
    first.learn({"x": 1.0}, True)
    second.learn({"x": -1.0}, False)
    assert app.shared.learned == 0 and app.shared.n_labels_seen == 0  # queued, not learned
    examples = app.shared.take_examples()
    assert [e.label for e in examples] == [True, False]
    for example in examples:  # as read back from the training topic
        app.shared.teach(example)
    assert app.shared.learned == 2 and second.model.n_labels_seen == 2


def test_the_shared_model_comes_back_from_the_changelog_and_the_mode_is_checked():
    app = _app()
    app._learner(0).learn({"x": 1.0}, True)
    for example in app.shared.take_examples():
        app.shared.teach(example)
    topic = dict(app._changes(0))
    saved = {"replica": app.shared.replica, "learned": 1, "offset": 7, "settings": {}}
    topic[b"model"] = app._sign(pickle.dumps(saved))
    restored = _app()
    restored._rebuild(topic)
    assert restored.learners[0].model is restored.shared
    assert restored.shared.learned == 1 and restored._model_offset == 7
    x = {"x": 0.5}
    assert restored.shared.score(x) == app.shared.score(x)
    own = KafkaApp(KafkaSettings(partition_models="own"), lambda p: ActiveLearner(), key=b"k")
    with pytest.raises(StateError, match="saved with partition_models = shared"):
        own._rebuild(topic)


def test_a_background_model_needs_a_model_of_its_own():
    def make(p):
        return ActiveLearner(background=True, drift="adwin")

    with pytest.raises(ValueError, match="--partition-models own"):
        KafkaApp(KafkaSettings(), make, key=b"k")
    KafkaApp(KafkaSettings(partition_models="own"), make, key=b"k")
