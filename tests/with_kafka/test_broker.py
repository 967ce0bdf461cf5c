"""The development broker's command line, as a user runs it."""

import signal
import socket
import subprocess
import sys


def test_broker_run_takes_its_broker_down_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal.connectors.kafka.broker", "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # printed once the broker takes connections
        assert " on 127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.split(" on 127.0.0.1:")[1].split()[0])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        proc.send_signal(signal.SIGTERM)  # as a service manager stops it
        assert proc.wait(timeout=60) == 0
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            raise AssertionError("the broker still takes connections after its command ended")
        except ConnectionRefusedError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
