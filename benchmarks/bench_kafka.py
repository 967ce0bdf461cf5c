"""Throughput of the Kafka daemon on each Kafka client, and against minimal loops.

On one topic of 500,000 records (about 150 bytes: an id and 8 float features),
measured side by side in one run (best of ``--repeats``), for each client
(kafka-python and confluent-kafka):

* the minimal loop: poll 500, decode each value with orjson (what the daemon
  uses), ``predict_proba_one`` of ``StandardScaler | LogisticRegression``,
  produce 10 % of the records to a requests topic, commit after each poll;
* the daemon (``KafkaApp``, the code ``streamal run --source kafka`` runs),
  at least once and with transactions, variable uncertainty at 10 %.

Both models are trained on the same 500 labelled records first, so both pay
for a real model call. Printed: records/s of each, the daemon's ratio to
the minimal loop on its client (targets 0.8 at least once, 0.6 with
transactions) and the confluent daemon's ratio to the kafka-python daemon
(target 2.5). Records a second count from the first record each one reads
to the last, so that joining the group (and, for the daemon, reading its
state) is not in them; the daemon's start-up time is printed beside.

Run: python benchmarks/bench_kafka.py [--records 500000] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import orjson
from kafka import KafkaConsumer, KafkaProducer
from river import linear_model, preprocessing
from river.datasets import synth
from streamal.connectors.kafka.app import KafkaApp, KafkaSettings

from streamal import ActiveLearner, VariableUncertainty

CLIENTS = ("kafka-python", "confluent")
FEATURES = 8
TRAIN = [
    ({f"x{k}": v for k, v in x.items()}, y)
    for x, y in synth.Hyperplane(seed=7, n_features=FEATURES).take(500)
]


def trained_model():
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in TRAIN:
        model.learn_one(x, y)
    return model


def produce(bootstrap: str, topic: str, n: int) -> float:
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=256 * 1024)
    size = 0
    for i, (x, _) in enumerate(synth.Hyperplane(seed=42, n_features=FEATURES).take(n)):
        features = {f"x{k}": round(v, 6) for k, v in x.items()}
        value = orjson.dumps({"id": f"e{i:07d}", "features": features})
        size += len(value)
        p.send(topic, value)
    p.flush()
    p.close()
    return size / n


def minimal_loop(bootstrap: str, topic: str, n: int, client: str) -> float:
    loop = _minimal_confluent if client == "confluent" else _minimal_kafka_python
    return loop(bootstrap, topic, n)


def _minimal_kafka_python(bootstrap: str, topic: str, n: int) -> float:
    model = trained_model()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"minimal-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    requests = f"{topic}-minimal-requests"
    seen = 0
    t0 = None
    while seen < n:
        batch = consumer.poll(timeout_ms=500, max_records=500)
        if batch and t0 is None:
            t0 = time.perf_counter()
        for msgs in batch.values():
            for m in msgs:
                record = orjson.loads(m.value)
                model.predict_proba_one(record["features"])
                if seen % 10 == 0:
                    producer.send(requests, m.value)
                seen += 1
        consumer.commit()
    producer.flush()
    elapsed = time.perf_counter() - t0
    consumer.close()
    producer.close()
    return n / elapsed


def _minimal_confluent(bootstrap: str, topic: str, n: int) -> float:
    from confluent_kafka import Consumer, Producer
    from streamal.connectors.kafka.clients.confluent import PARTITION_FETCH_BYTES

    model = trained_model()
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"minimal-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,  # as the daemon fetches
    })  # fmt: skip
    consumer.subscribe([topic])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    requests = f"{topic}-minimal-requests"
    seen = 0
    t0 = None
    while seen < n:
        msgs = consumer.consume(500, 0.5)
        if msgs and t0 is None:
            t0 = time.perf_counter()
        for m in msgs:
            value = m.value()
            record = orjson.loads(value)
            model.predict_proba_one(record["features"])
            if seen % 10 == 0:
                producer.produce(requests, value)
            seen += 1
        if msgs:
            producer.poll(0)
            consumer.commit(asynchronous=False)
    producer.flush()
    elapsed = time.perf_counter() - t0
    consumer.close()
    return n / elapsed


def daemon(bootstrap: str, topic: str, n: int, transactions: bool, client: str) -> float:
    """Records a second from the first record decided; the start-up goes to STARTUP."""
    tag = uuid.uuid4().hex[:6]

    def make_learner(partition: int) -> ActiveLearner:
        learner = ActiveLearner(model=trained_model(), strategy=VariableUncertainty(budget=0.1))
        for x, y in TRAIN[:20]:  # leave cold start: the label set is known
            learner.learn(x, y)
        return learner

    settings = KafkaSettings(
        bootstrap=bootstrap, records_topic=topic, group=f"daemon-{tag}",
        requests_topic=f"{topic}-requests-{tag}", labels_topic=f"{topic}-labels-{tag}",
        dead_letters_topic=f"{topic}-dead-{tag}", changelog_topic=f"{topic}-state-{tag}",
        training_topic=f"{topic}-training-{tag}", instance=tag, transactions=transactions,
        client=client,
    )  # fmt: skip
    app = KafkaApp(settings, make_learner, key=os.urandom(32), max_records=n)
    first: list[float] = []
    decide = app._on_records

    def on_records(partition: int, msgs: list) -> None:
        if not first:
            first.append(time.perf_counter())
        decide(partition, msgs)

    app._on_records = on_records
    started = time.perf_counter()
    stats = app.run()
    elapsed = time.perf_counter() - first[0]
    assert stats.records == n, stats
    STARTUP.setdefault(client, []).append(first[0] - started)
    return n / elapsed


#: seconds from the daemon's start to its first record, by client
STARTUP: dict[str, list[float]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=int,
        default=500_000,
        help="records on the topic, read by every run (default 500,000)",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each loop; the best is reported (default 2)"
    )
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="comma-separated: kafka-python,confluent (default both)",
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("STREAMAL_KAFKA_BOOTSTRAP"),
        help="a broker (default: $STREAMAL_KAFKA_BOOTSTRAP, else start one)",
    )
    args = parser.parse_args()
    clients = args.clients.split(",")

    broker = None
    if not args.bootstrap:
        from streamal.connectors.kafka.broker import Broker

        broker = Broker(heap="1g").start()
        args.bootstrap = broker.bootstrap
    try:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        size = produce(args.bootstrap, topic, args.records)
        print(f"{args.records:,} records of {size:.0f} bytes on {topic} at {args.bootstrap}",
              flush=True)  # fmt: skip
        runs: dict[tuple[str, str], list[float]] = {}
        for repeat in range(args.repeats):
            for client in clients:  # alternating: the machine's noise falls on both
                for what, run in (
                    ("minimal", lambda c=client: minimal_loop(args.bootstrap, topic,
                                                              args.records, c)),
                    ("at least once", lambda c=client: daemon(args.bootstrap, topic,
                                                              args.records, False, c)),
                    ("transactions", lambda c=client: daemon(args.bootstrap, topic,
                                                             args.records, True, c)),
                ):  # fmt: skip
                    rate = run()
                    runs.setdefault((client, what), []).append(rate)
                    print(f"  run {repeat + 1}: {client:<12} {what:<14} {rate:>10,.0f} records/s",
                          flush=True)  # fmt: skip
        best = {k: max(v) for k, v in runs.items()}
        print("best of", args.repeats)
        for client in clients:
            minimal = best[(client, "minimal")]
            startup = sorted(STARTUP[client])[len(STARTUP[client]) // 2]
            print(f"  {client:<12} minimal loop             {minimal:>10,.0f} records/s   "
                  f"(daemon start-up to its first record: median {startup:.1f} s)")  # fmt: skip
            for what, target in (("at least once", 0.8), ("transactions", 0.6)):
                rate = best[(client, what)]
                print(f"  {client:<12} daemon, {what:<16} {rate:>10,.0f} records/s   "
                      f"ratio {rate / minimal:.3f} (target >= {target})")  # fmt: skip
        if set(CLIENTS) <= set(clients):
            for what in ("at least once", "transactions"):
                ratio = best[("confluent", what)] / best[("kafka-python", what)]
                print(f"  daemon {what}: confluent / kafka-python = {ratio:.2f} "
                      "(target >= 2.5)")  # fmt: skip
    finally:
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    main()
