"""The Kafka daemon against a real broker: formats, exactly once, bad input, stop."""

import json
import shutil
import signal
import subprocess
import time

from streamal.connectors.kafka.app import KafkaApp, KafkaSettings

from streamal import ActiveLearner
from streamal.checkpoint import resolve_key
from tests.with_kafka.conftest import daemon, sea_records


def _state(topics, cwd):
    settings = KafkaSettings(bootstrap=topics.bootstrap, changelog_topic=topics.changelog,
                             training_topic=topics.training, client=topics.client)  # fmt: skip
    app = KafkaApp(settings, lambda p: ActiveLearner(), resolve_key(cwd / "streamal-out/state"))
    app._load_snapshots()
    return app


def test_requests_are_written_once_in_the_documented_format(topics, tmp_path):
    records = sea_records(3000)
    topics.produce(topics.records, records, keys=[f"k{i % 7}".encode() for i in range(3000)])
    daemon(topics, "--exit-when-idle", 3, cwd=tmp_path)
    requests = topics.read(topics.requests)
    ids = [r["request_id"] for r in requests]
    assert len(ids) == len(set(ids))
    assert 250 < len(ids) <= 301
    first = requests[0]
    assert set(first) >= {
        "v",
        "request_id",
        "record_id",
        "features",
        "utility",
        "confidence",
        "prediction",
        "probabilities",
        "strategy",
        "model_version",
        "ts",
    }
    assert first["record_id"] == "0-0" and first["v"] == 1
    # a second run on the same group finds nothing new: offsets were committed with the outputs
    daemon(topics, "--exit-when-idle", 2, cwd=tmp_path)
    assert len(topics.read(topics.requests)) == len(ids)
    assert _state(topics, tmp_path).learners[0].n_records == 3000


def test_bad_input_goes_to_dead_letters_and_the_daemon_goes_on(topics, tmp_path):
    good = sea_records(600)
    bad = [
        b"{not json",
        b"[1, 2]",
        json.dumps({"features": {"0": "high", "1": 1.0, "2": 2.0}}).encode(),
        json.dumps({"features": {"0": 1.0}}).encode(),
        json.dumps({"features": 5}).encode(),
    ]
    topics.produce(topics.records, good[:300] + bad + good[300:])
    ttl = ["--pending-ttl", "20"]
    daemon(topics, "--exit-when-idle", 1, "--budget", "0.5", *ttl, cwd=tmp_path)
    created = time.monotonic()
    requests = topics.read(topics.requests)
    # labels: one good, one duplicate, one unknown, one malformed, one without request_id,
    # and (after the 20 s TTL) one for an expired request
    topics.produce(topics.labels, [
        {"request_id": requests[5]["request_id"], "label": True, "annotator": "a"},
        {"request_id": requests[5]["request_id"], "label": True, "annotator": "a"},
        {"request_id": "q-nope", "label": False},
        b"\xff\xfe not json",
        {"label": True},
    ])  # fmt: skip
    daemon(topics, "--exit-when-idle", 1, "--budget", "0.5", *ttl, cwd=tmp_path)
    time.sleep(max(0.0, created + 21 - time.monotonic()))
    topics.produce(topics.labels, [{"request_id": requests[-1]["request_id"], "label": False}])
    topics.produce(topics.records, sea_records(300, seed=2))
    daemon(topics, "--exit-when-idle", 2, "--budget", "0.5", *ttl, cwd=tmp_path)
    dead = topics.read(topics.dead)
    reasons = [d["reason"] for d in dead]
    assert sum(d["kind"] == "record" for d in dead) == 5
    assert any(r.startswith("malformed JSON") for r in reasons)
    assert "a record must be a JSON object" in reasons
    assert "feature '0' must be a number, got 'high'" in reasons
    assert any(r.startswith("missing feature '1'") for r in reasons)
    assert "features must be an object of name -> value" in reasons
    assert f"label for duplicate request {requests[5]['request_id']!r}" in reasons
    assert "label for unknown request 'q-nope'" in reasons
    assert f"label for expired request {requests[-1]['request_id']!r}" in reasons
    assert "label has no request_id" in reasons
    binary = [d for d in dead if "raw_base64" in d]
    assert len(binary) == 1 and binary[0]["topic"] == topics.labels
    assert all({"topic", "partition", "offset"} <= set(d) for d in dead)
    state = _state(topics, tmp_path).learners[0]
    assert state.labels_applied == 1
    assert state.n_records == 900  # good records only are decided


def test_kcat_produces_records_and_reads_requests(topics, tmp_path):
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed; .ci/run installs it"
    lines = "\n".join(json.dumps(r) for r in sea_records(1000)) + "\n"
    subprocess.run([kcat, "-b", topics.bootstrap, "-P", "-t", topics.records], input=lines,
                   text=True, check=True, timeout=60)  # fmt: skip
    daemon(topics, "--exit-when-idle", 3, cwd=tmp_path)
    out = subprocess.run(
        [kcat, "-b", topics.bootstrap, "-C", "-t", topics.requests, "-e", "-q", "-o", "beginning",
         "-X", "isolation.level=read_committed"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    requests = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert 80 < len(requests) <= 101
    assert len({r["request_id"] for r in requests}) == len(requests)


def test_sigterm_finishes_the_batch_commits_and_exits_0(topics, tmp_path):
    topics.produce(topics.records, sea_records(30_000))
    proc = daemon(topics, "--commit-every", "500", cwd=tmp_path, wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not topics.read(topics.requests, timeout_ms=500):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    n = _state(topics, tmp_path).learners[0].n_records
    assert 0 < n
    requests = topics.read(topics.requests)
    assert len(requests) == len({r["request_id"] for r in requests})
    assert len(requests) <= 0.1 * n + 1


def test_tampered_state_is_refused(topics, tmp_path):
    topics.produce(topics.records, sea_records(500))
    daemon(topics, "--exit-when-idle", 2, cwd=tmp_path)
    topics.produce(topics.changelog, [b"STREAMAL-STATE-1" + b"\0" * 32 + b"evil"], keys=[b"0/core"])
    err_proc = daemon(topics, "--exit-when-idle", 2, cwd=tmp_path, wait=False)
    _, err = err_proc.communicate(timeout=120)
    assert err_proc.returncode == 2
    assert "signature does not match" in err


def test_flat_records_with_a_stray_first_message_and_a_null_label(topics, tmp_path):
    stray = {"id": "oops", "ts": 5}
    flat = [{"id": f"e{i}", "ts": 1000.0 + i, **r["features"], "label": "leak"}
            for i, r in enumerate(sea_records(400))]  # fmt: skip
    topics.produce(topics.records, [stray, *flat])
    daemon(topics, "--exit-when-idle", 2, "--budget", "0.5", cwd=tmp_path)
    requests = topics.read(topics.requests)
    # the envelope never became a feature, and the stray message fixed no schema
    assert requests and all(set(r["features"]) == {"0", "1", "2"} for r in requests)
    assert requests[0]["record_id"].startswith("e")
    topics.produce(topics.labels, [{"request_id": requests[0]["request_id"], "label": None}])
    daemon(topics, "--exit-when-idle", 2, "--budget", "0.5", cwd=tmp_path)
    dead = topics.read(topics.dead)
    assert [d["reason"] for d in dead] == [
        "record has no features (only its envelope: id, ts)",
        f"label for {requests[0]['request_id']!r} is null",
    ]
    assert dead[0]["where"] == f"{topics.records}/0/0"
    assert _state(topics, tmp_path).learners[0].n_records == 400


def test_a_process_with_another_key_is_refused_naming_its_key_file(topics, tmp_path):
    topics.produce(topics.records, sea_records(300))
    daemon(topics, "--exit-when-idle", 2, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = daemon(topics, "--exit-when-idle", 2, cwd=elsewhere, wait=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    line = err.strip().splitlines()[-1]
    key_file = elsewhere / "streamal-out" / "state.key"
    assert line.startswith("streamal: error: ") and str(key_file) in line
    assert "--checkpoint-key-file" in line and "Traceback" not in err
    # with the group's key it resumes
    key = tmp_path / "streamal-out" / "state.key"
    daemon(topics, "--exit-when-idle", 2, "--checkpoint-key-file", key, cwd=elsewhere)


def test_resuming_the_group_with_another_budget_is_refused(topics, tmp_path):
    topics.produce(topics.records, sea_records(300))
    daemon(topics, "--exit-when-idle", 2, cwd=tmp_path)
    proc = daemon(topics, "--exit-when-idle", 2, "--budget", "0.3", cwd=tmp_path, wait=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "--budget 0.3 (saved: 0.1)" in err.strip().splitlines()[-1]
