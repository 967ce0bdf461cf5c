"""A real Label Studio server for the tests, started once per session.

It comes from PyPI into a virtual environment of its own (``.ci/test``
installs it; the fixture does, too, when it is missing). Its data folder is
kept between runs, as its first start migrates the database for a minute
or more: each test works in a project of its own, so a kept folder is safe.
Set STREAMAL_LABEL_STUDIO_DATA to put that folder elsewhere.
"""

import json
import os
import urllib.parse
import urllib.request
import uuid

import pytest
from streamal.connectors.labelstudio.server import LabelStudioServer


@pytest.fixture(scope="session")
def labelstudio():
    # no skip: if the server cannot start, these tests fail loudly
    server = LabelStudioServer(os.environ.get("STREAMAL_LABEL_STUDIO_DATA"))
    server.start()
    try:
        yield server
    finally:
        server.close()


class Annotator:
    """Label Studio's API as an annotator's browser uses it, with a personal access token."""

    def __init__(self, server):
        from streamal.connectors.labelstudio.bridge import LabelStudioClient

        self.client = LabelStudioClient(server.url, server.personal_access_token())

    def project(self, title):
        found = self.client.call("GET", "/api/projects?" + urllib.parse.urlencode(
            {"title": title}))["results"]  # fmt: skip
        return next(p for p in found if p["title"] == title)

    def tasks(self, project_id):
        reply = self.client.call("GET", f"/api/tasks?project={project_id}&page_size=1000"
                                 "&fields=all")  # fmt: skip
        return reply["tasks"]

    def annotate(self, task_id, choice):
        result = [{"from_name": "label", "to_name": "features", "type": "choices",
                   "value": {"choices": [choice]}}]  # fmt: skip
        return self.client.call("POST", f"/api/tasks/{task_id}/annotations/",
                                {"result": result, "lead_time": 2.5})  # fmt: skip

    def correct(self, annotation_id, choice):
        result = [{"from_name": "label", "to_name": "features", "type": "choices",
                   "value": {"choices": [choice]}}]  # fmt: skip
        return self.client.call("PATCH", f"/api/annotations/{annotation_id}/",
                                {"result": result})  # fmt: skip


@pytest.fixture
def annotator(labelstudio):
    return Annotator(labelstudio)


@pytest.fixture
def project_title():
    return f"streamal-{uuid.uuid4().hex[:8]}"


def read_json(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        return json.loads(reply.read())
