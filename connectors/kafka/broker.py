"""A real Apache Kafka broker (KRaft, one node) on loopback, for tests and local runs.

The broker is Apache Kafka's own jars, fetched from Maven Central with the
``pom.xml`` beside this file (``mvn dependency:copy-dependencies``) and
cached under ``$STREAMAL_KAFKA_HOME`` (default ``~/.cache/streamal/kafka``).
It needs Java 17+ and Maven.

    python -m streamal.connectors.kafka.broker assemble     # fetch the jars once
    python -m streamal.connectors.kafka.broker run          # start one, print its address

In Python::

    with Broker() as broker:
        print(broker.bootstrap)       # 127.0.0.1:PORT
        broker.stop(); broker.start() # same port, same data: an outage
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.1.1"

__all__ = ["Broker", "assemble", "BrokerError"]


class BrokerError(RuntimeError):
    """The broker could not be assembled or started; the message says why."""


def _home() -> Path:
    return Path(os.environ.get("STREAMAL_KAFKA_HOME", Path.home() / ".cache/streamal/kafka"))


def assemble(quiet: bool = True) -> Path:
    """Fetch Kafka's jars with Maven into the cache (once); returns the jar folder."""
    libs = _home() / KAFKA_VERSION / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed to assemble the Kafka broker; install it")
    tmp = libs.with_name("libs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-B", "-f", str(HERE / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]  # fmt: skip
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        raise BrokerError(f"mvn failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    tmp.rename(libs)
    return libs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin/java") if home else shutil.which("java")
    if not java:
        raise BrokerError("Java 17+ is needed to run the Kafka broker; install it")
    return java


_LOG4J = """\
Configuration:
  Appenders:
    File:
      name: file
      fileName: "{log}"
      PatternLayout:
        pattern: "%d %p %c{{1}}: %m%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: file
"""


class Broker:
    """One KRaft broker+controller on free loopback ports, data in a temp folder."""

    def __init__(self, workdir: str | Path | None = None, heap: str = "512m"):
        self.libs = assemble()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="streamal-kafka-"))
        self.port = _free_port()
        self.controller_port = _free_port()
        self.heap = heap
        self.proc: subprocess.Popen | None = None
        self._configure()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _configure(self) -> None:
        self.props = self.workdir / "server.properties"
        self.log = self.workdir / "broker.log"
        data = self.workdir / "data"
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "message.max.bytes=67108864",
                    "",
                ]
            )
        )
        (self.workdir / "log4j2.yaml").write_text(_LOG4J.format(log=self.log))
        self._run_java(["kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                        f"--config={self.props}"], wait=True)  # fmt: skip

    def _run_java(self, args: list[str], wait: bool = False) -> subprocess.Popen:
        cmd = [
            _java(), f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.yaml'}",
            "-cp", str(self.libs / "*"), *args,
        ]  # fmt: skip
        if wait:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise BrokerError(f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}")
            return proc  # type: ignore[return-value]
        out = open(self.workdir / "broker.out", "ab")
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 90.0, attempts: int = 4) -> Broker:
        """Start (or restart) the broker and wait until it takes connections.

        A restart right after ``stop()`` can find its ports not yet free; an
        early exit is retried a few times before it counts as a failure.
        """
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = self._run_java(["kafka.Kafka", str(self.props)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.workdir / "broker.out").read_text(errors="replace")[-3000:]
                if attempts > 1:
                    time.sleep(2.0)
                    self.proc = None
                    return self.start(max(deadline - time.monotonic(), 10.0), attempts - 1)
                raise BrokerError(f"the Kafka broker exited ({self.proc.returncode}):\n{tail}")
            if self._ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise BrokerError(f"the Kafka broker did not become ready in {timeout:.0f} s")

    def _ready(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        except (KafkaError, OSError):
            return False
        try:
            admin.describe_cluster()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); its data stays for a restart."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding;
    # one starting with "-" would read as an option, so draw again
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streamal.connectors.kafka.broker",
        description="Assemble and run a single-node Apache Kafka broker on loopback.",
    )
    parser.add_argument(
        "command",
        choices=["assemble", "run"],
        help="assemble: fetch the jars; run: start a broker until Ctrl-C",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "assemble":
            print(assemble(quiet=False))
            return 0
        with Broker() as broker:
            # blocked only now, so that the broker's JVM does not inherit the mask; unblocked,
            # SIGTERM would end this process at once and leave the JVM running
            stops = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)
            print(f"Kafka {KAFKA_VERSION} on {broker.bootstrap} (Ctrl-C stops it)", flush=True)
            signal.sigwait(stops)
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
