"""What the learner costs on your model and data, against the bare river loop.

The bare loop is what you would write without streamal: ``predict_proba_one``
on every record, ``learn_one`` on the records whose label was asked for (a
binary-only river model, such as a logistic regression, is given
``label != first class`` as a bool, as it wants).
The learner does that and everything else (strategy, budget cap, drift
monitor, pending requests, checks on the features). Both run on the same
records, with the same model built afresh, in alternating chunks, so they
meet the same stretches of machine noise; the learner's queried records
are found first in an untimed run, and the bare loop learns on exactly
those. Only the ratio of the two is worth reading on a busy machine.

>>> from river.datasets import synth
>>> from streamal.model import make_model
>>> data = list(synth.SEA(seed=1).take(2000))
>>> xs, ys = [x for x, _ in data], [y for _, y in data]
>>> result = compare_with_river(xs, ys, lambda: make_model(), budget=0.1, repeats=1)
>>> result.records, 150 <= result.labels <= 201
(2000, True)
>>> result.ratio() > 0
True
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamal.learner import ActiveLearner
from streamal.model import _is_binary_only
from streamal.records import Record

__all__ = ["SpeedResult", "compare_with_river"]


@dataclass
class SpeedResult:
    """Seconds of each timed run, for the learner and for the bare loop."""

    records: int
    labels: int
    batch: bool
    learner: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        """The learner's records/s over the bare loop's, run by run (above 1: faster)."""
        return [b / lrn for lrn, b in zip(self.learner, self.bare, strict=True)]

    def ratio(self) -> float:
        return statistics.median(self.ratios())

    def rate(self, which: str) -> float:
        """Median records/s of ``"learner"`` or ``"bare"``."""
        return self.records / statistics.median(getattr(self, which))


def compare_with_river(
    xs: Sequence[dict[str, Any]],
    ys: Sequence[Any],
    make_model: Callable[[], Any],
    *,
    budget: float = 0.1,
    strategy: str | None = None,
    batch: bool = True,
    repeats: int = 3,
    chunk: int = 500,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> SpeedResult:
    """Time the learner and the bare river loop side by side on ``xs``/``ys``.

    ``make_model`` builds the model afresh (a river classifier); ``batch``
    decides a chunk with ``decide_many``, else record by record with
    ``decide``. Every label is learned right after its chunk. ``on_progress``
    gets the records done, over ``repeats + 1`` passes.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if len(xs) != len(ys) or not xs:
        raise ValueError("xs and ys must be of the same, non-zero length")
    options = {"budget": budget, "seed": seed}
    if strategy is not None:
        options["strategy"] = strategy

    def make_learner() -> ActiveLearner:
        return ActiveLearner(model=make_model(), **options)

    records = [Record(str(i), x) for i, x in enumerate(xs)]
    queried = _pass(records, ys, make_learner(), None, None, batch, chunk, on_progress)
    # a binary-only river model learns bools: the bare loop gives it what it takes
    first = next(iter(ys))
    bare_ys = [y != first for y in ys] if _is_binary_only(make_model()) else ys
    result = SpeedResult(len(xs), len(queried), batch)
    for _ in range(repeats):
        times = [0.0, 0.0]
        again = _pass(records, ys, make_learner(), make_model(), (queried, times), batch, chunk,
                      on_progress, bare_ys)  # fmt: skip
        if again != queried:  # the learner is seeded: the same records every time
            raise RuntimeError("the learner asked about other records than in its first run")
        result.learner.append(times[0])
        result.bare.append(times[1])
    return result


def _pass(
    records: list[Record],
    ys: Sequence[Any],
    learner: ActiveLearner,
    model: Any,
    timed: tuple[set[int], list[float]] | None,
    batch: bool,
    chunk: int,
    on_progress: Callable[[int], None] | None,
    bare_ys: Sequence[Any] = (),
) -> set[int]:
    """One pass over the records; with ``timed``, the bare loop alternates with the learner."""
    clock = time.process_time
    made: set[int] = set()
    decide, decide_many, learn = learner.decide, learner.decide_many, learner.learn

    def run_learner(part: range) -> float:
        t0 = clock()
        if batch:
            now = float(part.start)
            for j, d in decide_many(records[part.start : part.stop], now=now).queried():
                learn(d.request_id, ys[part.start + j], now=now)
                made.add(part.start + j)
        else:
            for i in part:
                d = decide(records[i], now=float(i))
                if d.query:
                    learn(d.request_id, ys[i], now=float(i))
                    made.add(i)
        return clock() - t0

    def run_bare(part: range, queried: set[int]) -> float:
        t0 = clock()
        predict, learn_one = model.predict_proba_one, model.learn_one
        for i in part:
            x = records[i].features
            predict(x)
            if i in queried:
                learn_one(x, bare_ys[i])
        return clock() - t0

    for k, start in enumerate(range(0, len(records), chunk)):
        part = range(start, min(start + chunk, len(records)))
        if timed is None:
            run_learner(part)
        else:
            queried, times = timed
            # which of the two reads a chunk first alternates: the second finds it in the caches
            if k % 2 == 0:
                times[0] += run_learner(part)
                times[1] += run_bare(part, queried)
            else:
                times[1] += run_bare(part, queried)
                times[0] += run_learner(part)
        if on_progress is not None:
            on_progress(len(part))
    return made
