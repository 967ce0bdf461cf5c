"""The labelling API against the running daemon: requests out, labels in, durably, once."""

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import free_port


def _call(base, path, token=None, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null") if "json" in (
                resp.headers.get("content-type") or "") else resp.read()  # fmt: skip
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Daemon:
    """`streamal run --source - --http` fed records through stdin, as a user runs it."""

    def __init__(self, tmp_path, *extra, metrics_port=0):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamal", "run", "--source", "-", "--no-annotator",
             "--metrics-port", str(metrics_port), "--http",
             "--http-listen", f"127.0.0.1:{self.port}",
             "--checkpoint", "s.ckpt", "--checkpoint-every", "200", "--budget", "0.2",
             "--summary-every", "0", *extra],
            cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _call(self.base, "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self.token = (tmp_path / "streamal-out/http.token").read_text().strip()

    def post(self, labels):
        return _call(self.base, "/labels", self.token, labels)

    def feed(self, records):
        for r in records:
            self.proc.stdin.write(json.dumps(r) + "\n")
        self.proc.stdin.flush()

    def open_requests(self, at_least=1):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = _call(self.base, "/requests?limit=1000", self.token)
            assert status == 200
            if len(body["requests"]) >= at_least:
                return body["requests"]
            time.sleep(0.1)
        raise AssertionError("no open requests came")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        err = self.proc.stderr.read()
        self.proc.stdin.close()
        self.proc.stderr.close()
        return err


def _records(n, start=0):
    return [{"id": f"e{i}", "x": float(i % 10), "y": float(i % 3)} for i in range(start, n)]


def test_people_answer_requests_over_http(tmp_path):
    metrics_port = free_port()
    d = Daemon(tmp_path, metrics_port=metrics_port)
    try:
        d.feed(_records(300))
        first, second = d.open_requests(2)[:2]
        assert set(first) >= {
            "request_id",
            "features",
            "prediction",
            "query_probability",
            "probabilities",
            "utility",
            "reason",
        }
        assert first["reason"] in ("strategy", "cold_start")
        assert _call(d.base, "/requests")[0] == 401  # no token
        assert _call(d.base, "/requests", "wrong")[0] == 401
        status, body = _call(d.base, "/labels", d.token, [
            {"request_id": first["request_id"], "label": "hi", "annotator": "ann"},
            {"request_id": first["request_id"], "label": "hi"},
            {"request_id": "q-nope", "label": "hi"},
            {"request_id": second["request_id"], "label": None},
            {"label": "hi"},
        ])  # fmt: skip
        assert status == 200
        assert [r["outcome"] for r in body["results"]] == [
            "applied",
            "duplicate",
            "unknown",
            "invalid_label",
            "invalid_label",
        ]
        assert body["results"][3]["reason"] == f"label for {second['request_id']!r} is null"
        status, body = _call(d.base, "/labels", d.token, raw=b"{not json")
        assert status == 400 and body["error"].startswith("malformed JSON")
        status, _ = _call(d.base, "/labels", d.token, raw=b"[" + b'"x",' * 400_000 + b'"x"]')
        assert status == 413
        assert _call(d.base, "/openapi.json", d.token)[1]["paths"]["/labels"]
        assert _call(d.base, "/readyz")[0] == 200
        mode = (tmp_path / "streamal-out/http.token").stat().st_mode & 0o777
        assert mode == 0o600
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            scraped = resp.read().decode()
        assert 'streamal_intake_labels_total{intake="http"} 3.0' in scraped  # the 3 decoded
        assert 'streamal_http_requests_total{route="/labels",status="200"} 1.0' in scraped
        assert 'streamal_http_requests_total{route="/requests",status="401"} 2.0' in scraped
        assert "streamal_label_latency_seconds_count 1.0" in scraped
    finally:
        err = d.stop()
    assert d.proc.returncode == 0, err


def test_a_client_over_the_rate_gets_429(tmp_path):
    d = Daemon(tmp_path, "--http-rate", "5")
    try:
        statuses = [_call(d.base, "/requests", d.token)[0] for _ in range(30)]
        assert 429 in statuses and statuses[0] == 200
    finally:
        d.stop()


def post_through_sigkills(start, fresh, label, outcome, pause):
    """8 clients post ``label`` for each request ``fresh(daemon)`` lists while the daemon
    is SIGKILLed and restarted 5 times (``start(round)`` starts it); returns the last
    daemon, the request ids acknowledged with ``outcome``, and those sent."""
    acked: set[str] = set()
    sent: set[str] = set()
    lock = threading.Lock()
    d = start(0)
    for round_ in range(6):
        # a person answers a request once: one acknowledged and then lost stays unanswered
        ids = [rid for rid in fresh(d) if rid not in sent]
        stop = threading.Event()

        def client(k, ids=ids, stop=stop, d=d):
            for rid in ids[k::8]:
                if stop.is_set():
                    return
                with lock:
                    sent.add(rid)
                try:
                    status, body = d.post({"request_id": rid, "label": label})
                except (OSError, http.client.HTTPException):
                    return  # the daemon died: this one was not acknowledged
                if status == 200 and body["results"][0]["outcome"] == outcome:
                    with lock:
                        acked.add(rid)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(pause * (round_ + 1))
        if round_ < 5:
            d.proc.kill()  # SIGKILL, mid-flight
            d.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            for pipe in (d.proc.stdin, d.proc.stdout, d.proc.stderr):
                if pipe is not None:
                    pipe.close()
            d = start(round_ + 1)
        else:
            for t in threads:
                t.join()
    return d, acked, sent


def test_every_acknowledged_label_is_applied_once_across_sigkills(tmp_path):
    """8 clients post labels while the daemon is SIGKILLed and restarted 5 times."""
    records = _records(2000)

    def start(round_):
        d = Daemon(tmp_path)
        d.feed(records[: 400 + 300 * round_])  # the stream, read again from the start
        return d

    d, acked, sent = post_through_sigkills(
        start, lambda d: [r["request_id"] for r in d.open_requests(1)], "hi", "applied", 0.05
    )
    d.feed(records[2000:])
    time.sleep(1)
    d.stop()
    from streamal import checkpoint

    state = checkpoint.load(tmp_path / "s.ckpt", checkpoint.resolve_key(tmp_path / "s.ckpt"))
    learner = state["learner"]
    answered = {rid for rid, why in learner["pending"].closed_entries() if why == "answered"}
    # every label acknowledged is in the model; one sent as the process died may be too
    assert acked and set(acked) <= answered <= sent
    assert learner["labels_applied"] == len(answered)  # none of them twice


class _Intake:
    """A LabelIntake that learns at once, for fuzzing the app's own logic."""

    ready = True

    def __init__(self):
        from streamal import ActiveLearner

        self.learner = ActiveLearner(budget=1.0)

    def open_requests(self):
        from streamal.intake import open_requests

        return open_requests([self.learner])

    def submit(self, labels):
        from concurrent.futures import Future

        future = Future()
        future.set_result([self.learner.learn(x.request_id, x.label) for x in labels])
        return future

    def why_refused(self, label, outcome):
        return self.learner.why_refused(label.request_id, label.label, outcome)

    def progress(self):
        return {}

    def count_http(self, route, status):
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(["request_id", "label", "annotator", "x"]),
                                   inner, max_size=4),
                 max_leaves=15).map(lambda o: json.dumps(o).encode()),
))  # fmt: skip
def test_any_body_gets_a_reply_never_a_5xx(body):
    from starlette.testclient import TestClient

    from streamal.http_api import make_app

    client = TestClient(make_app(_Intake(), "t", rate=0))
    reply = client.post("/labels", content=body, headers={"Authorization": "Bearer t"})
    assert reply.status_code in (200, 400, 413)
    if reply.status_code == 200:
        for item in reply.json()["results"]:
            assert item["outcome"] in {"applied", "unknown", "duplicate", "expired",
                                       "invalid_label"}  # fmt: skip
            if item["outcome"] != "applied":
                assert item["reason"]
    else:
        assert reply.json()["error"]


_values = st.none() | st.booleans() | st.integers() | st.text(max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.recursive(
    _values | st.sampled_from(["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "q-r1", "label",
                               "choices", "A"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["action", "task", "annotation", "data", "request_id",
                                       "result", "from_name", "value", "choices",
                                       "completed_by", "was_cancelled"]), inner, max_size=4),
    max_leaves=20,
), secret=st.sampled_from(["s3cret", "wrong", ""]))  # fmt: skip
@example(payload={"action": "ANNOTATION_CREATED", "task": {"data": {"request_id": "q-r1"}},
                  "annotation": {"result": [{"from_name": "label", "value": {"choices": ["A"]}}],
                                 "completed_by": 1}}, secret="s3cret")  # fmt: skip
def test_any_webhook_gets_a_reply_never_a_5xx(payload, secret):
    from starlette.testclient import TestClient
    from streamal.connectors.labelstudio.bridge import (
        WEBHOOK_PATH,
        LabelStudioBridge,
        LabelStudioClient,
    )

    from streamal.http_api import make_app

    intake = _Intake()
    intake.learner.decide({"x": 1.0})  # request q-r1, open
    unused = LabelStudioClient("http://127.0.0.1:9", "unused")  # the webhook never calls it
    bridge = LabelStudioBridge(unused, intake, ["A", "B"], "s3cret", "http://h" + WEBHOOK_PATH)
    client = TestClient(make_app(intake, "t", rate=0, hooks=[bridge]))
    body = json.dumps(payload).encode()
    reply = client.post(WEBHOOK_PATH, content=body, headers={"X-Streamal-Secret": secret})
    if secret != "s3cret":
        assert reply.status_code == 401
        return
    assert reply.status_code == 200
    body = reply.json()
    assert "ignored" in body or body["results"][0]["outcome"] in {
        "applied", "unknown", "duplicate", "invalid_label"}  # fmt: skip
