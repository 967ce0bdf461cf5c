"""The labelling API in front of the Kafka daemon: labels onto the labels topic, once."""

import json
import time
import urllib.request

from kafka import KafkaConsumer

from tests.conftest import free_port
from tests.test_http_api import _call, post_through_sigkills
from tests.with_kafka.conftest import daemon, sea_records
from tests.with_kafka.test_daemon import _state


class KafkaDaemon:
    """`streamal run --source kafka --http`, as a user starts it."""

    def __init__(self, topics, cwd, *extra):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = daemon(
            topics, "--http", "--http-listen", f"127.0.0.1:{self.port}", "--budget", "0.2",
            "--commit-every", "200", *extra, cwd=cwd, wait=False,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=5):
                    break  # 200: connected, partitions assigned, state restored
            except OSError:  # not listening yet, or 503
                pass
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.2)
        self.token = (cwd / "streamal-out/http.token").read_text().strip()

    def post(self, labels):
        return _call(self.base, "/labels", self.token, labels)

    def stop(self):
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=60)
        return err


def _committed_requests(topics, timeout_ms=3000):
    """The requests a read_committed reader sees: made in a committed transaction."""
    return topics.read(topics.requests, timeout_ms=timeout_ms)


def test_labels_posted_to_the_kafka_daemon_go_through_its_labels_topic(topics, tmp_path):
    keys = [f"k{i % 5}".encode() for i in range(1000)]
    topics.produce(topics.records, sea_records(1000), keys=keys)
    d = KafkaDaemon(topics, tmp_path)
    try:
        status, body = _call(d.base, "/requests?limit=1000", d.token)
        deadline = time.monotonic() + 30
        while len(body["requests"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, body = _call(d.base, "/requests?limit=1000", d.token)
        first, second, third = body["requests"][:3]
        status, reply = d.post([
            {"request_id": first["request_id"], "label": True, "annotator": "ann"},
            {"request_id": second["request_id"], "label": None},
            {"request_id": "q-nope", "label": True},
        ])  # fmt: skip
        assert status == 200
        assert [r["outcome"] for r in reply["results"]] == ["accepted", "invalid_label",
                                                            "accepted"]  # fmt: skip
        # on the topic, keyed like the record the request came from, marked as from http
        consumer = KafkaConsumer(
            topics.labels,
            bootstrap_servers=topics.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=4000,
        )
        on_topic = {json.loads(m.value)["request_id"]: m for m in consumer}
        consumer.close()
        assert set(on_topic) == {first["request_id"], "q-nope"}
        record_offset = int(first["record_id"].split("-")[1])
        assert on_topic[first["request_id"]].key == keys[record_offset]
        assert json.loads(on_topic[first["request_id"]].value)["intake"] == "http"
        # learned in the daemon's next transaction; the unknown one is a dead letter
        deadline = time.monotonic() + 30
        while _call(d.base, "/stats", d.token)[1]["labels_applied"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while not (dead := topics.read(topics.dead, timeout_ms=1000)):
            assert time.monotonic() < deadline
        assert "q-nope" in dead[0]["reason"] and "unknown" in dead[0]["reason"]
    finally:
        d.stop()


def test_every_acknowledged_label_is_applied_once_across_sigkills(topics, tmp_path):
    """8 clients post labels while the Kafka daemon is SIGKILLed and restarted 5 times."""
    topics.produce(topics.records, sea_records(3000))
    # people answer what a read_committed consumer of the requests topic shows them
    d, acked, sent = post_through_sigkills(
        lambda round_: KafkaDaemon(topics, tmp_path),
        lambda d: [r["request_id"] for r in _committed_requests(topics)], True, "accepted", 0.1,
    )  # fmt: skip
    # let the last process take every label, then stop it cleanly
    deadline = time.monotonic() + 60
    while _call(d.base, "/stats", d.token)[1]["labels_applied"] < len(acked):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    time.sleep(2)
    d.stop()
    app = _state(topics, tmp_path)
    answered = {
        rid
        for learner in app.learners.values()
        for rid, why in learner.pending.closed_entries()
        if why == "answered"
    }
    applied = sum(learner.labels_applied for learner in app.learners.values())
    # every label acknowledged is in the model; one sent as the process died may be too
    assert acked and acked <= answered <= sent
    assert applied == len(answered)  # none of them twice
