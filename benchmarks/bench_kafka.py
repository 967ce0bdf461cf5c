"""Throughput of the Kafka daemon against the minimal loop doing the same essential work.

On one topic of 200,000 records (about 180 bytes, 10 float features each),
measured side by side in one run (best of ``--repeats``):

* the minimal loop: kafka-python ``poll(max_records=500)``, decode each value
  with orjson (what the daemon uses), ``predict_proba_one`` of
  ``StandardScaler | LogisticRegression``, ``send`` 10 % of the records to a
  requests topic, commit after each poll;
* the daemon (``KafkaApp``, the code ``streamal run --source kafka`` runs),
  at least once and with transactions, variable uncertainty at 10 %.

Both models are trained on the same 500 labelled records first, so both pay
for a real model call. Targets: ratio >= 0.8 at least once, >= 0.6 exactly once.

Run: python benchmarks/bench_kafka.py [--records 200000] [--bootstrap HOST:PORT]
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

TRAIN = [({f"x{k}": v for k, v in x.items()}, y) for x, y in synth.Hyperplane(seed=7).take(500)]


def trained_model():
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in TRAIN:
        model.learn_one(x, y)
    return model


def produce(bootstrap: str, topic: str, n: int) -> float:
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=256 * 1024)
    size = 0
    for x, _ in synth.Hyperplane(seed=42, n_features=10).take(n):
        value = orjson.dumps({"features": {f"x{k}": round(v, 6) for k, v in x.items()}})
        size += len(value)
        p.send(topic, value)
    p.flush()
    p.close()
    return size / n


def minimal_loop(bootstrap: str, topic: str, n: int) -> float:
    model = trained_model()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"minimal-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    requests = f"{topic}-minimal-requests"
    seen = 0
    t0 = time.perf_counter()
    while seen < n:
        for msgs in consumer.poll(timeout_ms=500, max_records=500).values():
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


def daemon(bootstrap: str, topic: str, n: int, transactions: bool) -> float:
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
        instance=tag, transactions=transactions,
    )  # fmt: skip
    app = KafkaApp(settings, make_learner, key=os.urandom(32), max_records=n)
    t0 = time.perf_counter()
    stats = app.run()
    elapsed = time.perf_counter() - t0
    assert stats.records == n, stats
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bootstrap", default=os.environ.get("STREAMAL_KAFKA_BOOTSTRAP"))
    args = parser.parse_args()

    broker = None
    if not args.bootstrap:
        from streamal.connectors.kafka.broker import Broker

        broker = Broker(heap="1g").start()
        args.bootstrap = broker.bootstrap
    try:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        size = produce(args.bootstrap, topic, args.records)
        print(f"{args.records:,} records of {size:.0f} bytes on {topic} at {args.bootstrap}")
        runs: dict[str, list[float]] = {"minimal": [], "at_least_once": [], "exactly_once": []}
        for _ in range(args.repeats):
            runs["minimal"].append(minimal_loop(args.bootstrap, topic, args.records))
            runs["at_least_once"].append(daemon(args.bootstrap, topic, args.records, False))
            runs["exactly_once"].append(daemon(args.bootstrap, topic, args.records, True))
        best = {k: max(v) for k, v in runs.items()}
        print(f"  minimal loop             {best['minimal']:>10,.0f} records/s")
        print(f"  daemon, at least once    {best['at_least_once']:>10,.0f} records/s   "
              f"ratio {best['at_least_once'] / best['minimal']:.3f} (target >= 0.8)")  # fmt: skip
        print(f"  daemon, transactions     {best['exactly_once']:>10,.0f} records/s   "
              f"ratio {best['exactly_once'] / best['minimal']:.3f} (target >= 0.6)")  # fmt: skip
    finally:
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    main()
