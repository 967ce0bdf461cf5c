"""streamal as a step of a Quix Streams application.

Records come in on one topic, label requests go out on another, and labels
come back on a topic with as many partitions as the records topic (a label
goes to the partition its request names). Each partition's learner lives in
Quix's state store, so a restart or a rebalance picks up where it stopped,
exactly once.

    pip install 'streamal[quix]'
    python examples/quix_app.py --broker 127.0.0.1:9092 --budget 0.05

Stop it with Ctrl-C (or SIGTERM): Quix commits what it processed, and the
next start goes on from there.
"""

from __future__ import annotations

import argparse
import logging

from quixstreams import Application
from streamal.connectors.quix import ActiveLearning

from streamal import ActiveLearner
from streamal.checkpoint import resolve_key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:9092", help="Kafka bootstrap HOST:PORT")
    parser.add_argument("--group", default="streamal-quix", help="consumer group")
    parser.add_argument("--records-topic", default="streamal-records")
    parser.add_argument("--labels-topic", default="streamal-labels")
    parser.add_argument("--requests-topic", default="streamal-label-requests")
    parser.add_argument("--dead-letters-topic", default="streamal-dead-letters")
    parser.add_argument("--budget", type=float, default=0.05, help="share of records to ask about")
    parser.add_argument("--state-dir", default="state", help="Quix's local state folder")
    parser.add_argument(
        "--key-file", default="streamal-quix.key",
        help="key that signs the saved learners (made on first use, mode 600)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        processing_guarantee="exactly-once",
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
    )
    # read as bytes: the step decodes them, and malformed JSON goes to the dead letters
    records = app.topic(args.records_topic, value_deserializer="bytes")
    labels = app.topic(args.labels_topic, value_deserializer="bytes")
    requests = app.topic(args.requests_topic, value_serializer="json")
    dead_letters = app.topic(args.dead_letters_topic, value_serializer="json")

    learning = ActiveLearning(
        lambda partition: ActiveLearner(budget=args.budget, seed=partition),
        key=resolve_key(args.key_file),
    )
    out = learning.attach(app.dataframe(records), app.dataframe(labels))
    out.requests.to_topic(requests)
    out.dead_letters.to_topic(dead_letters)
    app.run()


if __name__ == "__main__":
    main()
