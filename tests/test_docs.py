"""The README and the examples stay true: their code runs and their keys exist."""

import re
import runpy

from streamal.config import OPTIONS, load_settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_embedding_example_runs():
    block = re.search(r"## Embedding.*?```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    learner = namespace["learner"]
    assert learner.n_records == 20_000
    assert 0 < learner.n_queries <= 0.05 * 20_000 + 1
    assert learner.labels_applied > 0.9 * learner.n_queries


def test_readme_documents_every_option():
    for opt in OPTIONS:
        section, name = opt.key.split(".")
        assert f"`[{section}] {name}`" in README, opt.key
        assert opt.flag.lstrip("-") in README, opt.flag


def test_example_config_is_valid():
    settings = load_settings(ROOT / "examples/streamal.toml")
    assert settings["learner.strategy"] == "per_class_quantile_filter"


def test_embed_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples/embed.py"), run_name="__main__")
    assert "label requests" in capsys.readouterr().out


def test_metrics_in_the_readme_exist():
    from prometheus_client import CollectorRegistry

    from streamal import ActiveLearner
    from streamal.engine import EngineStats
    from streamal.metrics import Metrics

    registry = CollectorRegistry()
    # the strategy's threshold exists once it has run; every record queried
    learner = ActiveLearner(cold_start=0, budget=1.0)
    Metrics(registry, learner, EngineStats())
    learner.learn(learner.decide({"x": 1.0}).request_id, "a")  # a label delay is known
    learner.learn({"x": 1.0}, "a")
    learner.learn({"x": 1.0}, "a", annotator="ann")  # the model predicts now: a reliability
    families = list(registry.collect())
    exported = {s.name for f in families for s in f.samples} | {f.name for f in families}
    documented = set(re.findall(r"`(streamal_[a-z_]+)", README))
    missing = {m for m in documented if not any(e.startswith(m) for e in exported)}
    assert not missing
