"""A real Prometheus server scrapes a running daemon."""

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.conftest import free_port, need


def _query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        result = json.load(resp)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_daemon(tmp_path):
    prometheus = need("prometheus")
    metrics_port, prom_port = free_port(), free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", "--metrics-port", str(metrics_port),
         "--summary-every", "0"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: streamal\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    prom = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        records = requests = None
        while time.monotonic() < deadline:
            try:
                records = _query(prom_port, "streamal_records_total")
                requests = _query(prom_port, "streamal_label_requests_total")
            except OSError:
                pass
            if records and requests and records > 5000:
                break
            time.sleep(1)
        assert records and records > 5000, "Prometheus never saw the daemon's records"
        assert 0 < requests <= 0.1 * records + 1
        assert _query(prom_port, 'up{job="streamal"}') == 1.0
        spent = _query(prom_port, "streamal_budget_spent_ratio")
        assert 0.0 < spent <= 0.1 + 1e-3
        assert _query(prom_port, "streamal_threshold") is not None
        assert _query(prom_port, "streamal_decision_seconds_count") > 0
        assert _query(prom_port, 'streamal_accuracy_ratio{estimate="weighted"}') > 0.5
    finally:
        prom.send_signal(signal.SIGTERM)
        daemon.send_signal(signal.SIGTERM)
        prom.wait(timeout=30)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err


def test_health_and_readiness_are_their_own_routes(tmp_path):
    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", "--source", "-", "--metrics-port", str(port),
         "--no-annotator"],
        cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                    assert resp.read() == b"ok\n"
                break
            except OSError:
                time.sleep(0.2)
        # the endpoint answers before the loop is made: not ready until then
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                    status = resp.status
            except urllib.error.HTTPError as e:
                status = e.code
                assert status == 503, e
                time.sleep(0.2)
        assert status == 200  # the loop waits on stdin: at work
        with urllib.request.urlopen(base + "/metrics", timeout=2) as resp:
            assert b"streamal_records_total" in resp.read()
        try:
            urllib.request.urlopen(base + "/nope", timeout=2)
            raise AssertionError("an unknown path must be a 404")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
