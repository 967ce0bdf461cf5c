"""Signed, atomic checkpoint files.

The state is pickled (river models are plain Python objects), so a file
must never be unpickled unless we wrote it: each file carries an
HMAC-SHA256 of its payload under a secret key, checked before anything is
loaded. Writes go to a temporary file, are fsynced, then renamed over the
old one, so a crash leaves either the old checkpoint or the new one.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "state.ckpt")
>>> save(path, {"n": 1}, key=b"secret")
>>> load(path, key=b"secret")
{'n': 1}
>>> try:
...     load(path, key=b"other")
... except CheckpointError as e:
...     print("refused:", "signature does not match" in str(e))
refused: True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "save", "load", "dumps", "loads", "resolve_key"]

_MAGIC = b"STREAMAL-CKPT-1\n"
_DIGEST = 32


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted or read."""


def resolve_key(path: str | Path, key: str | bytes | None = None) -> bytes:
    """The signing key: given, else ``$STREAMAL_CHECKPOINT_KEY``, else ``PATH.key``.

    The key file is created (mode 600) with a random key the first time.
    """
    if key is None:
        key = os.environ.get("STREAMAL_CHECKPOINT_KEY") or None
    if key is not None:
        return key.encode() if isinstance(key, str) else key
    key_path = Path(f"{path}.key")
    if key_path.exists():
        return key_path.read_bytes().strip()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return key_path.read_bytes().strip()


def dumps(state: Any, key: bytes) -> bytes:
    """``state`` pickled and signed, as ``save`` writes it (for a store that keeps bytes)."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    return _MAGIC + hmac.new(key, payload, hashlib.sha256).digest() + payload


def loads(data: bytes, key: bytes, where: str = "the state") -> Any:
    """Verify the signature of ``dumps`` output, then unpickle; ``CheckpointError`` if it fails."""
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _DIGEST:
        raise CheckpointError(f"{where} is not a streamal checkpoint")
    mac = data[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    payload = data[len(_MAGIC) + _DIGEST :]
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise CheckpointError(
            f"{where}: signature does not match; the file was altered or signed with "
            "another key - refusing to load it"
        )
    return pickle.loads(payload)


def save(path: str | Path, state: Any, key: bytes) -> None:
    """Pickle ``state``, sign it and replace ``path`` atomically."""
    path = Path(path)
    data = dumps(state, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: str | Path, key: bytes) -> Any:
    """Verify the signature, then unpickle; raises ``CheckpointError`` if it fails."""
    return loads(Path(path).read_bytes(), key, str(path))
