"""Fetch a dataset too large to ship, from its public origin, and check it.

    python benchmarks/fetch_dataset.py covtype [--out benchmarks/datasets]

covtype comes out of scikit-multiflow 0.4.1's wheel on PyPI: the wheel's
sha256 is checked, ``covtype.csv`` is taken out of it, its label column
(``Cover_Type``) named ``label``, and it is written gzipped (mtime 0, no
name), the form of the other files in ``benchmarks/datasets``, whose sha256
is checked too. A mismatch at either step writes nothing and says which.
A file already there with the right sha256 is left alone.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

DATASETS = Path(__file__).resolve().parent / "datasets"


@dataclass(frozen=True)
class Origin:
    url: str
    sha256: str  # of what the URL serves
    member: str  # the CSV inside it
    result_sha256: str  # of the gzipped CSV written


ORIGINS = {
    "covtype": Origin(
        url="https://files.pythonhosted.org/packages/0b/32/11ca505fc79cade9892cd51b8bc34ba676fe"
        "a41c3349df187e681628fc00/scikit_multiflow-0.4.1-cp37-cp37m-manylinux1_x86_64.whl",
        sha256="17842a0719992871f66f2edd475c3cf947be73d16595cb28d9ec26a79cfc58de",
        member="skmultiflow/data/datasets/covtype.csv",
        result_sha256="5ad3624ba0a3aba29355f148240a27ed2d29ecf82545914128d730231e3d8271",
    ),
}


class FetchError(Exception):
    """A download that failed or does not match its sha256."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str, progress: bool) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            chunks, got = [], 0
            while chunk := response.read(1 << 20):
                chunks.append(chunk)
                got += len(chunk)
                if progress and total:
                    print(f"\r  {got / 2**20:5.1f} of {total / 2**20:.1f} MB", end="",
                          file=sys.stderr, flush=True)  # fmt: skip
            if progress and total:
                print(file=sys.stderr)
            return b"".join(chunks)
    except OSError as e:  # URLError and timeouts are OSErrors
        raise FetchError(f"cannot download {url}: {getattr(e, 'reason', e)}") from None


def fetch(name: str, out: Path = DATASETS, origin: Origin | None = None,
          progress: bool = False) -> Path:  # fmt: skip
    """Fetch dataset ``name`` into ``out``; returns the file written (or already there)."""
    origin = origin or ORIGINS.get(name)
    if origin is None:
        raise FetchError(f"no dataset named {name!r} to fetch; known: {', '.join(ORIGINS)}")
    target = Path(out) / f"{name}.csv.gz"
    if target.exists() and _sha256(target.read_bytes()) == origin.result_sha256:
        return target
    blob = _download(origin.url, progress)
    if _sha256(blob) != origin.sha256:
        raise FetchError(f"{origin.url}: sha256 {_sha256(blob)}, expected {origin.sha256}")
    try:
        csv = zipfile.ZipFile(io.BytesIO(blob)).read(origin.member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise FetchError(f"{origin.url}: no {origin.member} in it ({e})") from None
    header, _, rows = csv.partition(b"\n")
    columns = header.split(b",")
    header = b",".join([*columns[:-1], b"label"])  # the last column is the label
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(header + b"\n" + rows)
    data = buf.getvalue()
    if _sha256(data) != origin.result_sha256:
        raise FetchError(f"{target.name} as written: sha256 {_sha256(data)}, "
                         f"expected {origin.result_sha256}")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(ORIGINS), help="dataset to fetch")
    parser.add_argument("--out", type=Path, default=DATASETS, help="folder to write it to")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.name, args.out, progress=sys.stderr.isatty())
    except FetchError as e:
        print(f"fetch_dataset: error: {e}", file=sys.stderr)
        return 2
    print(f"{path} (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
