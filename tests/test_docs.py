"""The README, the docs and the examples stay true: their code runs and their keys exist."""

import re
import runpy
import shlex
import subprocess
import sys

import pytest

from streamal.config import OPTIONS, load_settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").rglob("*.md"))


def test_readme_embedding_example_runs():
    block = re.search(r"## Embedding.*?```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    learner = namespace["learner"]
    assert learner.n_records == 20_000
    assert 0 < learner.n_queries <= 0.05 * 20_000 + 1
    assert learner.labels_applied > 0.9 * learner.n_queries


def test_the_configuration_reference_is_made_from_every_option():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from hooks import options_table
    finally:
        sys.path.remove(str(ROOT / "docs"))
    table = options_table()
    for opt in OPTIONS:
        section, name = opt.key.split(".")
        assert f"`[{section}] {name}`" in table, opt.key
        assert opt.flag[2:] in table, opt.flag
    assert "<!-- options -->" in (ROOT / "docs/configuration.md").read_text()


def test_the_docs_build_strictly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site/configuration/index.html").exists()


def _blocks(language):
    for page in [ROOT / "README.md", *DOCS]:
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S):
            yield page.relative_to(ROOT), block


@pytest.mark.parametrize("page,block", list(_blocks("python")),
                         ids=lambda v: str(v)[:40])  # fmt: skip
def test_every_python_block_in_the_docs_runs(page, block):
    exec(compile(block, str(page), "exec"), {})


def test_every_excerpt_of_an_example_is_in_the_example():
    """An excerpt needs what its example sets up (a broker, arguments): the example
    runs in the tests, and the excerpt is checked against it here."""
    pattern = r'```python title="(examples/[^"]+) \(excerpt\)"\n(.*?)```'
    found = 0
    for page in [ROOT / "README.md", *DOCS]:
        for path, block in re.findall(pattern, page.read_text(), re.S):
            example = (ROOT / path).read_text()
            assert block in example, f"{page.name}: the excerpt of {path} is not in it"
            found += 1
    assert found


def test_every_streamal_command_in_the_docs_exists():
    from streamal.cli import build_parser

    parser = build_parser()
    commands = 0
    for page, block in _blocks("sh"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in re.split(r"&&|;|\|", line):
                # the loops' variables, as they take their first values
                part = part.strip().rstrip("&").replace("$D", "benchmarks/datasets")
                part = re.sub(r"\$\{?d\}?", "0", re.sub(r"\$\{?b\}?", "0.1", part))
                words = shlex.split(part)
                while words and words[0] in ("for", "do", "done", "wait", "then"):
                    words = []
                if words and words[0].endswith("streamal") and len(words) > 1:
                    try:
                        parser.parse_args(words[1:])
                    except SystemExit:
                        pytest.fail(f"{page}: not a streamal command: {part.strip()}")
                    commands += 1
    assert commands >= 8


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
    stats = EngineStats()
    stats.intake["file"] += 1
    stats.http_requests[("/labels", 200)] += 1
    Metrics(registry, learner, stats)
    learner.learn(learner.decide({"x": 1.0}).request_id, "a")  # a label delay is known
    learner.learn({"x": 1.0}, "a")
    learner.learn({"x": 1.0}, "a", annotator="ann")  # the model predicts now: a reliability
    families = list(registry.collect())
    exported = {s.name for f in families for s in f.samples} | {f.name for f in families}
    documented = set(re.findall(r"`(streamal_[a-z_]+)", (ROOT / "docs/metrics.md").read_text()))
    assert len(documented) > 10
    missing = {m for m in documented if not any(e.startswith(m) for e in exported)}
    assert not missing
