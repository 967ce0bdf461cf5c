"""The Kafka benchmarks run end to end against the test broker (small, no figure asserted)."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(*args) -> str:
    out = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_kafka_benchmark_compares_both_clients_and_their_minimal_loops(bootstrap):
    out = _run(BENCHMARKS / "bench_kafka.py", "--bootstrap", bootstrap, "--records", 6000,
               "--repeats", 1)  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("6,000 records of ")
    runs = [line.split()[2:4] for line in lines if line.startswith("  run 1:")]
    assert runs == [[client, what] for client in ("kafka-python", "confluent")
                    for what in ("minimal", "at", "transactions")]  # fmt: skip
    assert sum("ratio" in line and "target >= 0.8" in line for line in lines) == 2
    assert sum("ratio" in line and "target >= 0.6" in line for line in lines) == 2
    assert sum("confluent / kafka-python" in line for line in lines) == 2
    assert "start-up to its first record" in out


def test_memory_benchmark_soaks_the_daemon_on_each_client(bootstrap):
    out = _run(BENCHMARKS / "bench_memory.py", "--mode", "kafka", "--bootstrap", bootstrap,
               "--records", 20000, "--every", 10000)  # fmt: skip
    summaries = [line for line in out.splitlines() if line.startswith("kafka (")]
    assert [line.split(")")[0] for line in summaries] == ["kafka (kafka-python",
                                                          "kafka (confluent"]  # fmt: skip
    # a mark is the first summary line past each 10,000 records (a poll brings up to 500)
    marks = re.compile(r"MiB at 20,\d{3} records / [\d.]+ MiB at 10,\d{3}: [\d.]+$")
    assert all(marks.search(line) for line in summaries), summaries
