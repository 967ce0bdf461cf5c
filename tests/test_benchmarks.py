"""The benchmark script still runs and measures what it says (no timing asserted)."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_learner.py"


def test_learner_benchmark_runs_every_comparison():
    # the script itself raises if the learner and the bare loop learn on other records
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--records", "3000", "--repeats", "1", "--utilities", "300"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    out = proc.stdout
    assert out.count("ratio learner/bare") == 4  # river loop twice, fast-scoring loop twice
    assert out.count("ratio minimal/bare") == 2
    assert "its pipeline" in out  # the default binned model's snapshot, side by side
    assert "speed-up" in out
