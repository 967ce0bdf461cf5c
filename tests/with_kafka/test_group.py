"""Three daemons in one consumer group over six partitions: a kill, a return, nothing lost."""

import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from streamal.connectors.kafka.app import KafkaApp, KafkaSettings
from streamal.connectors.kafka.training import decode_examples

from streamal import ActiveLearner
from tests.with_kafka.conftest import Annotator, sea_records

PARTITIONS = 6
RECORDS = 100_000
RATE = 2_500  # records a second
BUDGET = 0.05


def _state(topics, key):
    """The group's learners and the shared model, as a process starting now restores them."""
    settings = KafkaSettings(
        bootstrap=topics.bootstrap, changelog_topic=topics.changelog,
        training_topic=topics.training, client=topics.client,
    )  # fmt: skip
    app = KafkaApp(settings, lambda p: ActiveLearner(), key)
    try:
        app._load_snapshots()
    finally:
        app._close(commit=False)
    return app.learners, app.shared


def _examples(topics, key):
    consumer = KafkaConsumer(
        topics.training, bootstrap_servers=topics.bootstrap, auto_offset_reset="earliest",
        isolation_level="read_committed", group_id=None, consumer_timeout_ms=3000,
    )  # fmt: skip
    examples = [e for m in consumer for e in decode_examples(m.value, m.headers, key)]
    consumer.close()
    return examples


def test_three_processes_share_six_partitions_and_one_model_through_a_kill_and_a_return(
    topics, tmp_path
):
    admin = KafkaAdminClient(bootstrap_servers=topics.bootstrap)
    admin.create_topics([NewTopic(topics.records, PARTITIONS, 1)])
    admin.close()
    records = [json.dumps(record).encode() for record in sea_records(RECORDS)]

    def produce():  # a live stream: the kill and the return come while records flow
        producer = KafkaProducer(bootstrap_servers=topics.bootstrap, linger_ms=20)
        for i, record in enumerate(records):
            producer.send(topics.records, record, partition=i % PARTITIONS)
            if i % 1000 == 999:
                time.sleep(1000 / RATE)
        producer.close()

    stream = threading.Thread(target=produce, daemon=True)
    key_file = tmp_path / "group.key"
    key_file.write_bytes(b"a key every process of the group shares")
    logs = []

    def start(instance, key=key_file):
        cwd = tmp_path / f"process-{instance}"  # each in a folder of its own
        cwd.mkdir(exist_ok=True)
        log = open(cwd / f"stderr-{len(logs)}.log", "w+")  # noqa: SIM115 - read after exit
        logs.append(log)
        args = [sys.executable, "-m", "streamal", "run", *topics.args(), "--instance", instance,
                "--checkpoint-key-file", key, "--budget", BUDGET, "--summary-every", 0]  # fmt: skip
        proc = subprocess.Popen(list(map(str, args)), cwd=cwd, stdout=log, stderr=log)
        proc.log = log
        return proc

    def tail(proc):
        proc.log.seek(0)
        return proc.log.read()[-3000:]

    annotator = Annotator(topics)
    annotator.start()
    processes = {i: start(i) for i in range(3)}
    stream.start()
    try:
        time.sleep(random.Random().uniform(5, 15))  # a random moment
        processes[1].send_signal(signal.SIGKILL)
        processes[1].wait()
        killed_at = time.monotonic()
        time.sleep(15)
        processes[1] = start(1)  # back again
        deadline = time.monotonic() + 300
        key = key_file.read_bytes().strip()
        while True:
            learners, _ = _state(topics, key)
            decided = sum(learner.n_records for learner in learners.values())
            applied = sum(learner.labels_applied for learner in learners.values())
            if decided == RECORDS and applied >= len(annotator.answered):
                time.sleep(3)  # the last labels' transaction, then the same again
                learners, _ = _state(topics, key)
                if sum(lrn.labels_applied for lrn in learners.values()) == applied:
                    break
            assert time.monotonic() < deadline, (decided, applied, len(annotator.answered))
            for i, proc in processes.items():
                assert proc.poll() is None, f"process {i} exited: {tail(proc)}"
            time.sleep(2)
        # a process with another key is refused before it joins, naming its key file
        other = tmp_path / "other.key"
        other.write_bytes(b"not the group's key")
        stranger = start(9, key=other)
        assert stranger.wait(timeout=60) != 0
        line = tail(stranger).strip().splitlines()[-1]
        assert line.startswith("streamal: error: ") and str(other) in line, line
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in processes.values():
            proc.wait(timeout=60)
        annotator.stop.set()
        annotator.join(timeout=30)
        for log in logs:
            log.close()
    learners, shared = _state(topics, key)
    requests = topics.read(topics.requests)
    ids = [r["request_id"] for r in requests if not r.get("second_opinion")]
    # no record skipped or decided twice: every one decided once, each request made once
    assert sum(learner.n_records for learner in learners.values()) == RECORDS
    assert len(ids) == len(set(ids)) == sum(lrn.n_queries for lrn in learners.values())
    # every label applied once, by the learner of its partition
    applied = sum(lrn.labels_applied for lrn in learners.values())
    assert applied == len(annotator.answered)
    for partition, learner in learners.items():
        mine = [rid for rid, p in annotator.answered.items() if p == partition]
        assert learner.labels_applied == len(mine)
    assert not [d for d in topics.read(topics.dead, timeout_ms=1000) if d["kind"] == "label"]
    # and once to the shared model: one example a label on the training topic, and a
    # model restored from the newest save plus the topic has learned each of them once
    examples = _examples(topics, key)
    assert sorted(e.request for e in examples) == sorted(annotator.answered)
    assert shared.learned == applied
    # the budget held per partition, and so overall
    assert len(ids) <= math.ceil(BUDGET * RECORDS) + PARTITIONS
    # the stall: the longest time without a request from a partition after the kill
    gaps = [
        b - a
        for times in annotator.seen_at.values()
        for a, b in zip(times, times[1:], strict=False)
        if b > killed_at
    ]
    print(
        f"records={RECORDS} requests={len(ids)} labels={applied} examples={len(examples)} "
        f"model={shared.learned}; longest stall of a partition after the kill: "
        f"{max(gaps, default=0.0):.1f} s"
    )


def test_group_benchmark_runs_every_measurement(bootstrap):
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_group.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--bootstrap", bootstrap, "--records", "20000"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert [line.split(" process")[0] for line in lines[:3]] == ["1", "2", "3"]
    assert "records/s" in lines[2] and "of one" in lines[2]
    assert lines[3].startswith("shared model(s), 3 processes:") and "examples" in lines[3]
    assert "SIGKILLed halfway" in lines[4]
