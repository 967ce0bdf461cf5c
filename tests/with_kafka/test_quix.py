"""streamal as a step of a Quix Streams application, against the real broker, across a restart."""

import math
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from tests.with_kafka.conftest import Annotator, Topics, sea_records

pytest.importorskip("quixstreams")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quix_app.py"
PARTITIONS = 2
BUDGET = 0.05


def _processed(topics, group: str, topic: str) -> bool:
    """Whether the group has committed every partition of ``topic`` to its end."""
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=group,
                             enable_auto_commit=False)  # fmt: skip
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = consumer.end_offsets(tps)
        # a commit marker follows the last record under exactly-once: "at least the end"
        return all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps)
    finally:
        consumer.close()


def test_quix_app_requests_and_learns_exactly_once_across_a_restart(bootstrap, tmp_path):
    topics = Topics(bootstrap)  # Quix's own client: one run
    admin = KafkaAdminClient(bootstrap_servers=topics.bootstrap)
    admin.create_topics([NewTopic(topics.records, PARTITIONS, 1),
                         NewTopic(topics.labels, PARTITIONS, 1)])  # fmt: skip
    admin.close()
    records = sea_records(6000)
    first, second = records[:3000], records[3000:]
    topics.produce(topics.records, [*first, b"{not json"])
    key = tmp_path / "quix.key"
    log = open(tmp_path / "app.log", "w+")  # noqa: SIM115 - read in the asserts

    def start(state_dir):
        args = [
            sys.executable, str(EXAMPLE), "--broker", topics.bootstrap, "--group", topics.group,
            "--records-topic", topics.records, "--labels-topic", topics.labels,
            "--requests-topic", topics.requests, "--dead-letters-topic", topics.dead,
            "--budget", str(BUDGET), "--state-dir", str(tmp_path / state_dir),
            "--key-file", str(key),
        ]  # fmt: skip
        return subprocess.Popen(args, cwd=tmp_path, stdout=log, stderr=log)

    def until_processed(app, *names):
        deadline = time.monotonic() + 180
        while not all(_processed(topics, topics.group, name) for name in names):
            log.seek(0)
            assert app.poll() is None, log.read()[-3000:]
            assert time.monotonic() < deadline, log.read()[-3000:]
            time.sleep(1)

    answered: dict[str, int] = {}
    annotator = Annotator(topics, answered)
    annotator.start()
    app = start("state-1")
    try:
        until_processed(app, topics.records)
        annotator.stop.set()  # some labels of the first run come after the restart
        annotator.join(timeout=30)
        until_processed(app, topics.records, topics.labels)
        learned_before = Counter(answered.values())  # labels per partition, all applied
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=60) == 0
        # a new state folder: the learners come back from Quix's changelog topic
        topics.produce(topics.records, second)
        topics.produce(topics.labels, [{"request_id": "q-never", "label": True}])
        annotator = Annotator(topics, answered)
        annotator.start()
        app = start("state-2")
        until_processed(app, topics.records)
        time.sleep(5)  # the annotator answers the last requests
        annotator.stop.set()
        annotator.join(timeout=30)
        until_processed(app, topics.records, topics.labels)
    finally:
        annotator.stop.set()
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
            app.wait(timeout=60)
        log.close()

    requests = topics.read(topics.requests)
    ids = [r["request_id"] for r in requests]
    # each record decided once across the restart: no request made twice
    assert len(ids) == len(set(ids)) > 0
    assert len(ids) <= math.ceil(BUDGET * len(records)) + PARTITIONS
    # the learners came back: the second run's requests carry the first run's labels
    for partition in range(PARTITIONS):
        versions = [r["model_version"] for r in requests[-5:] if r["partition"] == partition]
        assert all(v >= learned_before[partition] for v in versions), (versions, learned_before)
    dead = topics.read(topics.dead)
    # the malformed record and the label for no request, with their reasons; no other
    # label refused, so every label of the first run answered after the restart was applied
    assert [d["kind"] for d in dead] == ["record", "label"], dead
    assert dead[0]["reason"].startswith("malformed JSON")
    assert "q-never" in dead[1]["reason"]
