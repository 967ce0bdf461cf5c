"""Three daemons in one consumer group over six partitions: a kill, a return, nothing lost."""

import json
import math
import random
import signal
import threading
import time
from collections import defaultdict

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from streamal.connectors.kafka.app import KafkaApp, KafkaSettings

from streamal import ActiveLearner
from tests.with_kafka.conftest import daemon, sea_records

PARTITIONS = 6
RECORDS = 100_000
BUDGET = 0.05


class Annotator(threading.Thread):
    """Answers every committed request, to the labels partition the request names."""

    def __init__(self, topics):
        super().__init__(daemon=True)
        self.topics = topics
        self.answered: dict[str, int] = {}
        self.seen_at: dict[int, list[float]] = defaultdict(list)  # partition -> arrival times
        self.stop = threading.Event()

    def run(self):
        consumer = KafkaConsumer(
            self.topics.requests, bootstrap_servers=self.topics.bootstrap,
            auto_offset_reset="earliest", isolation_level="read_committed", group_id=None,
            consumer_timeout_ms=500,
        )  # fmt: skip
        producer = KafkaProducer(bootstrap_servers=self.topics.bootstrap, linger_ms=5)
        while not self.stop.is_set():
            for m in consumer:
                request = json.loads(m.value)
                self.seen_at[request["partition"]].append(time.monotonic())
                if request.get("second_opinion") or request["request_id"] in self.answered:
                    continue
                f = request["features"]
                label = {"request_id": request["request_id"], "label": f["0"] + f["1"] <= 8}
                producer.send(self.topics.labels, json.dumps(label).encode(),
                              partition=request["partition"])  # fmt: skip
                self.answered[request["request_id"]] = request["partition"]
            producer.flush()
        consumer.close()
        producer.close()


def _state(topics, key):
    settings = KafkaSettings(bootstrap=topics.bootstrap, changelog_topic=topics.changelog)
    app = KafkaApp(settings, lambda p: ActiveLearner(), key)
    app._load_snapshots()
    return app.learners


def test_three_processes_share_six_partitions_through_a_kill_and_a_return(topics, tmp_path):
    admin = KafkaAdminClient(bootstrap_servers=topics.bootstrap)
    admin.create_topics([NewTopic(topics.records, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap, linger_ms=20)
    for i, record in enumerate(sea_records(RECORDS)):
        producer.send(topics.records, json.dumps(record).encode(), partition=i % PARTITIONS)
    producer.flush()
    producer.close()
    key_file = tmp_path / "group.key"
    key_file.write_bytes(b"a key every process of the group shares")

    def start(instance):
        cwd = tmp_path / f"process-{instance}"  # each in a folder of its own
        cwd.mkdir(exist_ok=True)
        return daemon(topics, "--instance", instance, "--checkpoint-key-file", key_file,
                      "--budget", BUDGET, "--summary-every", 0, cwd=cwd, wait=False)  # fmt: skip

    annotator = Annotator(topics)
    annotator.start()
    processes = {i: start(i) for i in range(3)}
    try:
        time.sleep(random.Random().uniform(4, 10))  # a random moment
        processes[1].send_signal(signal.SIGKILL)
        processes[1].wait()
        killed_at = time.monotonic()
        time.sleep(15)
        processes[1] = start(1)  # back again
        deadline = time.monotonic() + 240
        key = key_file.read_bytes().strip()
        while True:
            learners = _state(topics, key)
            decided = sum(learner.n_records for learner in learners.values())
            applied = sum(learner.labels_applied for learner in learners.values())
            if decided == RECORDS and applied >= len(annotator.answered):
                time.sleep(3)  # the last labels' transaction, then the same again
                learners = _state(topics, key)
                if sum(lrn.labels_applied for lrn in learners.values()) == applied:
                    break
            assert time.monotonic() < deadline, (decided, applied, len(annotator.answered))
            for i, proc in processes.items():
                assert proc.poll() is None, f"process {i} exited: {proc.stderr.read()[-2000:]}"
            time.sleep(2)
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in processes.values():
            proc.communicate(timeout=60)
        annotator.stop.set()
        annotator.join(timeout=30)
    learners = _state(topics, key)
    requests = topics.read(topics.requests)
    ids = [r["request_id"] for r in requests if not r.get("second_opinion")]
    # no record skipped or decided twice: every one decided once, each request made once
    assert sum(learner.n_records for learner in learners.values()) == RECORDS
    assert len(ids) == len(set(ids)) == sum(lrn.n_queries for lrn in learners.values())
    # every label applied once, by the learner of its partition
    assert sum(lrn.labels_applied for lrn in learners.values()) == len(annotator.answered)
    for partition, learner in learners.items():
        mine = [rid for rid, p in annotator.answered.items() if p == partition]
        assert learner.labels_applied == len(mine)
    assert not [d for d in topics.read(topics.dead, timeout_ms=1000) if d["kind"] == "label"]
    # the budget held per partition, and so overall
    assert len(ids) <= math.ceil(BUDGET * RECORDS) + PARTITIONS
    # the stall: the longest time without a request from a partition after the kill
    stall = max(
        max(b - a for a, b in zip(times, times[1:], strict=False) if b > killed_at - 1)
        for times in annotator.seen_at.values()
        if len(times) > 1 and times[-1] > killed_at
    )
    print(f"longest stall of a partition after the kill: {stall:.1f} s")
