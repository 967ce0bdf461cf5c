"""The daemon's HTTP endpoint: Prometheus metrics and health checks.

* ``GET /metrics``: the registry in Prometheus' text format;
* ``GET /healthz``: 200 while the process serves (alive);
* ``GET /readyz``: 200 once ``ready()`` says the loop is at work (the
  source open, the learner ready, Kafka connected where used), else 503.

Anything else is a 404. It listens on 127.0.0.1 unless told otherwise.

>>> from prometheus_client import CollectorRegistry
>>> server = serve(CollectorRegistry(), "127.0.0.1", 0, ready=lambda: False)
>>> import urllib.request, urllib.error
>>> url = f"http://127.0.0.1:{server.server_port}"
>>> urllib.request.urlopen(url + "/healthz").read()
b'ok\\n'
>>> try:
...     urllib.request.urlopen(url + "/readyz")
... except urllib.error.HTTPError as e:
...     print(e.code)
503
>>> server.shutdown()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["serve"]


def serve(
    registry: CollectorRegistry, host: str, port: int, ready: Callable[[], bool] = lambda: True
) -> ThreadingHTTPServer:
    """Serve the endpoint from a daemon thread; returns the server (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                try:
                    ok = bool(ready())
                except Exception:  # a check that fails is a "not ready", not a crash
                    ok = False
                self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="streamal-endpoint", daemon=True).start()
    return server
