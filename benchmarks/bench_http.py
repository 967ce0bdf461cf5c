"""The labelling API under load, and what it costs the decision loop (no timing asserted).

Prints, from one run on this machine:

1. acknowledged labels a second and p50 / p99 latency with 8 concurrent
   clients posting one label a request, then batches of 100, every label
   journalled durably (fsync) and learned before its reply;
2. the decision loop's records a second with ``--http`` (the intake idle)
   divided by the same run without it, alternating the two, median of
   ``--repeats``; and its records a second under each load above, divided
   by the median without ``--http``.

Run: python benchmarks/bench_http.py [--seconds 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Client:
    """A kept-alive connection sending pre-built requests, as little work as a client can
    do in Python (the server shares the two cores with it)."""

    def __init__(self, port: int, token: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.head = (f"POST /labels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                     "Content-Length: ").encode()  # fmt: skip
        self.buffer = b""

    def post(self, body: bytes) -> None:
        self.sock.sendall(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"POST /labels: {head.splitlines()[0].decode()}")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk


def intake(seconds: float, batch: int) -> tuple[float, float, float, float]:
    """(acknowledged labels/s, p50 ms, p99 ms, the loop's records/s meanwhile) with 8
    clients."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamal", "run", "--metrics-port", "0", "--http",
             "--http-listen", f"127.0.0.1:{port}", "--http-rate", "0", "--summary-every", "0",
             "--no-annotator", "--max-records", "5000000"],
            cwd=tmp, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        token_file = Path(tmp) / "streamal-out/http.token"
        deadline = time.monotonic() + 30
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        token = token_file.read_text().strip()
        req = urllib.request.Request(base + "/requests?limit=1000")
        req.add_header("Authorization", f"Bearer {token}")
        ids = [r["request_id"] for r in json.load(urllib.request.urlopen(req))["requests"]]
        latencies: list[float] = []
        acked = [0]
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def client(k: int) -> None:
            i = k
            conn = _Client(port, token)
            while time.monotonic() < stop:
                labels = [{"request_id": ids[(i + j) % len(ids)], "label": True}
                          for j in range(batch)]  # fmt: skip
                body = json.dumps(labels[0] if batch == 1 else labels).encode()
                t0 = time.perf_counter()
                conn.post(body)
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    acked[0] += batch
                i += 8

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        records_before = _records(base, token)
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        loop = (_records(base, token) - records_before) / elapsed
        proc.terminate()
        proc.wait(timeout=30)
    q = statistics.quantiles(latencies, n=100)
    return acked[0] / elapsed, q[49] * 1000, q[98] * 1000, loop


def _records(base: str, token: str) -> int:
    req = urllib.request.Request(base + "/stats")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as reply:
        return json.load(reply)["records"]


def loop_rate(http: bool, records: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "streamal", "run", "--metrics-port", "0", "--no-annotator",
                "--max-records", str(records), "--summary-every", str(records)]  # fmt: skip
        if http:
            args += ["--http", "--http-listen", f"127.0.0.1:{_port()}"]
        err = subprocess.run(args, cwd=tmp, capture_output=True, text=True, check=True).stderr
    return float(re.findall(r"rate=([\d,]+)/s", err)[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--records", type=int, default=300_000)
    args = parser.parse_args()
    loaded = {}
    for batch in (1, 100):
        rate, p50, p99, loaded[batch] = intake(args.seconds, batch)
        print(f"8 clients, {batch:>3} label(s) a request: {rate:9,.0f} acknowledged labels/s, "
              f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms")  # fmt: skip
    ratios, alone = [], []
    for _ in range(args.repeats):
        alone.append(loop_rate(False, args.records))
        ratios.append(loop_rate(True, args.records) / alone[-1])
    print(
        f"decision loop with --http (idle) / without: {statistics.median(ratios):.3f} "
        f"(median of {args.repeats}, range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    without = statistics.median(alone)
    for batch, rate in loaded.items():
        print(f"decision loop under the {batch}-label load / without: {rate / without:.3f} "
              f"({rate:,.0f} against {without:,.0f} records/s)")  # fmt: skip


if __name__ == "__main__":
    main()
