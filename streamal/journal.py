"""A durable journal of the labels people send, applied in the order written.

Whatever hands labels over the network (the HTTP intake) submits them here
and replies once the future ``submit`` returns is done: by then they are on
disk (fsynced) and applied to the learner. One writer thread takes every
batch waiting, writes it, fsyncs once for all of them (group commit), then
hands the whole lot to ``apply`` with the journal's size after it and a
callback for their outcomes. The engine applies them between two records,
saves that size with its checkpoint, and after a crash reads the journal
again from there, so a label acknowledged is applied exactly once.

>>> import os, tempfile
>>> from streamal.records import Label, label_to_object
>>> def apply(labels, end, done):
...     done(["applied" for _ in labels])
>>> journal = LabelJournal(os.path.join(tempfile.mkdtemp(), "labels.journal"), apply)
>>> journal.submit([Label("q-1", "UP")]).result()
['applied']
>>> journal.close()
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from streamal.records import Label, label_to_object

__all__ = ["LabelJournal"]

#: ``(labels, journal size after them, done(outcomes))``
Apply = Callable[[list[Label], int, Callable[[list[str]], None]], None]


class LabelJournal:
    """Appends labels durably, then applies them; see the module docstring.

    Parameters
    ----------
    path
        The journal, one label a JSON line (the format of a label file).
    apply
        Called from the writer thread in journal order with the labels, the
        journal's size after them, and a callback to give their outcomes to
        (from any thread, at most once).
    """

    def __init__(self, path: str | Path, apply: Apply):
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

    def submit(self, labels: list[Label]) -> Future:
        """Write, fsync and apply ``labels``: a future of their outcomes, in order."""
        if self._closed:
            raise RuntimeError("the journal is closed")
        future: Future = Future()
        self._queue.put((labels, future))
        return future

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
                    json.dumps(label_to_object(label), ensure_ascii=False,
                               allow_nan=False).encode("utf-8") + b"\n"
                    for labels, _ in batch for label in labels
                )  # fmt: skip
                self._f.write(lines)
                self._f.flush()
                os.fsync(self._f.fileno())
                everything = [label for labels, _ in batch for label in labels]
                self.apply(everything, self._f.tell(), _settler(batch))
            except Exception as e:  # the callers hear of it; the writer goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._f.close()


def _settler(batch: list[tuple[list[Label], Future]]) -> Callable[[list[str]], None]:
    """The callback that shares a batch's outcomes out to the futures of its parts."""

    def done(outcomes: list[str]) -> None:
        k = 0
        for labels, future in batch:
            future.set_result(outcomes[k : k + len(labels)])
            k += len(labels)

    return done
