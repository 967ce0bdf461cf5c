"""The Dockerfile, the compose stack and the Grafana dashboard, checked without a Docker engine:
what they run exists, what they mount is there, what they query is exported."""

import json
import re
import shlex
import subprocess
import sys

import yaml

from streamal.cli import build_parser
from streamal.config import BY_KEY
from tests.conftest import ROOT, need

EXAMPLES = ROOT / "examples"


def _instructions(path):
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(rest):
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def test_the_dockerfile_is_pinned_lean_unprivileged_and_checks_health(tmp_path):
    steps = _instructions(ROOT / "Dockerfile")
    (base,) = [rest for word, rest in steps if word == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(word == "VOLUME" for word, _ in steps)
    (health,) = [rest for word, rest in steps if word == "HEALTHCHECK"]
    port = BY_KEY["metrics.port"].default
    assert f"http://127.0.0.1:{port}/healthz" in health
    (entry,) = [_exec_form(rest) for word, rest in steps if word == "ENTRYPOINT"]
    assert entry[0] == "streamal"
    build_parser().parse_args(entry[1:])
    # the dependency layer comes before the code: replay its trick on the files it copies
    copies = [rest for word, rest in steps if word == "COPY"]
    assert copies[0] == "pyproject.toml README.md ./"
    first_run = next(rest for word, rest in steps if word == "RUN" and "pip install" in rest)
    for name in ("pyproject.toml", "README.md"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    for part in first_run.split("&&"):
        part = part.strip()
        if part.startswith("pip install"):
            part = f"{sys.executable} -m pip wheel -q --no-deps -w wheels ."
        elif part.startswith(("pip uninstall", "rm ")):
            continue
        subprocess.run(part, shell=True, cwd=tmp_path, check=True, timeout=300)
    assert list((tmp_path / "wheels").glob("streamal-*.whl"))


def test_the_dockerignore_keeps_out_what_the_image_does_not_need():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}  # fmt: skip
    assert {".git", ".venv", "tests", "streamal-out"} <= ignored
    assert not ignored & {"streamal", "connectors", "pyproject.toml", "README.md"}


def test_the_compose_stack_runs_what_exists_and_mounts_what_is_there():
    compose = yaml.safe_load((EXAMPLES / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "streamal", "prometheus", "grafana", "label-studio"}
    for name, service in services.items():
        if "image" in service:
            image, _, tag = service["image"].partition(":")
            assert tag and tag != "latest", f"{name}: pin the image"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} listens beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (EXAMPLES / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} undeclared"
    streamal = services["streamal"]
    assert (EXAMPLES / streamal["build"]["context"] / "Dockerfile").exists()
    entry = json.loads(next(rest for word, rest in _instructions(ROOT / "Dockerfile")
                            if word == "ENTRYPOINT"))  # fmt: skip
    args = build_parser().parse_args([*entry[1:], *streamal["command"]])
    assert getattr(args, "source.spec") == "kafka"
    assert getattr(args, "kafka.bootstrap").split(":")[0] == "kafka"
    # people answer in Label Studio, whose webhooks reach the labelling API by service name
    assert getattr(args, "http.enabled") and getattr(args, "labelstudio.url").startswith(
        "http://label-studio:"
    )
    webhook = getattr(args, "labelstudio.webhook_url")
    port = getattr(args, "http.listen").rpartition(":")[2]
    assert webhook == f"http://streamal:{port}/labelstudio/webhook"
    assert "STREAMAL_LABEL_STUDIO_TOKEN" in streamal["environment"]
    from streamal.connectors.labelstudio.server import VERSION

    assert services["label-studio"]["image"].endswith(f":{VERSION}")  # the version tested
    assert services["label-studio"]["environment"]["USE_DEFAULT_BANNED_SUBNETS"] == "false"


def test_prometheus_in_the_stack_scrapes_the_daemon(tmp_path):
    promtool = need("promtool")
    config = EXAMPLES / "prometheus.yml"
    proc = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    targets = yaml.safe_load(config.read_text())["scrape_configs"][0]["static_configs"][0]
    assert targets["targets"] == [f"streamal:{BY_KEY['metrics.port'].default}"]


def test_the_grafana_dashboard_queries_exported_metrics_per_instance():
    from prometheus_client import CollectorRegistry

    from streamal import ActiveLearner
    from streamal.engine import EngineStats
    from streamal.metrics import Metrics

    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    titles = " ".join(p["title"].lower() for p in panels)
    assert "label latency" in titles and "annotator reliability" in titles
    registry = CollectorRegistry()
    learner = ActiveLearner(cold_start=0, budget=1.0)
    Metrics(registry, learner, EngineStats())
    learner.learn(learner.decide({"x": 1.0}).request_id, "a")
    learner.learn({"x": 1.0}, "a", annotator="ann")
    learner.learn(learner.decide({"x": 1.0}).request_id, "a")  # a prediction to score
    exported = {s.name for f in registry.collect() for s in f.samples}
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            names = re.findall(r"streamal_[a-z_]+", expr)
            assert names, expr
            for name in names:
                assert name in exported, f"{panel['title']}: {name} is not exported"
                assert f'{name}{{instance=~"$instance"' in expr, f"{expr}: not per instance"
    provisioning = yaml.safe_load((EXAMPLES / "grafana/datasource.yaml").read_text())
    assert provisioning["datasources"][0]["url"] == "http://prometheus:9090"
