"""Daemons in one consumer group: records/s of 1, 2 and 3 processes, and a rebalance's stall.

Starts a broker of its own (Apache Kafka's jars, as the tests do) unless
``--bootstrap`` names one. For each count of processes, a fresh topic of
``--partitions`` partitions gets ``--records`` records, the daemons start
together, and the group's committed offsets are watched until they reach the
end: records/s is counted from the first commit to the last, so start-up is
left out. An annotator answers every request meanwhile, so that the shared
model's traffic is there: each applied label becomes one example on the
training topic, which every process reads; its size is reported beside the
records topic's. Then, with 3 processes, one is SIGKILLed halfway and the
time until each of its partitions commits again is the stall. No timing is
asserted.

Run: python benchmarks/bench_group.py [--records 200000] [--partitions 6]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def _produce(bootstrap: str, topic: str, n: int, partitions: int) -> None:
    from river.datasets import synth

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 18)
    for i, (x, _) in enumerate(synth.SEA(seed=1).take(n)):
        value = json.dumps({"features": {str(k): v for k, v in x.items()}}).encode()
        producer.send(topic, value, partition=i % partitions)
    producer.flush()
    producer.close()


class Annotator(threading.Thread):
    """Answers every committed request, to the labels partition it names."""

    def __init__(self, bootstrap: str, tag: str):
        super().__init__(daemon=True)
        self.bootstrap, self.tag = bootstrap, tag
        self.stop = threading.Event()
        self.answered = 0

    def run(self) -> None:
        consumer = KafkaConsumer(
            f"requests-{self.tag}", bootstrap_servers=self.bootstrap, group_id=None,
            auto_offset_reset="earliest", isolation_level="read_committed",
            consumer_timeout_ms=300,
        )  # fmt: skip
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        while not self.stop.is_set():
            for m in consumer:
                request = json.loads(m.value)
                if request.get("second_opinion"):
                    continue
                f = request["features"]
                label = {"request_id": request["request_id"], "label": f["0"] + f["1"] <= 8}
                producer.send(f"labels-{self.tag}", json.dumps(label).encode(),
                              partition=request["partition"])  # fmt: skip
                self.answered += 1
        producer.close()
        consumer.close()


def _size(bootstrap: str, topic: str, lists: bool = False) -> tuple[int, int]:
    """Committed messages on ``topic`` (with ``lists``, the items of the JSON list each
    holds) and their bytes (keys, values and headers)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed", consumer_timeout_ms=2000,
    )  # fmt: skip
    n = size = 0
    for m in consumer:
        n += len(json.loads(m.value)) if lists else 1
        size += len(m.value or b"") + len(m.key or b"")
        size += sum(len(k) + len(v) for k, v in m.headers or ())
    consumer.close()
    return n, size


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)  # fmt: skip
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)}
    finally:
        consumer.close()


def _start(
    bootstrap: str, tag: str, instance: int, cwd: Path, key: Path, models: str
) -> subprocess.Popen:
    args = [sys.executable, "-m", "streamal", "run", "--source", "kafka", "--bootstrap", bootstrap,
            "--records-topic", f"records-{tag}", "--requests-topic", f"requests-{tag}",
            "--labels-topic", f"labels-{tag}", "--dead-letters-topic", f"dead-{tag}",
            "--changelog-topic", f"state-{tag}", "--training-topic", f"training-{tag}",
            "--group", f"group-{tag}",
            "--instance", str(instance), "--checkpoint-key-file", str(key),
            "--metrics-port", "0", "--summary-every", "0",
            "--partition-models", models]  # fmt: skip
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(
    bootstrap: str, processes: int, records: int, partitions: int, kill: bool = False,
    models: str = "shared",
) -> dict:  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    topic, group = f"records-{tag}", f"group-{tag}"
    _produce(bootstrap, topic, records, partitions)
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "group.key"
        key.write_bytes(os.urandom(32).hex().encode())
        annotator = Annotator(bootstrap, tag)
        annotator.start()
        procs = {i: _start(bootstrap, tag, i, Path(tmp), key, models) for i in range(processes)}
        first = last = None
        killed_at, stalled, victim = None, {}, None
        before: dict[int, int] = {}
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = _committed(bootstrap, group, topic, partitions)
                now = time.monotonic()
                total = sum(done.values())
                if first is None and total:
                    first = (now, total)
                if kill and killed_at is None and total >= records // 2:
                    victim = max(procs)
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait()
                    killed_at, before = now, done
                if killed_at is not None:
                    for p, offset in done.items():
                        if p not in stalled and offset > before[p]:
                            stalled[p] = now - killed_at
                if total >= records:
                    last = (now, total)
                    break
                time.sleep(0.2)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                proc.wait(timeout=60)
            annotator.stop.set()
            annotator.join(timeout=30)
    if first is None or last is None:
        raise RuntimeError(f"{processes} process(es) did not finish {records} records")
    rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-9)
    return {"processes": processes, "rate": rate,
            "stall": max(stalled.values()) if stalled else None,
            "training": _size(bootstrap, f"training-{tag}", lists=True),
            "records": _size(bootstrap, topic),
            "labels": _size(bootstrap, f"labels-{tag}")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--partition-models", choices=["shared", "own"], default="shared",
        help="the daemons' --partition-models (own: no training topic)",
    )  # fmt: skip
    args = parser.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from streamal.connectors.kafka.broker import Broker

        broker = Broker().start()
        bootstrap = broker.bootstrap
    try:
        rates = {}
        for n in (1, 2, 3):
            result = run(bootstrap, n, args.records, args.partitions,
                         models=args.partition_models)  # fmt: skip
            rates[n] = result["rate"]
            print(f"{n} process(es), {args.partitions} partitions: {rates[n]:9,.0f} records/s "
                  f"({rates[n] / rates[1]:.2f} of one)", flush=True)  # fmt: skip
        (examples, size), (_, records), (labels, label_bytes) = (
            result["training"], result["records"], result["labels"])  # fmt: skip
        print(f"{args.partition_models} model(s), 3 processes: {labels:,} labels "
              f"({label_bytes:,} bytes) became {examples:,} examples, "
              f"{size:,} bytes ({size / max(examples, 1):.0f} a label) written once and read by "
              f"each process: {3 * size:,} bytes read, {3 * size / records:.1%} of the records "
              f"topic's {records:,} bytes", flush=True)  # fmt: skip
        result = run(bootstrap, 3, args.records, args.partitions, kill=True,
                     models=args.partition_models)  # fmt: skip
        if result["stall"] is None:  # a small run: nothing was left to commit after the kill
            print("3 processes, one SIGKILLed halfway: no partition committed again after "
                  "the kill (too few records for a stall)", flush=True)  # fmt: skip
        else:
            print(f"3 processes, one SIGKILLed halfway: the partitions committed again after "
                  f"{result['stall']:.1f} s at most", flush=True)  # fmt: skip
    finally:
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    main()
