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


def test_labelling_api_benchmark_runs_every_measurement():
    bench = BENCH.parent / "bench_http.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--seconds", "1", "--repeats", "1", "--records", "5000"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    out = proc.stdout
    assert out.count("acknowledged labels/s") == 2  # one label a request, then 100
    assert "(idle) / without" in out
    assert out.count("load / without") == 2


def test_memory_benchmark_reads_the_daemons_memory_at_each_mark():
    bench = BENCH.parent / "bench_memory.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--mode", "file", "--records", "30000", "--every", "10000"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    marks = [line for line in proc.stdout.splitlines() if "MiB resident" in line]
    assert [line.split()[0] for line in marks] == ["10,000", "20,000", "30,000"]
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("file: ") and "at 30,000 records" in last and "at 10,000:" in last


def test_partition_gap_benchmark_runs_every_layout():
    bench = BENCH.parent / "partition_gap.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--seeds", "1", "--max-records", "3000"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("elec2.csv.gz, budget 0.05, 1 seeds")
    layouts = [line.split("  ")[0] for line in lines[1:]]
    assert layouts == ["1 partition", "6, round-robin", "6, by a hash of the position",
                       "6, by the day column", "6, quantile windows w 17",
                       "6, quantile windows w 50", "6, one strategy for all"]  # fmt: skip
    assert all("(random 0." in line and "labels used" in line for line in lines[1:])


def _serve(tmp_path, files):
    """A local HTTP server for the fetch (these machines have no internet)."""
    import functools
    import http.server
    import threading

    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _wheel(csv: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("skmultiflow/data/datasets/covtype.csv", csv)
    return buf.getvalue()


def test_fetch_checks_both_sha256_and_writes_the_shipped_format(tmp_path):
    import gzip
    import hashlib

    import pytest

    sys.path.insert(0, str(BENCH.parent))
    from fetch_dataset import FetchError, Origin, fetch

    csv = b"Elevation,Aspect,Cover_Type\n2596,51,5\n2590,56,5\n"
    wheel = _wheel(csv)
    expected = b"Elevation,Aspect,label\n2596,51,5\n2590,56,5\n"
    buf = __import__("io").BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(expected)
    sha = hashlib.sha256
    served = tmp_path / "served"
    served.mkdir()
    server, base = _serve(served, {"w.whl": wheel, "other.whl": _wheel(csv + b"1,2,3\n")})
    try:
        origin = Origin(
            f"{base}/w.whl",
            sha(wheel).hexdigest(),
            "skmultiflow/data/datasets/covtype.csv",
            sha(buf.getvalue()).hexdigest(),
        )
        out = tmp_path / "out"
        path = fetch("covtype", out, origin)
        assert gzip.decompress(path.read_bytes()) == expected
        assert fetch("covtype", out, origin) == path  # already there: left alone
        # a download that is not what its sha256 says writes nothing
        for bad in (origin.__class__(f"{base}/other.whl", origin.sha256, origin.member,
                                     origin.result_sha256),
                    origin.__class__(origin.url, origin.sha256, origin.member, "0" * 64),
                    origin.__class__(f"{base}/missing.whl", origin.sha256, origin.member,
                                     origin.result_sha256)):  # fmt: skip
            with pytest.raises(FetchError):
                fetch("covtype", tmp_path / "nothing", bad)
            assert not (tmp_path / "nothing").exists()
        with pytest.raises(FetchError, match="no dataset named 'nope'"):
            fetch("nope", out)
    finally:
        server.shutdown()
        sys.path.remove(str(BENCH.parent))
