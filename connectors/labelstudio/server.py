"""A local Label Studio server, for trying the bridge and for its tests.

Label Studio (PyPI's ``label-studio``, about 1 GB with its dependencies)
goes into a virtual environment of its own, apart from streamal's, under
``$STREAMAL_LABEL_STUDIO_HOME`` (default ``~/.cache/streamal/label-studio``);
its database (SQLite) and files live in a data folder beside it, kept
between starts, since its first start migrates the database for a minute
or more. The server listens on 127.0.0.1 only.

    python -m streamal.connectors.labelstudio.server install
    python -m streamal.connectors.labelstudio.server start [--port 8080]

``start`` prints the address and a personal access token for the bridge
(``--labelstudio-token-file``), and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import fcntl
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["LabelStudioServer", "install", "home", "VERSION"]

#: the release the bridge is tested against
VERSION = "1.23.2"


def home() -> Path:
    return Path(
        os.environ.get("STREAMAL_LABEL_STUDIO_HOME", Path.home() / ".cache/streamal/label-studio")
    )


def install(quiet: bool = True) -> Path:
    """Label Studio in its own virtual environment (once); returns its command."""
    venv = home() / "venv"
    command = venv / "bin/label-studio"
    if (venv / "installed").exists():  # written once pip finished
        return command
    home().mkdir(parents=True, exist_ok=True)
    with open(home() / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process installing: wait for it
        if not (venv / "installed").exists():
            _install(venv, quiet)
    return command


def _install(venv: Path, quiet: bool) -> None:
    print(f"installing label-studio {VERSION} into {venv} (about 1 GB, a minute or two)",
          file=sys.stderr)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check"]
    pip += ["-q"] if quiet else []
    subprocess.run([*pip, f"label-studio=={VERSION}"], check=True)
    (venv / "installed").write_text(VERSION + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudioServer:
    """``label-studio start`` on a loopback port, with a user whose token it hands out.

    Parameters
    ----------
    data_dir
        Its database and files (default: ``data`` under ``home()``).
    port
        Default: a free one.
    email, password
        The user created on the first start.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int | None = None,
        email: str = "streamal@example.com",
        password: str = "streamal-local",
    ):
        self.data_dir = Path(data_dir) if data_dir else home() / "data"
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.email, self.password = email, password
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600.0) -> None:
        command = install()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # its webhooks reach streamal on this machine: let them to private addresses
        env = {**os.environ, "LATEST_VERSION_CHECK": "false", "USE_DEFAULT_BANNED_SUBNETS": "false",
               "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir)}  # fmt: skip
        env.pop("HOST", None)  # Label Studio reads it as its public address
        self.log = open(self.data_dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(command), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--username", self.email, "--password", self.password],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"label-studio exited with {self.proc.returncode}; see "
                    f"{self.data_dir / 'server.log'}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        self.close()
        raise TimeoutError(f"label-studio did not answer on {self.url} in {timeout:.0f} s")

    def personal_access_token(self) -> str:
        """The user's personal access token, made the way a person makes it in the
        browser (signed in, Account & Settings): kept in the data folder, since
        Label Studio shows it only once."""
        saved = self.data_dir / "streamal-personal-access-token"
        if saved.exists():
            return saved.read_text().strip()
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = browser.open(self.url + "/user/login/").read().decode()
        form = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if form is None:
            raise RuntimeError("the sign-in page of label-studio has no form to fill")
        browser.open(urllib.request.Request(
            self.url + "/user/login/",
            data=urllib.parse.urlencode({"csrfmiddlewaretoken": form.group(1),
                                         "email": self.email,
                                         "password": self.password}).encode(),
            headers={"Referer": self.url + "/user/login/"},
        ))  # fmt: skip
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        reply = browser.open(urllib.request.Request(
            self.url + "/api/token/", data=b"{}", method="POST",
            headers={"X-CSRFToken": csrf, "Content-Type": "application/json",
                     "Referer": self.url + "/"},
        ))  # fmt: skip
        token = json.loads(reply.read())["token"]
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streamal.connectors.labelstudio.server",
        description="A local Label Studio server for the streamal bridge.",
    )
    parser.add_argument("command", choices=["install", "start"])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", help="default: data under $STREAMAL_LABEL_STUDIO_HOME")
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install())
        return 0
    server = LabelStudioServer(args.data_dir, args.port)
    print(f"starting label-studio on {server.url} (the first start takes a minute or more)",
          file=sys.stderr)  # fmt: skip
    server.start()
    print(f"label-studio on {server.url}, user {server.email} / {server.password}")
    print(f"personal access token: {server.personal_access_token()}")
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
