"""The Label Studio bridge against a real Label Studio server: tasks out, annotations in."""

import json
import random
import time
import urllib.error
import urllib.request

from streamal.connectors.labelstudio.bridge import (
    WEBHOOK_PATH,
    LabelStudioBridge,
    LabelStudioClient,
)

from streamal import ActiveLearner
from streamal.engine import Engine
from streamal.http_api import make_app, serve
from streamal.intake import EngineIntake
from tests.conftest import free_port
from tests.test_http_api import Daemon, _call, _records
from tests.with_labelstudio.conftest import read_json


def _wait(condition, timeout=60, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"waited {timeout} s for {what}")


def _class_of(features):
    return "A" if features["x"] >= 5 else "B"


def test_annotations_made_in_label_studio_reach_the_learner_once(
    labelstudio, annotator, project_title, tmp_path
):
    token_file = tmp_path / "labelstudio.token"
    token_file.write_text(labelstudio.personal_access_token())
    metrics_port = free_port()
    args = ("--classes", "A,B", "--labelstudio", labelstudio.url, "--labelstudio-token-file",
            token_file, "--labelstudio-project", project_title)  # fmt: skip
    d = Daemon(tmp_path, *map(str, args), metrics_port=metrics_port)
    try:
        d.feed(_records(300))
        _wait(lambda: _call(d.base, "/stats", d.token)[1]["records"] == 300, what="300 records")
        open_now = d.open_requests(12)
        project = annotator.project(project_title)
        tasks = _wait(lambda: (t := annotator.tasks(project["id"])) and len(t) >= len(open_now)
                      and t, what="a task for every open request")  # fmt: skip
        assert {t["data"]["request_id"] for t in tasks} == {r["request_id"] for r in open_now}
        shown = tasks[0]["data"]
        assert set(shown["features"]) == {"x", "y"} and shown["reason"]
        answered = tasks[:12]
        annotations = [annotator.annotate(t["id"], _class_of(t["data"]["features"]))
                       for t in answered]  # fmt: skip
        _wait(lambda: _call(d.base, "/stats", d.token)[1]["labels_applied"] == 12,
              what="the 12 labels in the learner")  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as reply:
            scraped = reply.read().decode()
        assert 'streamal_intake_labels_total{intake="labelstudio"} 12.0' in scraped
        # answered requests are no longer open; the others still are
        still_open = {r["request_id"] for r in d.open_requests(1)}
        assert not still_open & {t["data"]["request_id"] for t in answered}
        # a correction after the label was learned: refused as duplicate, kept as a dead letter
        first = answered[0]
        flipped = "B" if _class_of(first["data"]["features"]) == "A" else "A"
        annotator.correct(annotations[0]["id"], flipped)

        def refused():
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as reply:
                return (
                    'streamal_labels_rejected_total{reason="duplicate"} 1.0'
                    in reply.read().decode()
                )

        _wait(refused, what="the correction refused")
        assert _call(d.base, "/stats", d.token)[1]["labels_applied"] == 12
    finally:
        d.stop()
    dead = tmp_path / "streamal-out/dead-letters.jsonl"
    (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["data"]["request_id"] == first["data"]["request_id"]
    assert letter["data"]["label"] == flipped and letter["data"]["outcome"] == "duplicate"
    # a restart reads the project's tasks: no request gets a second task
    d = Daemon(tmp_path, *map(str, args))
    try:
        d.feed(_records(300))
        d.open_requests(1)
        time.sleep(3)  # a few rounds of the bridge
        ids = [t["data"]["request_id"] for t in annotator.tasks(project["id"])]
        assert len(ids) == len(set(ids))
    finally:
        d.stop()


def test_a_second_opinion_goes_to_label_studio_for_someone_else(
    labelstudio, annotator, project_title, tmp_path
):
    me = f"labelstudio:{annotator.client.call('GET', '/api/current-user/whoami')['id']}"
    learner = ActiveLearner(budget=1.0, cold_start=0, second_opinion_below=0.8,
                            exploration_share=0.0, classes=["pos", "neg"])  # fmt: skip
    rng = random.Random(2)
    for _ in range(200):  # a careful annotator, then this Label Studio user, careless
        x = rng.uniform(-1, 1)
        learner.learn({"x": x}, "pos" if x > 0 else "neg", annotator="careful")
    for _ in range(40):
        learner.learn({"x": rng.uniform(-1, 1)}, rng.choice(["pos", "neg"]), annotator=me)
    engine = Engine(learner, [])
    engine.run()
    intake = EngineIntake(engine, tmp_path / "labels.journal")
    port = free_port()
    bridge = LabelStudioBridge(
        LabelStudioClient(labelstudio.url, labelstudio.personal_access_token()), intake,
        ["pos", "neg"], "s3cret", f"http://127.0.0.1:{port}{WEBHOOK_PATH}", project=project_title,
    )  # fmt: skip
    bridge.connect()
    server = serve(make_app(intake, "t", hooks=[bridge]),
                   "127.0.0.1", port)  # fmt: skip
    try:
        decision = learner.decide({"x": 0.7})
        assert bridge.sync() == 1
        project = annotator.project(project_title)
        (task,) = annotator.tasks(project["id"])
        assert task["data"]["request_id"] == decision.request_id
        assert task["predictions"][0]["result"][0]["value"]["choices"] == ["pos"]
        annotator.annotate(task["id"], "neg")
        _wait(lambda: decision.request_id in learner._held, what="the label held")
        assert bridge.sync() == 1  # the request again, for another annotator
        again = [t for t in annotator.tasks(project["id"]) if t["data"].get("second_opinion")]
        assert len(again) == 1 and again[0]["data"]["exclude_annotator"] == me
        applied = learner.labels_applied
        annotator.annotate(again[0]["id"], "neg")  # the same person: still waiting
        time.sleep(2)
        assert learner.labels_applied == applied and decision.request_id in learner._held
        # a webhook without the shared secret is refused
        req = urllib.request.Request(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=b"{}",
                                     method="POST")  # fmt: skip
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("a webhook without the secret was taken")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert read_json(f"http://127.0.0.1:{port}/stats", "t")["labels_applied"] == applied
    finally:
        server.should_exit = True
        intake.close()
