"""Checkpoints: signed, atomic, and a resumed run decides exactly as an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from streamal import checkpoint as ckpt
from tests.conftest import streamal

RUN = ["run", "--metrics-port", "0", "--summary-every", "0", "--seed", "7",
       "--drift-period", "3000", "--annotator-delay", "50"]  # fmt: skip


def _requests(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tampered_checkpoint_is_refused(tmp_path):
    path = tmp_path / "state.ckpt"
    ckpt.save(path, {"n": 1}, key=b"k")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="signature does not match"):
        ckpt.load(path, b"k")
    (tmp_path / "junk.ckpt").write_bytes(b"\x80\x04K\x01.")  # a bare pickle
    with pytest.raises(ckpt.CheckpointError, match="not a streamal checkpoint"):
        ckpt.load(tmp_path / "junk.ckpt", b"k")


def test_cli_refuses_a_tampered_checkpoint_with_a_clear_error(tmp_path):
    streamal(*RUN, "--max-records", "2000", "--checkpoint", "s.ckpt", cwd=tmp_path)
    data = bytearray((tmp_path / "s.ckpt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "s.ckpt").write_bytes(bytes(data))
    proc = streamal(*RUN, "--max-records", "4000", "--checkpoint", "s.ckpt", cwd=tmp_path,
                    check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "signature does not match" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resumed_run_makes_the_same_decisions(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir(), resumed.mkdir()
    streamal(*RUN, "--max-records", "8000", cwd=straight)
    streamal(*RUN, "--max-records", "3000", "--checkpoint", "s.ckpt", cwd=resumed)
    assert len(_requests(resumed / "streamal-out/requests.jsonl")) > 100
    streamal(*RUN, "--max-records", "8000", "--checkpoint", "s.ckpt", cwd=resumed)
    a = (straight / "streamal-out/requests.jsonl").read_text()
    b = (resumed / "streamal-out/requests.jsonl").read_text()
    assert a == b
    assert 700 < len(a.splitlines()) <= 801


def test_crash_at_any_moment_loses_and_doubles_nothing(tmp_path):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    straight.mkdir(), crashed.mkdir()
    n = "40000"
    streamal(*RUN, "--max-records", n, cwd=straight)
    args = [sys.executable, "-m", "streamal", *RUN, "--max-records", n,
            "--checkpoint", "s.ckpt", "--checkpoint-every", "777"]  # fmt: skip
    out = crashed / "streamal-out/requests.jsonl"
    kills = 0
    # first as soon as requests reach the file (before the first periodic checkpoint),
    # then at moments in the middle of the run
    for delay in (0.0, 1.2, 0.7, 1.9):
        proc = subprocess.Popen(args, cwd=crashed, stderr=subprocess.DEVNULL)
        if delay == 0.0:
            deadline = time.monotonic() + 60
            while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
                time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2
    streamal(*RUN, "--max-records", n, "--checkpoint", "s.ckpt", cwd=crashed)
    expected = _requests(straight / "streamal-out/requests.jsonl")
    got = _requests(out)
    ids = [r["request_id"] for r in got]
    assert len(ids) == len(set(ids)), "a request was written twice"
    assert got == expected


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", *RUN, "--checkpoint", "s.ckpt",
         "--checkpoint-every", "100000"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    out = tmp_path / "streamal-out/requests.jsonl"
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err or "Terminated" in err
    state = ckpt.load(tmp_path / "s.ckpt", ckpt.resolve_key(tmp_path / "s.ckpt"))
    # the checkpoint saved on SIGTERM covers every request written before it
    written = out.read_text().splitlines()
    assert len(written) > 20
    assert state["learner"]["n_queries"] == len(written)
    assert state["sink_positions"][0] == out.stat().st_size
    assert oct(os.stat(tmp_path / "s.ckpt.key").st_mode & 0o777) == "0o600"
