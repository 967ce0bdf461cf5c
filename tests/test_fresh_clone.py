"""A newcomer's clone: nothing beside it, the README's quick start works as written."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _quick_start() -> str:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    (command,) = [line for line in block.splitlines() if line.strip()]
    return command


def test_the_quick_start_runs_on_a_clone_with_nothing_beside_it(tmp_path):
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not installed")
    clone = tmp_path / "empty" / "streamal"
    subprocess.run([git, "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    assert [p.name for p in clone.parent.iterdir()] == ["streamal"]  # nothing beside it
    command = _quick_start()
    assert command.endswith("streamal run")
    # the same command, bounded: the default runs until Ctrl-C
    proc = subprocess.run(
        f"{command} --max-records 20000 --metrics-port 0", shell=True, cwd=clone,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    requests = (clone / "streamal-out" / "requests.jsonl").read_text().splitlines()
    assert 1000 < len(requests) <= 2001
    # the lean install: no Kafka client, no plotting, no test tools
    installed = subprocess.run([str(clone / ".venv/bin/python"), "-m", "pip", "list"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    for extra in ("kafka-python", "matplotlib", "pytest", "orjson"):
        assert extra not in installed
    # a command that needs an extra says which
    proc = subprocess.run([str(clone / ".venv/bin/streamal"), "run", "--source", "kafka",
                           "--metrics-port", "0"], cwd=clone, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 2
    # the first module of the extra the connector imports is the one named
    assert re.fullmatch(
        r"streamal: error: source.spec: 'kafka' needs (kafka|orjson), which is not installed: "
        r"pip install 'streamal\[kafka\]'",
        proc.stderr.strip().splitlines()[-1],
    ), proc.stderr[-500:]
