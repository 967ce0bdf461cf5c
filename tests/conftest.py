import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the small datasets ship with the repository (covtype: benchmarks/fetch_dataset.py)
DATASETS = Path(os.environ.get("STREAMAL_DATASETS", ROOT / "benchmarks" / "datasets"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamal(*args, cwd, timeout=120, env=None, check=True):
    """Run the real command line, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "streamal", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def dataset():
    def get(name):
        path = DATASETS / name
        if not path.exists():
            pytest.fail(f"dataset {path} missing (benchmarks/datasets ships it)")
        return path

    return get


def need(binary):
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed; .ci/run installs it")
    return path
