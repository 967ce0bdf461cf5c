"""In-process sinks: JSON lines to a file or stdout, and callables.

A file sink can report its position and truncate back to it, so a run
resumed from a checkpoint rewrites exactly what came after that checkpoint
instead of writing it twice.

>>> out = []
>>> sink = CallableSink(out.append)
>>> sink.write({"request_id": "q-1"})
>>> out
[{'request_id': 'q-1'}]
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["JsonlSink", "CallableSink", "dumps"]


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(obj: Any) -> str:
    """JSON text for one output line; anything unknown is written as text."""
    return json.dumps(obj, default=_default, separators=(",", ":"))


class JsonlSink:
    """Appends one JSON object a line to ``path`` (``-`` for stdout)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path == "-":
            self._f = sys.stdout
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")
        self.written = 0

    def write(self, obj: Any) -> None:
        self._f.write(dumps(obj) + "\n")
        self.written += 1

    def flush(self, sync: bool = False) -> None:
        self._f.flush()
        if sync and self._f is not sys.stdout:
            os.fsync(self._f.fileno())

    def position(self) -> int | None:
        """Bytes written so far (None for stdout)."""
        if self._f is sys.stdout:
            return None
        self._f.flush()
        return self._f.tell()

    def truncate(self, position: int | None) -> None:
        """Drop everything after ``position`` (what a crash left after a checkpoint)."""
        if position is None or self._f is sys.stdout:
            return
        self._f.flush()
        os.truncate(self.path, position)
        self._f.seek(position)

    def close(self) -> None:
        if self._f is not sys.stdout:
            self._f.close()
        else:
            self._f.flush()


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
