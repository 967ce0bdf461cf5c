"""A real Apache Kafka broker for the tests, started once per session.

Set STREAMAL_KAFKA_BOOTSTRAP=HOST:PORT to use an existing broker instead
(the outage test then needs the fixture's own broker and is skipped).

Every test of the daemon runs once with each Kafka client it can run on
(``kafka_client``); STREAMAL_KAFKA_CLIENTS=confluent runs one of them only.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, KafkaProducer
from streamal.connectors.kafka.broker import Broker
from streamal.connectors.kafka.clients import CLIENTS


@pytest.fixture(scope="session")
def broker():
    external = os.environ.get("STREAMAL_KAFKA_BOOTSTRAP")
    if external:
        yield external, None
        return
    # no skip: if the broker cannot start, the Kafka tests fail loudly
    b = Broker()
    b.start()
    try:
        yield b.bootstrap, b
    finally:
        b.close()


@pytest.fixture
def bootstrap(broker):
    return broker[0]


@pytest.fixture(params=os.environ.get("STREAMAL_KAFKA_CLIENTS", ",".join(CLIENTS)).split(","))
def kafka_client(request):
    """The Kafka client the daemon under test runs on (``--kafka-client``)."""
    return request.param


class Topics:
    """Fresh topic names and group for one test."""

    def __init__(self, bootstrap: str, client: str = "kafka-python"):
        tag = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.client = client
        self.records = f"records-{tag}"
        self.requests = f"requests-{tag}"
        self.labels = f"labels-{tag}"
        self.dead = f"dead-{tag}"
        self.changelog = f"state-{tag}"
        self.training = f"training-{tag}"
        self.group = f"group-{tag}"

    def args(self) -> list[str]:
        return [
            "--source", "kafka", "--bootstrap", self.bootstrap,
            "--records-topic", self.records, "--requests-topic", self.requests,
            "--labels-topic", self.labels, "--dead-letters-topic", self.dead,
            "--changelog-topic", self.changelog, "--training-topic", self.training,
            "--group", self.group, "--kafka-client", self.client,
            "--metrics-port", "0",
        ]  # fmt: skip

    def produce(self, topic: str, values, keys=None) -> None:
        p = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=20)
        for i, v in enumerate(values):
            key = None if keys is None else keys[i]
            p.send(topic, v if isinstance(v, bytes) else json.dumps(v).encode(), key=key)
        p.flush()
        p.close()

    def read(self, topic: str, committed: bool = True, timeout_ms: int = 4000) -> list:
        c = KafkaConsumer(
            topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
            isolation_level="read_committed" if committed else "read_uncommitted",
            consumer_timeout_ms=timeout_ms, group_id=None,
        )  # fmt: skip
        out = [json.loads(m.value) for m in c]
        c.close()
        return out


@pytest.fixture
def topics(bootstrap, kafka_client):
    return Topics(bootstrap, kafka_client)


def daemon(topics: Topics, *extra, cwd, wait=True, timeout=300):
    """`streamal run` against the topics, as a user starts it."""
    args = [sys.executable, "-m", "streamal", "run", *topics.args(), *map(str, extra)]
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    if not wait:
        return proc
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:  # never leave a daemon behind a failed test
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise AssertionError(f"daemon exit {proc.returncode}\n{err[-4000:]}")
    return err


def kill_later(proc, delay):
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    proc.wait()
    return False


def sea_records(n, seed=1):
    from river.datasets import synth

    return [
        {"features": {str(k): v for k, v in x.items()}} for x, _ in synth.SEA(seed=seed).take(n)
    ]


class Annotator(threading.Thread):
    """Answers each committed request once (SEA's concept: x0 + x1 <= 8), to the
    labels partition the request names; ``answered`` maps request id -> partition,
    ``seen_at`` each partition's request arrival times."""

    def __init__(self, topics: Topics, answered: dict | None = None):
        super().__init__(daemon=True)
        self.topics = topics
        self.answered: dict[str, int] = {} if answered is None else answered
        self.seen_at: dict[int, list[float]] = defaultdict(list)
        self.stop = threading.Event()

    def run(self):
        consumer = KafkaConsumer(
            self.topics.requests, bootstrap_servers=self.topics.bootstrap,
            auto_offset_reset="earliest", isolation_level="read_committed", group_id=None,
            consumer_timeout_ms=300,
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
