"""Label Studio as the place people answer: requests out as tasks, annotations back as labels.

The bridge keeps a Label Studio project in step with the learner's open
requests. Each open request becomes a task (its features as data, the
model's prediction with ``score`` its confidence and ``model_version`` the
labels the learner has learned), created through Label Studio's REST API;
a request sent out again for a second opinion becomes a second task that
names the annotator to leave it to others. Annotations come back through
the project's webhook (``ANNOTATION_CREATED``, ``ANNOTATION_UPDATED``) to
the labelling API, which checks the shared secret in its
``X-Streamal-Secret`` header and hands the label to the same intake as
``POST /labels``.

An updated annotation is a correction. While its request waits (the first
label is held for a second opinion) it counts as that annotator's answer;
once the request was answered the model has taken its step and cannot take
it back, so the correction is refused as ``duplicate`` and lands in the
dead letters with its label, where it can be found and replayed.

The bridge reads the project's tasks when it starts, so a restart neither
skips a request nor creates a task twice.

>>> print(label_config(["UP", "DOWN"]))  # doctest: +ELLIPSIS
<View>
  ...
  <Choices name="label" toName="features" choice="single" showInline="true">
    <Choice value="UP" hotkey="1"/>
    <Choice value="DOWN" hotkey="2"/>
  </Choices>
</View>
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from streamal.intake import BusyError, LabelIntake, request_view
from streamal.records import Label

__all__ = ["LabelStudioBridge", "LabelStudioClient", "LabelStudioError", "label_config"]

log = logging.getLogger("streamal.labelstudio")

SECRET_HEADER = "X-Streamal-Secret"
WEBHOOK_PATH = "/labelstudio/webhook"
_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


class LabelStudioError(RuntimeError):
    """Label Studio refused or could not be reached; the message says which call."""


class LabelStudioClient:
    """Label Studio's REST API with a personal access token.

    A personal access token is a JWT refresh token: it is exchanged at
    ``/api/token/refresh/`` for a short-lived access token, and again when
    that one expires.
    """

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.timeout = timeout
        self._access: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in (1, 2):
            if self._access is None:
                self._access = self._refresh()
            try:
                return self._send(method, path, body, f"Bearer {self._access}")
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 1:  # the access token expired
                    self._access = None
                    continue
                raise LabelStudioError(f"{method} {path}: {e.code} {_detail(e)}") from None
        raise AssertionError("unreachable")

    def _refresh(self) -> str:
        try:
            reply = self._send("POST", "/api/token/refresh/", {"refresh": self.token}, None)
        except urllib.error.HTTPError as e:
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the personal access token ({e.code}): "
                "make one under Account & Settings > Personal Access Token"
            ) from None
        return reply["access"]

    def _send(self, method: str, path: str, body: Any, auth: str | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as reply:
                raw = reply.read()
        except urllib.error.URLError as e:
            if isinstance(e, urllib.error.HTTPError):
                raise
            raise LabelStudioError(f"cannot reach Label Studio at {self.url}: {e.reason}") from None
        return json.loads(raw) if raw else None


def _detail(e: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(e.read())
    except ValueError:
        return e.reason
    return str(body.get("detail") or body.get("validation_errors") or body)[:300]


def label_config(classes: Sequence[Any]) -> str:
    """The labelling interface: the features as a table, one choice per class."""
    choices = "\n".join(
        f"    <Choice value={quoteattr(str(c))} hotkey=\"{i}\"/>" if i <= 9
        else f"    <Choice value={quoteattr(str(c))}/>"
        for i, c in enumerate(classes, 1)
    )  # fmt: skip
    return (
        "<View>\n"
        '  <Header value="$title"/>\n'
        '  <Table name="features" value="$features"/>\n'
        '  <Choices name="label" toName="features" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


class LabelStudioBridge:
    """Keeps a Label Studio project in step with ``intake``'s open requests.

    Parameters
    ----------
    client
        The API of the Label Studio server.
    intake
        Where the labels go (``streamal.intake``) and whose open requests
        become tasks.
    classes
        The classes an annotator chooses from.
    secret
        What Label Studio sends in ``X-Streamal-Secret`` with each webhook.
    webhook_url
        Where Label Studio reaches the labelling API's webhook route.
    project
        The project's title: found, or created.
    model_version
        The learner's version, shown with each prediction.
    every
        Seconds between two looks at the open requests.
    """

    def __init__(
        self,
        client: LabelStudioClient,
        intake: LabelIntake,
        classes: Sequence[Any],
        secret: str,
        webhook_url: str,
        project: str = "streamal",
        model_version: Callable[[], Any] = lambda: 0,
        every: float = 1.0,
    ):
        if not classes:
            raise ValueError("Label Studio needs the classes to offer: give --classes")
        self.client, self.intake = client, intake
        self.classes = list(classes)
        self._by_name = {str(c): c for c in self.classes}
        self.secret, self.webhook_url = secret, webhook_url
        self.title, self.model_version, self.every = project, model_version, every
        self.project_id: int | None = None
        self._sent: set[str] = set()  # task keys in the project: request id, "#2" for again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tasks_created = 0

    # -- setting up ------------------------------------------------------------

    def connect(self) -> None:
        """Find or create the project, set its interface and webhook, read its tasks."""
        config = label_config(self.classes)
        found = self.client.call("GET", "/api/projects?" + urllib.parse.urlencode(
            {"title": self.title, "page_size": 1000}))  # fmt: skip
        projects = found["results"] if isinstance(found, dict) else found
        mine = [p for p in projects if p.get("title") == self.title]
        if mine:
            project = mine[0]
            if project.get("label_config") != config:
                self.client.call("PATCH", f"/api/projects/{project['id']}",
                                 {"label_config": config})  # fmt: skip
        else:
            project = self.client.call("POST", "/api/projects",
                                       {"title": self.title, "label_config": config})  # fmt: skip
        self.project_id = project["id"]
        hooks = self.client.call("GET", f"/api/webhooks/?project={self.project_id}")
        if not any(h.get("url") == self.webhook_url for h in hooks):
            try:
                self.client.call("POST", "/api/webhooks/", {
                    "url": self.webhook_url, "project": self.project_id, "send_payload": True,
                    "send_for_all_actions": False, "actions": list(_ACTIONS),
                    "headers": {SECRET_HEADER: self.secret}, "is_active": True,
                })  # fmt: skip
            except LabelStudioError as e:
                if "reserved network address" not in str(e):
                    raise
                raise LabelStudioError(
                    f"{e}: Label Studio sends webhooks to private addresses only when started "
                    "with USE_DEFAULT_BANNED_SUBNETS=false"
                ) from None
        self._sent = self._task_keys()
        log.info("Label Studio project %r (%d) at %s: %d tasks already there",
                 self.title, self.project_id, self.client.url, len(self._sent))  # fmt: skip

    def _task_keys(self) -> set[str]:
        keys: set[str] = set()
        page = 1
        while True:
            reply = self.client.call("GET", "/api/tasks?" + urllib.parse.urlencode(
                {"project": self.project_id, "page": page, "page_size": 1000,
                 "fields": "all"}))  # fmt: skip
            tasks = reply.get("tasks", []) if isinstance(reply, dict) else reply
            for task in tasks:
                data = task.get("data", {})
                if "request_id" in data:
                    keys.add(data["request_id"] + ("#2" if data.get("second_opinion") else ""))
            if not tasks or len(tasks) < 1000:
                return keys
            page += 1

    # -- requests out ----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="streamal-labelstudio",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def sync(self) -> int:
        """Create the tasks of the open requests not in the project yet; how many."""
        try:
            now = self.intake.open_requests()
        except BusyError:
            return 0
        tasks, keys = [], []
        version = self.model_version()
        for entry in now.entries:
            key = entry.request_id
            if key not in self._sent:
                tasks.append(self._task(entry, version, None))
                keys.append(key)
            exclude = now.held.get(entry.request_id)
            if exclude is not None and key + "#2" not in self._sent:
                tasks.append(self._task(entry, version, exclude))
                keys.append(key + "#2")
        for i in range(0, len(tasks), 100):
            self.client.call("POST", f"/api/projects/{self.project_id}/import", tasks[i : i + 100])
            self._sent.update(keys[i : i + 100])
            self.tasks_created += len(keys[i : i + 100])
        # answered requests leave the table for good: forget them
        open_ids = {e.request_id for e in now.entries}
        self._sent = {k for k in self._sent if k.removesuffix("#2") in open_ids}
        return len(tasks)

    def _task(self, entry: Any, version: Any, exclude: str | None) -> dict[str, Any]:
        shown = request_view(entry, exclude)
        title = f"request {entry.request_id}"
        if exclude is not None:
            title += f" - a second opinion: not for {exclude}"
        keep = ("request_id", "record_id", "features", "reason", "utility")
        data: dict[str, Any] = {k: shown[k] for k in keep}
        if exclude is not None:
            data.update(second_opinion=True, exclude_annotator=exclude)
        data["title"] = title
        task: dict[str, Any] = {"data": data}
        if entry.prediction is not None and str(entry.prediction) in self._by_name:
            task["predictions"] = [{
                "model_version": str(version),
                "score": float(max(shown["probabilities"].values(), default=0.0)),
                "result": [{"from_name": "label", "to_name": "features", "type": "choices",
                            "value": {"choices": [str(entry.prediction)]}}],
            }]  # fmt: skip
        return task

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.every):
            if not self.intake.ready:
                continue
            try:
                self.sync()
                if failing:
                    log.info("Label Studio answers again")
                failing = False
            except (LabelStudioError, OSError, ValueError) as e:
                if not failing:  # once per outage, not once a second
                    log.warning("cannot create Label Studio tasks (will retry): %s", e)
                failing = True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout + 5)

    # -- annotations in ----------------------------------------------------------

    #: where the labelling API serves the webhook
    path = WEBHOOK_PATH

    def refuse(self, headers: Any) -> str | None:
        """Why a webhook call is not Label Studio's (no shared secret), or None."""
        given = headers.get(SECRET_HEADER.lower(), "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return f"missing or wrong {SECRET_HEADER} header"
        return None

    async def on_webhook(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """An annotation event, from a caller let in: its label to the intake."""
        from streamal.http_api import take_labels

        label = self.label_of(payload)
        if isinstance(label, str):
            return 200, {"ignored": label}
        results = await take_labels(self.intake, [label])
        if payload.get("action") == "ANNOTATION_UPDATED":
            results[0]["correction"] = True
        return 200, {"results": results}

    def label_of(self, payload: Any) -> Label | str:
        """The label an annotation event carries, or why there is none to take."""
        if not isinstance(payload, dict) or payload.get("action") not in _ACTIONS:
            return "not an annotation event"
        task, annotation = payload.get("task") or {}, payload.get("annotation") or {}
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
            return "the task is not one of streamal's"
        if annotation.get("was_cancelled"):
            return "skipped by the annotator"
        choices = [
            choice
            for item in annotation.get("result") or []
            if isinstance(item, dict) and item.get("from_name") == "label"
            for choice in (item.get("value") or {}).get("choices") or []
        ]
        if len(choices) != 1:
            return "the annotation chooses no single class"
        who = annotation.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id")
        label = Label(data["request_id"], self._by_name.get(str(choices[0]), choices[0]),
                      f"labelstudio:{who}")  # fmt: skip
        label.extra["intake"] = "labelstudio"
        return label
