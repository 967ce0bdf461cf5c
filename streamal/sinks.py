"""In-process sinks: JSON lines to a file or stdout, and callables.

Every line a sink writes is strict JSON (no bare ``NaN``) in valid UTF-8.
A file sink rotates by size (``requests.jsonl`` -> ``requests.jsonl.1`` ...,
keeping a bounded number of files), starts a new file for a new run
instead of appending to an earlier run's, and can report its position and
truncate back to it, so that a run resumed from a checkpoint rewrites
exactly what came after that checkpoint instead of writing it twice.

>>> out = []
>>> sink = CallableSink(out.append)
>>> sink.write({"request_id": "q-1"})
>>> out
[{'request_id': 'q-1'}]
>>> dumps({"x": float("nan"), "name": "caf\\udce9"}) == '{"x":"nan","name":"caf\\ufffd"}'
True
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["JsonlSink", "CallableSink", "dumps", "MAX_BYTES", "KEEP_FILES"]

log = logging.getLogger("streamal")

#: a file sink moves to a new file past this size ...
MAX_BYTES = 100 * 2**20
#: ... and keeps this many earlier ones (``PATH.1`` the newest)
KEEP_FILES = 5


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "replace")
    return str(obj)


_SURROGATE = re.compile("[\ud800-\udfff]")


#: deeper than this, a value written out is cut short (JSON input may nest deeper
#: than the encoder can recurse)
_MAX_DEPTH = 64


def _strict(obj: Any, depth: int = 0) -> Any:
    """``obj`` with what strict JSON in UTF-8 cannot hold made text: NaN and
    infinities as ``"nan"``/``"inf"``, lone surrogates as U+FFFD, nesting past
    ``_MAX_DEPTH`` as ``"..."``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", obj)
    if isinstance(obj, dict | list | tuple | set | frozenset) and depth >= _MAX_DEPTH:
        return "..."
    if isinstance(obj, dict):
        return {_strict(k if isinstance(k, str) else str(k)): _strict(v, depth + 1)
                for k, v in obj.items()}  # fmt: skip
    if isinstance(obj, list | tuple | set | frozenset):
        return [_strict(v, depth + 1) for v in obj]
    if hasattr(obj, "item"):
        return _strict(obj.item(), depth)
    return obj


def _encode(obj: Any) -> bytes:
    try:
        text = json.dumps(
            obj, default=_default, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        )
        return text.encode("utf-8")
    except (ValueError, UnicodeEncodeError, TypeError, RecursionError):
        # NaN, a lone surrogate, odd keys, nesting past the encoder's depth
        text = json.dumps(_strict(obj), default=_default, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", "replace")


def dumps(obj: Any) -> str:
    """Strict JSON text for one output line; anything unknown is written as text."""
    return _encode(obj).decode("utf-8")


class JsonlSink:
    """Writes one JSON object a line to ``path`` (``-`` for stdout).

    Parameters
    ----------
    path
        The file; its directory is made if needed.
    max_bytes
        Past this size the file is moved to ``PATH.1`` (the older ones to
        ``PATH.2`` ...) and a new one begun (0: never).
    keep
        Earlier files kept; the oldest beyond them is deleted.
    rotate_when_due
        Rotate as soon as the size is passed. A loop that checkpoints turns
        this off and calls ``rotate_if_due`` when it saves, so that a
        checkpoint's position always refers to the current file.
    """

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP_FILES,
        rotate_when_due: bool = True,
    ):
        self.path = str(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.rotate_when_due = rotate_when_due
        if self.path == "-":
            self._f = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
            self._size = 0
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "ab")
            self._size = self._f.tell()
        self.written = 0

    @property
    def is_file(self) -> bool:
        return self.path != "-"

    def write(self, obj: Any) -> None:
        data = _encode(obj) + b"\n"
        if self._f is None:  # a stdout replaced by a text-only stream (tests, notebooks)
            sys.stdout.write(data.decode("utf-8"))
        else:
            self._f.write(data)
        self._size += len(data)
        self.written += 1
        if self.rotate_when_due and self.max_bytes and self._size >= self.max_bytes:
            self.rotate()

    def flush(self, sync: bool = False) -> None:
        if self._f is None:
            sys.stdout.flush()
            return
        self._f.flush()
        if sync and self.is_file:
            os.fsync(self._f.fileno())

    def start_new_run(self) -> None:
        """Put an earlier run's file aside (as ``PATH.1``) instead of appending to it."""
        if self.is_file and self._size > 0:
            self.rotate()
            log.warning("%s held an earlier run's output: kept as %s.1", self.path, self.path)

    def rotate_if_due(self) -> None:
        if self.is_file and self.max_bytes and self._size >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        """Move the file to ``PATH.1`` (and the earlier ones up) and start a new one."""
        if not self.is_file:
            return
        self._f.close()
        if self.keep <= 0:
            os.remove(self.path)
        else:
            oldest = f"{self.path}.{self.keep}"
            if os.path.exists(oldest):
                os.remove(oldest)
            for n in range(self.keep - 1, 0, -1):
                if os.path.exists(f"{self.path}.{n}"):
                    os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._f = open(self.path, "ab")
        self._size = 0

    def position(self) -> int | None:
        """Bytes written to the current file so far (None for stdout)."""
        if not self.is_file:
            return None
        self._f.flush()
        return self._f.tell()

    def truncate(self, position: int | None) -> None:
        """Drop everything after ``position`` (what a crash left after a checkpoint)."""
        if position is None or not self.is_file:
            return
        self._f.flush()
        if position > self._size and os.path.exists(f"{self.path}.1"):
            # the crash came between a rotation and the checkpoint that followed it:
            # the position is in the file just rotated, and nothing came after it
            os.truncate(f"{self.path}.1", min(position, os.path.getsize(f"{self.path}.1")))
            position = 0
        os.truncate(self.path, min(position, self._size))
        self._f.seek(0, os.SEEK_END)
        self._size = self._f.tell()

    def close(self) -> None:
        if self.is_file:
            self._f.close()
        else:
            self.flush()


class CallableSink:
    """Calls ``fn(obj)`` for each output, e.g. to hand requests to your own queue."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def write(self, obj: Any) -> None:
        self.fn(obj)

    def flush(self, sync: bool = False) -> None:
        pass

    def position(self) -> None:
        return None

    def truncate(self, position: int | None) -> None:
        pass

    def close(self) -> None:
        pass
