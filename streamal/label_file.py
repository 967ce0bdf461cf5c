"""Labels from a JSON-lines file that grows, followed as ``tail -F`` follows a log.

One label a line, the format of the Kafka labels topic:
``{"request_id": "q-e17", "label": "fraud", "annotator": "ann"}``. The
follower survives truncation (it starts the file again) and rotation (it
finishes the file moved away, then opens the new one). A line is taken only
once it ends in a newline, so a writer caught mid-line is never read half.
Its position (the file's identity and the byte after the last line taken)
is saved with the engine's checkpoint, so a restart neither skips nor
re-applies a label. A bad line becomes a ``BadInput`` (a dead letter) naming
``file:line``.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "labels.jsonl")
>>> labels = LabelFile(path, every=0)
>>> labels.poll(0)
[]
>>> with open(path, "a") as f:
...     _ = f.write('{"request_id": "q-1", "label": "UP"}\\n{"request_id": "q-2", "la')
>>> labels.poll(0)
[Label(request_id='q-1', label='UP', annotator=None, extra={})]
>>> with open(path, "a") as f:
...     _ = f.write('bel": "DOWN"}\\n')
>>> [label.request_id for label in labels.poll(0)]
['q-2']
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from streamal.records import BadInput, Label, json_line, label_from_object

__all__ = ["LabelFile"]

#: a line longer than this is not a label: it is dead-lettered, cut short
MAX_LINE = 1 << 20


class LabelFile:
    """Follows ``path`` for labels; ``poll(now)`` returns those written since.

    Parameters
    ----------
    path
        The file (it may not exist yet).
    every
        Seconds between looks at the file: ``poll`` is called for every
        record, and a look costs a system call.
    max_lines
        Most labels one poll returns (the rest wait for the next).
    """

    def __init__(self, path: str | Path, every: float = 0.2, max_lines: int = 10_000):
        self.path = Path(path)
        self.every = every
        self.max_lines = max_lines
        self._f: Any = None
        self._inode: int | None = None
        self._offset = 0  # the byte after the last whole line taken
        self._line = 0  # lines taken from the current file, for `where`
        # the end of the last line taken: a file truncated and written again to the
        # same length or more shows other bytes there
        self._tail = b""
        self._next_look = 0.0

    # -- position, for the checkpoint --------------------------------------------------

    def position(self) -> dict[str, Any]:
        return {"inode": self._inode, "offset": self._offset, "line": self._line,
                "tail": self._tail}  # fmt: skip

    def seek(self, position: dict[str, Any] | None) -> None:
        """Continue from a saved ``position`` (the file it names may have been rotated)."""
        self._close()
        if not position:
            return
        self._inode, self._offset = position.get("inode"), position.get("offset", 0)
        self._line = position.get("line", 0)
        self._tail = position.get("tail", b"")

    # -- reading ---------------------------------------------------------------------

    def poll(self, now: float = 0.0) -> list[Label | BadInput]:
        clock = time.monotonic()
        if clock < self._next_look:
            return []
        self._next_look = clock + self.every
        out: list[Label | BadInput] = []
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        if (
            self._f is None
            and self._inode is not None
            and (stat is None or stat.st_ino != self._inode)
        ):
            # saved before a rotation: finish the file moved away, if it is still there
            moved = self._find_moved()
            if moved is not None:
                self._open(moved, self._offset)
                self._read(out)
            self._close()
            self._inode, self._offset, self._line, self._tail = None, 0, 0, b""
        if self._f is not None and (stat is None or stat.st_ino != self._inode):
            self._read(out)  # rotated: what was written to the old file before the move
            self._close()
            self._inode, self._offset, self._line, self._tail = None, 0, 0, b""
        if stat is None:
            return out
        if self._f is None:
            start = self._offset if self._inode == stat.st_ino else 0
            if start > stat.st_size:
                start = 0
            if start == 0:
                self._line, self._tail = 0, b""
            self._open(self.path, start)
            if start and self._rewritten():  # rewritten while the daemon was down
                self._f.seek(0)
                self._offset = self._line = 0
                self._tail = b""
            self._inode = stat.st_ino
        elif stat.st_size < self._offset or self._rewritten():  # truncated, written anew
            self._f.seek(0)
            self._offset = self._line = 0
            self._tail = b""
        self._read(out)
        return out

    def _read(self, out: list[Label | BadInput]) -> None:
        f = self._f
        while len(out) < self.max_lines:
            line = f.readline(MAX_LINE + 1)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) <= MAX_LINE:  # a line still being written: later
                    f.seek(self._offset)
                    return
                while (more := f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                    pass
                if not more:
                    f.seek(self._offset)
                    return
                self._advance(f, more or line)
                line = line[:200]
                out.append(BadInput(f"line longer than {MAX_LINE} bytes", line, self._where()))
                continue
            self._advance(f, line)
            if not line.strip():
                continue
            out.append(_label(line, self._where()))

    def _advance(self, f: Any, line: bytes) -> None:
        self._offset = f.tell()
        self._line += 1
        self._tail = line[-32:]

    def _rewritten(self) -> bool:
        tail = self._tail
        if not tail:
            return False
        return os.pread(self._f.fileno(), len(tail), self._offset - len(tail)) != tail

    def _where(self) -> str:
        return f"{self.path}:{self._line}"

    def _open(self, path: Path, offset: int) -> None:
        self._f = open(path, "rb")
        self._f.seek(offset)
        self._offset = offset

    def _close(self) -> None:
        if self._f is not None:
            self._f.close()
        self._f = None

    def _find_moved(self) -> Path | None:
        """The file with the saved identity beside ``path`` (``labels.jsonl.1`` ...)."""
        try:
            for candidate in self.path.parent.iterdir():
                if candidate.name.startswith(self.path.name) and candidate.stat().st_ino == (
                        self._inode):  # fmt: skip
                    return candidate
        except OSError:
            pass
        return None

    def close(self) -> None:
        self._close()


def _label(line: bytes, where: str) -> Label | BadInput:
    obj = json_line(line, where)
    if isinstance(obj, BadInput):
        return obj
    return label_from_object(obj, line.rstrip(b"\r\n"), where)
