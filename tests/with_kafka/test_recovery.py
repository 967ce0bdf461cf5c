"""Crash and outage recovery against a real broker: nothing lost, nothing doubled."""

import random
import re
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.with_kafka.conftest import Topics, daemon, sea_records
from tests.with_kafka.test_daemon import _state

PROGRESS = re.compile(r"^records=(\d+) ")
RESTORED = re.compile(r"restored \d+ learner\(s\) from \S+ \((\d+) records decided\)")


class Progress:
    """Follows a daemon's summary lines on stderr (records this process decided)."""

    def __init__(self, proc):
        self.proc = proc
        self.records = 0
        self.restored = 0  # records decided by the incarnations before this one
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = PROGRESS.match(line)
            if m:
                self.records = int(m.group(1))
            m = RESTORED.search(line)
            if m:
                self.restored = int(m.group(1))

    def wait_for(self, n, total, timeout=120):
        """Until this process decided ``n`` records, or the stream's ``total`` all told.

        An earlier incarnation may have run well past the moment it was
        killed at, so fewer than ``n`` records can be left for this one.
        """
        deadline = time.monotonic() + timeout
        while (
            self.records < n and self.restored + self.records < total and self.proc.poll() is None
        ):
            if time.monotonic() > deadline:
                tail = "".join(self.lines[-30:])
                raise AssertionError(f"no progress past {self.records} records; stderr:\n{tail}")
            time.sleep(0.02)


def _kill_at_random_moments(topics, cwd, n_kills, rng, total, extra=()):
    kills = 0
    for _ in range(n_kills):
        proc = daemon(topics, "--summary-every", "250", "--commit-every", "700", *extra,
                      cwd=cwd, wait=False)  # fmt: skip
        progress = Progress(proc)
        try:
            progress.wait_for(rng.randrange(500, 4000), total)
            time.sleep(rng.uniform(0, 0.3))  # anywhere in a cycle, transactions open or closing
        finally:
            if proc.poll() is None:
                proc.kill()
                kills += 1
            proc.wait()
    return kills


def test_the_summary_shows_where_the_stream_stands_once_caught_up(topics, tmp_path):
    n = 1_201  # fewer than --summary-every: no line falls due while records come in
    topics.produce(topics.records, sea_records(n, seed=7))
    proc = daemon(topics, "--summary-every", "5000", cwd=tmp_path, wait=False)
    progress = Progress(proc)
    try:
        progress.wait_for(n, n, timeout=120)
        time.sleep(1.5)  # idle: no more lines unless something new was decided
    finally:
        proc.kill()
        proc.wait()
    counts = [int(PROGRESS.match(line).group(1)) for line in progress.lines
              if PROGRESS.match(line)]  # fmt: skip
    assert counts and counts[-1] == n, "".join(progress.lines[-20:])
    assert counts == sorted(set(counts))  # one line each time it caught up, none repeated


def test_sigkill_at_ten_moments_skips_and_doubles_nothing(bootstrap, kafka_client, tmp_path):
    n = 50_000
    records = sea_records(n, seed=3)
    straight, crashed = Topics(bootstrap, kafka_client), Topics(bootstrap, kafka_client)
    straight.produce(straight.records, records)
    crashed.produce(crashed.records, records)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    # labels held back: no annotator, so the decisions depend on the records alone
    daemon(straight, "--exit-when-idle", 3, cwd=tmp_path / "a")
    kills = _kill_at_random_moments(crashed, tmp_path / "b", 10, random.Random(11), n)
    daemon(crashed, "--exit-when-idle", 3, cwd=tmp_path / "b")
    assert kills == 10
    expected = straight.read(straight.requests)
    got = crashed.read(crashed.requests)
    ids = [r["request_id"] for r in got]
    assert len(ids) == len(set(ids)), "a label request was committed twice"
    assert set(ids) == {r["request_id"] for r in expected}
    assert [r["utility"] for r in got] == [r["utility"] for r in expected]
    assert _state(crashed, tmp_path / "b").learners[0].n_records == n  # none skipped


class Annotator:
    """Answers every committed label request with the SEA concept's true label."""

    def __init__(self, topics):
        self.topics = topics
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c = KafkaConsumer(
            self.topics.requests, bootstrap_servers=self.topics.bootstrap, group_id=None,
            auto_offset_reset="earliest", isolation_level="read_committed",
        )  # fmt: skip
        p = KafkaProducer(bootstrap_servers=self.topics.bootstrap)
        import json

        while not self.stop.is_set():
            for msgs in c.poll(timeout_ms=200).values():
                for m in msgs:
                    r = json.loads(m.value)
                    f = r["features"]
                    label = {"request_id": r["request_id"], "label": f["0"] + f["1"] <= 8,
                             "annotator": "oracle"}  # fmt: skip
                    p.send(self.topics.labels, json.dumps(label).encode())
                    self.sent += 1
            p.flush()
        c.close()
        p.close()


def test_every_label_is_applied_exactly_once_across_crashes(topics, tmp_path):
    n = 20_000
    topics.produce(topics.records, sea_records(n, seed=4))
    annotator = Annotator(topics)
    try:
        kills = _kill_at_random_moments(topics, tmp_path, 4, random.Random(5), n)
        daemon(topics, "--exit-when-idle", 4, cwd=tmp_path)
        requests = topics.read(topics.requests)
        deadline = time.monotonic() + 30
        while annotator.sent < len(requests) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        annotator.stop.set()
        annotator.thread.join(10)
    assert kills == 4
    assert annotator.sent == len(requests) > 500
    daemon(topics, "--exit-when-idle", 3, cwd=tmp_path)  # take the last labels
    learner = _state(topics, tmp_path).learners[0]
    assert learner.labels_applied == annotator.sent
    assert sum(learner.labels_rejected.values()) == 0
    assert learner.n_records == n


def test_broker_outage_of_20_seconds_loses_nothing(broker, kafka_client, tmp_path):
    bootstrap, b = broker
    if b is None:
        pytest.skip("the outage test stops the fixture's own broker (STREAMAL_KAFKA_BOOTSTRAP set)")
    topics = Topics(bootstrap, kafka_client)
    n = 30_000
    topics.produce(topics.records, [{"id": f"r{i}", **r} for i, r in
                                    enumerate(sea_records(n, seed=6))])  # fmt: skip
    # every record asks for a label, so the requests show that each was decided once
    proc = daemon(topics, "--budget", "1.0", "--summary-every", "500", "--commit-every", "300",
                  "--exit-when-idle", "8", cwd=tmp_path, wait=False)  # fmt: skip
    progress = Progress(proc)
    try:
        progress.wait_for(5000, n)
        b.stop()
        time.sleep(20)
        b.start()
        out = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:  # never leave a daemon behind a failed test
            proc.kill()
            proc.wait()
    err = "".join(progress.lines)
    assert out == 0, err[-3000:]
    # the outage was seen and logged: either the client rode it out with retries, or a
    # transaction step failed and the daemon restarted its clients
    assert re.search(
        r"restarting the Kafka clients|KafkaConnectionError|ECONNREFUSED"
        r"|Connection refused",
        err,
    ), err
    requests = topics.read(topics.requests)
    ids = [r["request_id"] for r in requests]
    assert len(ids) == len(set(ids)) == n
