"""Where a stream dealt to several partitions loses accuracy, with the model shared.

Runs ``streamal replay`` on one dataset at one budget in layouts that each
change one piece of the per-partition state, and prints the accuracy of the
default strategy and of random sampling in each:

* 1 partition;
* P partitions, dealt round-robin, by a hash of the position, by a column;
* P partitions with the quantile filter's windows shortened (``w``);
* P partitions sharing one strategy object (an experiment, not a layout the
  daemon can run: it would need every record's utility in every process).

Run: python benchmarks/partition_gap.py [DATASET] [--budget 0.05] [--seeds 3]
     [--partitions 6] [--column day]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

import streamal.evaluation as evaluation
from streamal import cli
from streamal.strategies import per_class

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def one_strategy_for(partitions: int):
    """Every run's partitions get the same strategy object."""
    real = evaluation.get_strategy
    made = {"n": 0, "strategy": None}

    def shared(*args, **kwargs):
        if made["n"] % partitions == 0:
            made["strategy"] = real(*args, **kwargs)
        made["n"] += 1
        return made["strategy"]

    evaluation.get_strategy = shared
    try:
        yield
    finally:
        evaluation.get_strategy = real


@contextlib.contextmanager
def windows(w: int):
    """The per-class quantile filter's window (and tolerance, in proportion) set to ``w``."""
    init = per_class.PerClassQuantileFilter.__init__
    saved = init.__defaults__
    init.__defaults__ = (saved[0], w, saved[2] * w / saved[1])
    try:
        yield
    finally:
        init.__defaults__ = saved


def replay(dataset: str, budget: float, seeds: int, *extra: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        args = ["replay", dataset, "--budget", str(budget), "--seeds", str(seeds),
                "--no-progress", "--json", str(out), *extra]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(args)
        (result,) = json.loads(out.read_text())["results"]
    return {row["strategy"]: row for row in result["summary"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", default=str(HERE / "datasets" / "elec2.csv.gz"))
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--column", default="day", help="a column to deal by, as a key")
    parser.add_argument("--max-records", type=int, default=0, help="records read (0: all)")
    args = parser.parse_args()
    p = str(args.partitions)
    layouts = [
        ("1 partition", [], contextlib.nullcontext()),
        (f"{p}, round-robin", ["--partitions", p], contextlib.nullcontext()),
        (f"{p}, by a hash of the position", ["--partitions", p, "--partition-by", "hash"],
         contextlib.nullcontext()),
        (f"{p}, by the {args.column} column", ["--partitions", p, "--partition-by", args.column],
         contextlib.nullcontext()),
        (f"{p}, quantile windows w 17", ["--partitions", p], windows(17)),
        (f"{p}, quantile windows w 50", ["--partitions", p], windows(50)),
        (f"{p}, one strategy for all", ["--partitions", p], one_strategy_for(args.partitions)),
    ]  # fmt: skip
    print(f"{Path(args.dataset).name}, budget {args.budget:g}, {args.seeds} seeds, one model "
          "shared by the partitions", flush=True)  # fmt: skip
    for name, extra, context in layouts:
        with context:
            rows = replay(args.dataset, args.budget, args.seeds, *extra,
                          "--max-records", str(args.max_records))  # fmt: skip
        default = next(r for s, r in rows.items() if s not in ("random_sampling", "all_labels"))
        rand = rows["random_sampling"]
        print(f"{name:<34} {default['accuracy']:.4f} ±{default['accuracy_std']:.4f} "
              f"(random {rand['accuracy']:.4f}), labels used {default['labels_used']:.2%}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
