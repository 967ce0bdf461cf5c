"""Resident memory of a long run: does the daemon stay flat over millions of records?

Runs ``streamal run`` as a user does and reads its resident set size
(``VmRSS`` in ``/proc/PID/status``) each time its summary line reports
another ``--every`` records:

* ``file``: the embedded default (a synthetic stream with abrupt drifts, a
  simulated annotator answering 200 records late, 5 % of its labels wrong),
  label requests and dead letters to rotating files;
* ``kafka``: the Kafka daemon on a topic the benchmark fills first (it
  starts a broker of its own unless ``--bootstrap`` names one), with a
  record in every thousand malformed, so that dead letters flow, and an
  annotator answering every request through the labels topic, so that
  labels, the training topic and the shared model work as in production;
  ``--no-annotator`` leaves every request unanswered, so that the pending
  table fills to its bound (``--max-pending``) and expires requests. The
  daemon runs on each Kafka client of ``--client`` in turn (default both),
  on the same records.

It prints the memory at each mark and the ratio of the last mark to the
first (the target is at most 1.05 from 1 M to 5 M). No figure is asserted.

Run: python benchmarks/bench_memory.py [--mode file|kafka|both] [--records 5000000]
     [--client kafka-python|confluent|both]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SUMMARY = re.compile(r"^records=(\d+) ")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def beyond(records: int, every: int) -> int:
    """Records a run goes on past the last mark, so that every mark is read while
    the daemon is at work (the last one, too, before it shuts down)."""
    return records + max(1, every // 10)


def watch(args: list[str], every: int, records: int, cwd: str) -> list[tuple[int, float]]:
    """(records, MiB) at each summary line that passes another ``every`` records,
    up to ``records``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", *args, "--summary-every", str(every),
         "--max-records", str(beyond(records, every)), "--metrics-port", "0"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    marks: list[tuple[int, float]] = []
    started = time.monotonic()
    try:
        for line in proc.stderr:
            m = SUMMARY.match(line)
            if not m:
                continue
            n = int(m.group(1))
            if n // every > len(marks):
                marks.append((n, rss_mib(proc.pid)))
                rate = n / (time.monotonic() - started)
                print(f"  {n:>10,} records: {marks[-1][1]:7.1f} MiB resident "
                      f"({rate:,.0f} records/s)", flush=True)  # fmt: skip
            if n >= records:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    if not marks:
        raise RuntimeError(f"the run printed no summary line (exit {proc.returncode})")
    return marks


def fill(bootstrap: str, topic: str, n: int) -> None:
    """``n`` records of 3 features (100,003 distinct ones over and over), one in a
    thousand malformed."""
    import orjson
    from kafka import KafkaProducer
    from river.datasets import synth

    values = [orjson.dumps({"features": {str(k): v for k, v in x.items()}})
              for x, _ in synth.SEA(seed=5).take(100_003)]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 18)
    for i in range(n):
        producer.send(topic, b"{not json" if i % 1000 == 999 else values[i % len(values)])
        if i % 1_000_000 == 999_999:
            print(f"  {i + 1:,} records produced", flush=True)
    producer.flush()
    producer.close()


def report(mode: str, marks: list[tuple[int, float]]) -> None:
    (n0, first), (n1, last) = marks[0], marks[-1]
    print(f"{mode}: {last:.1f} MiB at {n1:,} records / {first:.1f} MiB at {n0:,}: "
          f"{last / first:.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode", choices=["file", "kafka", "both"], default="both",
        help="file: the embedded default stream; kafka: the Kafka daemon (default both)",
    )  # fmt: skip
    parser.add_argument(
        "--records", type=int, default=5_000_000, help="records in the run (default 5,000,000)"
    )
    parser.add_argument("--every", type=int, default=1_000_000, help="records between marks")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--client", choices=["kafka-python", "confluent", "both"],
                        default="both", help="kafka mode: the daemon's Kafka client")  # fmt: skip
    parser.add_argument(
        "--annotator", action=argparse.BooleanOptionalAction, default=True,
        help="kafka mode: answer every request (default); without, the pending table fills",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("file", "both"):
            print(f"file mode, {args.records:,} records:", flush=True)
            report("file", watch([], args.every, args.records, tmp))
        if args.mode in ("kafka", "both"):
            broker, bootstrap = None, args.bootstrap
            if bootstrap is None:
                from streamal.connectors.kafka.broker import Broker

                broker = Broker().start()
                bootstrap = broker.bootstrap
            try:
                records = f"records-{uuid.uuid4().hex[:8]}"
                print(f"kafka mode, {args.records:,} records (filling the topic first):",
                      flush=True)  # fmt: skip
                fill(bootstrap, records, beyond(args.records, args.every))
                clients = ["kafka-python", "confluent"] if args.client == "both" else [args.client]
                for client in clients:
                    tag = uuid.uuid4().hex[:8]
                    topics = [
                        "--source", "kafka", "--bootstrap", bootstrap, "--kafka-client", client,
                        "--records-topic", records, "--group", f"group-{tag}",
                        "--requests-topic", f"requests-{tag}", "--labels-topic", f"labels-{tag}",
                        "--dead-letters-topic", f"dead-{tag}", "--changelog-topic",
                        f"state-{tag}", "--training-topic", f"training-{tag}",
                    ]  # fmt: skip
                    cwd = Path(tmp) / f"kafka-{client}"
                    os.makedirs(cwd, exist_ok=True)
                    annotator = None
                    if args.annotator:
                        sys.path.insert(0, str(Path(__file__).parent))
                        from bench_group import Annotator

                        annotator = Annotator(bootstrap, tag)
                        annotator.start()
                    try:
                        marks = watch(topics, args.every, args.records, str(cwd))
                    finally:
                        if annotator is not None:
                            annotator.stop.set()
                            annotator.join(timeout=30)
                    label = f"kafka ({client})" + ("" if args.annotator else ", no annotator")
                    report(label, marks)
            finally:
                if broker is not None:
                    broker.close()


if __name__ == "__main__":
    main()
