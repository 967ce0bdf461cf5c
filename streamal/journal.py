"""A durable journal of the labels people send, applied in the order written.

Whatever hands labels over the network (the HTTP intake) appends them here
and replies only once ``append`` returns: by then they are on disk
(fsynced) and applied to the learner. One writer thread takes every batch
waiting, writes it, fsyncs once for all of them (group commit), then hands
the whole lot to ``apply`` with the journal's size after it. The engine
applies them under its lock and saves that size with its checkpoint; after a
crash it reads the journal again from there, so a label acknowledged is
applied exactly once.

>>> import os, tempfile
>>> from streamal.records import Label
>>> def apply(labels, end):
...     return ["applied" for _ in labels]
>>> journal = LabelJournal(os.path.join(tempfile.mkdtemp(), "labels.journal"), apply)
>>> journal.append([Label("q-1", "UP")])
['applied']
>>> journal.close()
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from streamal.records import Label

__all__ = ["LabelJournal"]


class LabelJournal:
    """Appends labels durably, then applies them; see the module docstring.

    Parameters
    ----------
    path
        The journal, one label a JSON line (the format of a label file).
    apply
        ``(labels, journal size after them) -> outcomes``; called from the
        writer thread, in journal order.
    """

    def __init__(self, path: str | Path, apply: Callable[[list[Label], int], list[str]]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.apply = apply
        self._f = open(self.path, "ab")
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._write, name="streamal-journal", daemon=True)
        self._thread.start()

    def size(self) -> int:
        return self._f.tell()

    def append(self, labels: list[Label], timeout: float = 30.0) -> list[str]:
        """Write, fsync and apply ``labels``; their outcomes, in order."""
        if self._closed:
            raise RuntimeError("the journal is closed")
        done = threading.Event()
        slot: dict = {}
        self._queue.put((labels, done, slot))
        if not done.wait(timeout):
            raise TimeoutError("the label journal did not answer in time")
        if "error" in slot:
            raise slot["error"]
        return slot["outcomes"]

    def _write(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while True:  # everything waiting goes in the same write and fsync
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                lines = b"".join(
                    json.dumps({"request_id": label.request_id, "label": label.label,
                                "annotator": label.annotator}, ensure_ascii=False,
                               allow_nan=False).encode("utf-8") + b"\n"
                    for labels, _, _ in batch for label in labels
                )  # fmt: skip
                self._f.write(lines)
                self._f.flush()
                os.fsync(self._f.fileno())
                everything = [label for labels, _, _ in batch for label in labels]
                outcomes = self.apply(everything, self._f.tell())
                k = 0
                for labels, done, slot in batch:
                    slot["outcomes"] = outcomes[k : k + len(labels)]
                    k += len(labels)
                    done.set()
            except Exception as e:  # the callers hear of it; the writer goes on
                for _, done, slot in batch:
                    slot["error"] = e
                    done.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._f.close()
