"""The labelling API: open requests out, labels in, over HTTP (``streamal[http]``).

Built on Starlette (a small, well-kept ASGI toolkit with no heavier
framework under it) and served by uvicorn from a thread beside the decision
loop. Routes:

* ``GET /requests?limit=N&after=ID``: open requests, oldest first, paged;
* ``POST /labels``: one label ``{"request_id", "label", "annotator"}`` or a
  list of them; the reply gives each item's outcome (``applied``,
  ``unknown``, ``duplicate``, ``expired``, ``invalid_label``) once the
  labels are on disk and learned (``LabelJournal``);
* ``GET /stats``: records, requests, labels, budget spent, accuracy estimate;
* ``GET /``: the labelling page (``streamal.labelling_page``), which asks for
  the token itself;
* ``GET /healthz``, ``GET /readyz``: without a token;
* ``GET /openapi.json``: this API described.

Every route but the health checks needs ``Authorization: Bearer TOKEN``. A
body over ``max_body`` bytes gets 413, a client over ``rate`` requests a
second 429, malformed JSON 400 with a one-line reason; nothing a client
sends reaches past its own reply.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streamal.intake import BusyError, IntakeUnavailable, LabelIntake, request_view
from streamal.records import BadInput, Label, label_from_object, label_problem

__all__ = ["make_app", "resolve_token", "serve", "take_labels", "MAX_BODY", "MAX_BATCH"]

MAX_BODY = 1 << 20
MAX_BATCH = 1000


def resolve_token(path: str | Path, env: str = "STREAMAL_HTTP_TOKEN") -> tuple[str, str]:
    """A secret and where it is: ``$env``, else the file at ``path``, created
    (mode 600) with a random secret on first use."""
    given = os.environ.get(env)
    if given:
        return given.strip(), f"${env}"
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), str(path.resolve())


class _RateLimit:
    """A token bucket per client address: ``rate`` requests a second, bursts of twice it."""

    def __init__(self, rate: float):
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def allows(self, client: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(client, (2 * self.rate, now))
            tokens = min(2 * self.rate, tokens + (now - last) * self.rate)
            if len(self.buckets) > 10_000:  # many clients: forget the oldest
                self.buckets.pop(next(iter(self.buckets)))
            if tokens < 1:
                self.buckets[client] = (tokens, now)
                return False
            self.buckets[client] = (tokens - 1, now)
            return True


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def make_app(
    intake: LabelIntake,
    token: str,
    *,
    max_body: int = MAX_BODY,
    rate: float = 1000.0,
    hooks: Sequence[Any] = (),
) -> Starlette:
    """The ASGI app over ``intake`` (``streamal.intake``).

    ``hooks`` are webhooks that check their callers themselves (with a shared
    secret), each with ``path``, ``refuse(headers)`` (why the caller is not
    let in, or None; asked before the body is read) and ``on_webhook(body)``
    (the body parsed, returning ``(status, reply)``), served for ``POST``.
    """
    limiter = _RateLimit(rate)

    def guarded(handler: Callable, needs_token: bool = True) -> Callable:
        async def endpoint(request: Request) -> Response:
            client = request.client.host if request.client else "?"
            if not limiter.allows(client):
                response = _error(429, f"more than {rate:g} requests a second; slow down")
                _count(request, response)
                return response
            if needs_token:
                given = request.headers.get("authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    value.strip().encode(), token.encode()
                ):
                    response = _error(
                        401, "missing or wrong token: send Authorization: Bearer TOKEN"
                    )
                    _count(request, response)
                    return response
            try:
                response = await handler(request)
            except Exception as e:  # nothing a client sends may reach past its reply
                response = _error(500, f"internal error: {type(e).__name__}")
            _count(request, response)
            return response

        return endpoint

    def _count(request: Request, response: Response) -> None:
        intake.count_http(request.url.path, response.status_code)

    async def healthz(request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    async def readyz(request: Request) -> Response:
        ok = bool(intake.ready)
        return Response("ready\n" if ok else "not ready\n", status_code=200 if ok else 503,
                        media_type="text/plain")  # fmt: skip

    async def requests(request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 1000)
        except ValueError:
            return _error(400, "limit must be a whole number")
        after = request.query_params.get("after")
        try:
            now = intake.open_requests()
        except BusyError as e:
            return _error(503, str(e))
        entries, held, classes = now.entries, now.held, now.classes
        if after is not None:
            ids = [e.request_id for e in entries]
            entries = entries[ids.index(after) + 1 :] if after in ids else []
        page = entries[:limit]
        items = [request_view(e, held.get(e.request_id)) for e in page]
        body = {"requests": items, "classes": classes, "more": len(entries) > limit}
        return Response(_dumps(body), media_type="application/json")

    async def labels(request: Request) -> Response:
        obj = await _json_body(request, max_body)
        if isinstance(obj, Response):
            return obj
        batch = obj if isinstance(obj, list) else [obj]
        if len(batch) > MAX_BATCH:
            return _error(413, f"more than {MAX_BATCH} labels in one request")
        decoded = [label_from_object(item) for item in batch]
        for label in decoded:
            if isinstance(label, Label):
                label.extra["intake"] = "http"  # counted by what carried it, whatever it says
        try:
            results = await take_labels(intake, decoded)
        except IntakeUnavailable as e:  # nothing was acknowledged: the client sends again
            return _error(503, str(e))
        return Response(_dumps({"results": results}), media_type="application/json")

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def page(request: Request) -> Response:
        from streamal.labelling_page import PAGE

        # nothing but this page's own script and style, and requests to this origin
        policy = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
        return Response(PAGE, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": policy})  # fmt: skip

    async def stats(request: Request) -> Response:
        return Response(_dumps(intake.progress()), media_type="application/json")

    def hook(webhook: Any) -> Callable:
        async def endpoint(request: Request) -> Response:
            if (why := webhook.refuse(request.headers)) is not None:
                return _error(401, why)
            obj = await _json_body(request, max_body)
            if isinstance(obj, Response):
                return obj
            status, body = await webhook.on_webhook(obj)
            return Response(_dumps(body), status_code=status, media_type="application/json")

        return endpoint

    routes = [
        Route("/healthz", guarded(healthz, needs_token=False)),
        Route("/readyz", guarded(readyz, needs_token=False)),
        Route("/requests", guarded(requests)),
        Route("/labels", guarded(labels), methods=["POST"]),
        Route("/openapi.json", guarded(openapi)),
        Route("/stats", guarded(stats)),
        Route("/", guarded(page, needs_token=False)),
    ]
    routes += [Route(w.path, guarded(hook(w), needs_token=False), methods=["POST"])
               for w in hooks]  # fmt: skip
    return Starlette(routes=routes)


async def take_labels(intake: LabelIntake, decoded: list[Label | BadInput]) -> list[dict]:
    """Hand the good labels to ``intake`` and wait until they are safe; each item's
    outcome (with a reason when it is not taken)."""
    good = [d for d in decoded if isinstance(d, Label) and label_problem(d.label) is None]
    outcomes = iter(await asyncio.wrap_future(intake.submit(good)) if good else [])
    results = []
    for d in decoded:
        if isinstance(d, BadInput):
            entry = {"request_id": None, "outcome": "invalid_label", "reason": d.reason}
        elif (problem := label_problem(d.label)) is not None:  # kept out of the journal
            entry = {"request_id": d.request_id, "outcome": "invalid_label",
                     "reason": f"{problem} (request {d.request_id!r})"}  # fmt: skip
        else:
            outcome = next(outcomes)
            entry = {"request_id": d.request_id, "outcome": outcome}
            if outcome not in ("applied", "held", "accepted"):
                entry["reason"] = intake.why_refused(d, outcome)
        results.append(entry)
    return results


async def _json_body(request: Request, max_body: int) -> Any:
    """The request's body as JSON, or the 413 / 400 reply that says why not."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > 16 * max_body:
        return _error(413, f"body over {max_body} bytes")
    body = bytearray()
    over = False
    async for chunk in request.stream():
        # read to the end even when over: a client still sending would see a reset
        # instead of the 413
        if not over:
            body += chunk
            over = len(body) > max_body
    if over:
        return _error(413, f"body over {max_body} bytes")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return _error(400, f"malformed JSON: {getattr(e, 'msg', 'not UTF-8')}")
    except RecursionError:
        return _error(400, "malformed JSON: nested too deeply")
    return obj


def _dumps(obj: Any) -> str:
    from streamal.sinks import dumps

    return dumps(obj)


def serve(app: Starlette, host: str, port: int) -> Any:
    """Run ``app`` with uvicorn in a daemon thread; returns the server (``should_exit``)."""
    import uvicorn

    class _Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # the daemon's own handlers stay
            pass

    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                    access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, name="streamal-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise OSError(f"cannot listen on {host}:{port}")
    return server


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "streamal labelling API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/requests": {"get": {
            "summary": "Open label requests, oldest first",
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}},
                {"name": "after", "in": "query", "schema": {"type": "string"},
                 "description": "the last request_id of the previous page"},
            ],
            "responses": {"200": {"description": "a page of requests: requests, classes, more"},
                          "401": {"description": "missing or wrong token"}},
        }},
        "/labels": {"post": {
            "summary": "One label or a list of them",
            "requestBody": {"content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/Label"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Label"}}]}}}},
            "responses": {
                "200": {"description": "each item's outcome: applied, unknown, duplicate, "
                                       "expired, invalid_label (with a reason)"},
                "400": {"description": "malformed JSON"}, "401": {"description": "no token"},
                "413": {"description": "body too large"}, "429": {"description": "too fast"},
            },
        }},
        "/healthz": {"get": {"summary": "Alive", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "At work", "security": [],
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
    },
}  # fmt: skip
OPENAPI["components"]["schemas"] = {
    "Label": {
        "type": "object",
        "required": ["request_id", "label"],
        "properties": {
            "request_id": {"type": "string"},
            "label": {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
            "annotator": {"type": "string"},
        },
    }
}
