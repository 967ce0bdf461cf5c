"""In-process sources: Python iterables, CSV/JSONL files (gzip too), river streams.

A source is an iterable of ``Record`` (or ``BadInput`` for a line that could
not be read). Sources are deterministic, so a resumed run skips the records
it had already decided. ``open_source(spec)`` builds one from a string:

* ``synth:NAME`` - a river synthetic generator (``synth:sea_drift``, the
  default with abrupt drift every ``period`` records; ``synth:Hyperplane``,
  ``synth:SEA``, ``synth:Agrawal`` ... with their parameters),
* ``river:NAME`` - a dataset bundled with river (``river:Phishing``),
* ``PATH.csv``, ``PATH.csv.gz`` - a CSV with a header; the ``label`` column
  is the true label (used by the simulated annotator and replay),
* ``PATH.jsonl``, ``PATH.jsonl.gz`` or ``-`` (stdin) - one JSON object a
  line: ``{"id": ..., "features": {...}, "ts": ..., "label": ...}`` or a
  flat object of features,
* ``SCHEME:...`` - a connector registered under the ``streamal.sources``
  entry point (``connectors`` register theirs there).

>>> src = open_source("synth:sea_drift", seed=1)
>>> first = next(iter(src))
>>> sorted(first.features), first.label in (True, False)
(['0', '1', '2'], True)
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import sys
import zlib
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from streamal.records import BadInput, Record, json_line, record_from_object
from streamal.schema import ENVELOPE, is_text

__all__ = [
    "IterableSource",
    "CsvSource",
    "JsonlSource",
    "SyntheticSource",
    "RiverDataset",
    "open_source",
    "read_labelled",
    "SourceError",
]


#: a line longer than this is not read as a record: it goes to the dead letters
MAX_LINE = 8 * 2**20


class SourceError(ValueError):
    """A file that cannot be read on (not gzip, cut short); says which and where."""


def _open_text(path: str | Path) -> io.TextIOBase:
    """The file as text; bytes that are not UTF-8 come through as lone surrogates,
    so that a bad line can be dead-lettered with its bytes instead of ending the run."""
    if str(path) == "-":
        if hasattr(sys.stdin, "buffer"):
            return io.TextIOWrapper(
                sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline=""
            )
        return sys.stdin
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise SourceError(f"{path} is a directory, not a file of records")
    if path.suffix == ".gz":
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic and magic != b"\x1f\x8b":
            raise SourceError(f"{path}: not a gzip file, though its name ends in .gz")
        raw: Any = gzip.open(path, "rb")
    else:
        raw = open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")


def _lines(path: str | Path, f: io.TextIOBase) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, line, problem)`` for each line; a gzip stream cut short or
    corrupt raises ``SourceError`` naming the file and the line it got to."""
    n = 0
    readline = f.readline
    while True:
        try:
            line = readline(MAX_LINE + 1)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            what = "ends in the middle of its gzip data" if isinstance(e, EOFError) else (
                f"cannot be read past here ({e})")  # fmt: skip
            raise SourceError(f"{path}:{n + 1}: the file {what}") from None
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            # the rest of an overlong line is read and dropped, a piece at a time
            while (more := readline(MAX_LINE)) and not more.endswith("\n"):
                pass
            yield n, line[:200], f"line longer than {MAX_LINE} characters"
            continue
        if not is_text(line):
            yield n, line.rstrip("\r\n"), "line is not valid UTF-8"
            continue
        yield n, line, None


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


class IterableSource:
    """Records from any Python iterable.

    Items may be ``Record``, ``(features, label)`` pairs as river's streams
    give them, or dicts (an envelope with ``"features"``, or plain features).

    >>> [r.id for r in IterableSource([{"x": 1.0}, ({"x": 2.0}, True)])]
    ['0', '1']
    """

    def __init__(self, iterable: Iterable[Any]):
        self.iterable = iterable

    def __iter__(self) -> Iterator[Record | BadInput]:
        for i, item in enumerate(self.iterable):
            where = f"<iterable>:{i}"
            if isinstance(item, Record):
                yield item
            elif isinstance(item, tuple) and len(item) == 2:
                yield Record(id=str(i), features=item[0], label=item[1], where=where)
            elif isinstance(item, dict):
                yield record_from_object(item, str(i), where)
            else:
                yield BadInput(
                    f"cannot read a record from {type(item).__name__}", repr(item), where
                )


class CsvSource:
    """Rows of a CSV file with a header (``.gz`` read as gzip).

    Numbers become floats, other text stays a string (a categorical
    feature); the ``target`` column becomes the record's true label.
    """

    def __init__(
        self, path: str | Path, target: str | None = "label", id_column: str | None = None
    ):
        self.path = path
        self.target = target
        self.id_column = id_column

    def __iter__(self) -> Iterator[Record | BadInput]:
        path = self.path
        with _open_text(path) as f:
            lines = _lines(path, f)
            header = None
            for n, line, problem in lines:
                if problem is not None:
                    raise SourceError(f"{path}:{n}: the header: {problem}")
                if line.strip():
                    header = _row(line)
                    break
            if header is None:
                return
            width = len(header)
            target, id_column = self.target, self.id_column
            index = -1
            for n, line, problem in lines:
                if not line.strip() and problem is None:
                    continue
                index += 1
                where = f"{path}:{n}"
                if problem is None:
                    try:
                        row = _row(line)
                    except csv.Error as e:
                        problem = f"unreadable CSV row: {e}"
                if problem is not None:
                    yield BadInput(problem, line.rstrip("\r\n"), where)
                    continue
                if len(row) != width:
                    yield BadInput(
                        f"row has {len(row)} fields, header has {width}", line.rstrip("\r\n"),
                        where,
                    )  # fmt: skip
                    continue
                features: dict[str, Any] = {}
                envelope: dict[str, str] = {}
                for name, text in zip(header, row, strict=True):
                    if name == target:
                        envelope["label"] = text
                    elif name == id_column or name in ENVELOPE:
                        envelope["id" if name == id_column else name] = text
                    elif text == "":
                        continue  # a missing value: the validator names it
                    else:
                        features[name] = _number(text)
                ts = envelope.get("ts")
                if ts is not None:
                    ts = _number(ts)
                    if not isinstance(ts, float) or not math.isfinite(ts):
                        yield BadInput(f"ts must be a finite number of seconds, got {ts!r}",
                                       line.rstrip("\r\n"), where)  # fmt: skip
                        continue
                yield Record(
                    id=envelope.get("id") or str(index), features=features, ts=ts,
                    key=envelope.get("key") or None, label=envelope.get("label"), where=where,
                )  # fmt: skip


def _row(line: str) -> list[str]:
    """One CSV row from one line (a record is one line of its file)."""
    return next(csv.reader((line,)), [])


class JsonlSource:
    """One JSON object a line, from a file (``.gz`` too) or ``-`` for stdin.

    A line that is not a JSON object, not valid UTF-8, nested too deeply or
    longer than ``MAX_LINE`` becomes a ``BadInput`` (a dead letter) naming
    its ``file:line``; a gzip file cut short raises ``SourceError``.
    """

    def __init__(self, path: str | Path):
        self.path = path

    def __iter__(self) -> Iterator[Record | BadInput]:
        f = _open_text(self.path)
        name = "<stdin>" if str(self.path) == "-" else self.path
        index = -1
        try:
            for n, line, problem in _lines(name, f):
                if not line.strip() and problem is None:
                    continue
                index += 1
                where = f"{name}:{n}"
                if problem is not None:
                    yield BadInput(problem, line, where)
                    continue
                obj = json_line(line, where)
                if isinstance(obj, BadInput):
                    yield obj
                    continue
                if not isinstance(obj, dict):
                    yield BadInput("a record must be a JSON object", line.rstrip("\r\n"), where)
                    continue
                yield record_from_object(obj, str(index), where)
        finally:
            if str(self.path) == "-":
                if isinstance(f, io.TextIOWrapper) and f is not sys.stdin:
                    f.detach()  # leave stdin itself open
            else:
                f.close()


class SyntheticSource:
    """A river synthetic generator by class name, or ``sea_drift``.

    ``sea_drift`` cycles SEA's four concepts, switching abruptly every
    ``period`` records, with ``noise`` label noise; it never ends.

    >>> src = SyntheticSource("Hyperplane", seed=3, n_features=4)
    >>> len(next(iter(src)).features)
    4
    """

    def __init__(self, name: str = "sea_drift", seed: int | None = 42, **params: Any):
        from river.datasets import synth

        self.name = name
        self.seed = seed
        self.params = params
        if name != "sea_drift" and not hasattr(synth, name):
            choices = sorted(c for c in dir(synth) if c[:1].isupper())
            raise ValueError(
                f"unknown synthetic stream {name!r}; "
                f"choose sea_drift or one of {', '.join(choices)}"
            )

    def _stream(self) -> Iterator[tuple[dict, Any]]:
        from river.datasets import synth

        if self.name == "sea_drift":
            period = int(self.params.get("period", 10_000))
            noise = float(self.params.get("noise", 0.05))
            block = 0
            while True:
                gen = synth.SEA(variant=block % 4, noise=noise, seed=(self.seed or 0) + block)
                yield from gen.take(period)
                block += 1
        yield from getattr(synth, self.name)(seed=self.seed, **self.params)

    def __iter__(self) -> Iterator[Record]:
        # river's generators name features 0, 1, ...; text names keep JSON and
        # the schema check simple
        for i, (x, y) in enumerate(self._stream()):
            yield Record(id=str(i), features={str(k): v for k, v in x.items()}, label=y)


class RiverDataset:
    """A dataset that ships inside river (no download), e.g. ``Phishing``."""

    def __init__(self, name: str):
        from river import datasets

        cls = getattr(datasets, name, None)
        if cls is None:
            raise ValueError(f"river has no dataset named {name!r}")
        self.dataset = cls()
        if not getattr(self.dataset, "path", None) or not Path(self.dataset.path).exists():
            raise ValueError(f"river dataset {name!r} is not bundled (it needs a download)")

    def __iter__(self) -> Iterator[Record]:
        for i, (x, y) in enumerate(self.dataset):
            yield Record(id=str(i), features=x, label=y)


def open_source(spec: str, seed: int | None = 42, **params: Any) -> Iterable[Record | BadInput]:
    """Build a source from its spec string (see the module docstring)."""
    if spec.startswith("synth:"):
        return SyntheticSource(spec[6:], seed=seed, **params)
    if spec.startswith("river:"):
        return RiverDataset(spec[6:])
    lower = spec.lower()
    if spec == "-" or lower.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json")):
        return JsonlSource(spec)
    if lower.endswith((".csv", ".csv.gz")):
        return CsvSource(spec, **params)
    scheme = spec.split(":", 1)[0] if ":" in spec else None
    if scheme:
        for ep in entry_points(group="streamal.sources"):
            if ep.name == scheme:
                return ep.load()(spec, **params)
    raise ValueError(
        f"cannot open source {spec!r}: expected synth:NAME, river:NAME, a .csv[.gz] or "
        ".jsonl[.gz] file, '-' for stdin, or a registered connector scheme"
    )


def read_labelled(path: str | Path, limit: int | None = None) -> tuple[list[dict], list[Any], int]:
    """Load a labelled CSV for replay: (features, labels, rows skipped as malformed).

    Rows with a bad field count, no label, or a NaN are skipped and counted.
    """
    xs: list[dict] = []
    ys: list[Any] = []
    skipped = 0
    for rec in CsvSource(path):
        if limit is not None and len(xs) >= limit:
            break
        if (
            isinstance(rec, BadInput)
            or rec.label in (None, "")
            or any(isinstance(v, float) and not math.isfinite(v) for v in rec.features.values())
        ):
            skipped += 1
            continue
        xs.append(rec.features)
        ys.append(rec.label)
    return xs, ys, skipped
