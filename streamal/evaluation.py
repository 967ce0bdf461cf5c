"""Replay: prequential evaluation of strategies on a labelled stream.

Every record is first predicted (test), then, if the strategy asks for its
label, learned from (train) - at once or ``delay`` records later. The
accuracy counts every record, so it shows what the labels bought. Each
strategy is set beside random sampling at the same budget and learning on
every label.

>>> from river.datasets import synth
>>> data = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=1).take(2000)]
>>> xs, ys = [x for x, _ in data], [y for _, y in data]
>>> r = run_strategy(xs, ys, "variable_uncertainty", budget=0.1, seed=0)
>>> r.labels_used <= 0.1 + 1 / 2000 and r.accuracy > 0.7
True
"""

from __future__ import annotations

import statistics
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from streamal.drift import make_drift_monitor
from streamal.learner import EXPLORATION_SHARE, ActiveLearner
from streamal.model import CLIP, MODELS, Classifier, make_model
from streamal.records import Record
from streamal.simulate import SimulatedAnnotator
from streamal.strategies import get as get_strategy
from streamal.strategies import takes_seed

__all__ = [
    "RunResult",
    "run_strategy",
    "run_all_labels",
    "replay",
    "label_efficiency",
    "format_table",
    "format_efficiency",
    "Progress",
]

RANDOM = "random_sampling"
ALL_LABELS = "all_labels"


@dataclass
class RunResult:
    strategy: str
    seed: int | None
    accuracy: float
    labels_used: float
    records: int
    queries: int
    drift_detections: int
    seconds: float
    #: the learner's own importance-weighted accuracy, what it reports live
    estimated_accuracy: float | None = None
    #: annotator id -> the learner's reliability estimate at the end (noisy teams)
    annotators: dict[str, float] = field(default_factory=dict)
    #: snapshots along the stream, for plots: position, running accuracy,
    #: labels used so far, the strategy's threshold, drift detections so far
    trace: dict[str, list] = field(default_factory=dict)


TRACE_POINTS = 200


class _Trace:
    """Snapshots every ``n / TRACE_POINTS`` records."""

    def __init__(self, n: int):
        self.every = max(1, n // TRACE_POINTS)
        self.columns: dict[str, list] = {
            "position": [], "accuracy": [], "labels": [], "threshold": [], "drifts": []
        }  # fmt: skip

    def add(self, position: int, correct: int, labels: int, threshold: Any, drifts: int) -> None:
        c = self.columns
        c["position"].append(position)
        c["accuracy"].append(correct / position)
        c["labels"].append(labels)
        c["threshold"].append(threshold)
        c["drifts"].append(drifts)


class Progress:
    """A one-line progress bar on a terminal; silent when ``out`` is not one."""

    def __init__(self, total: int, out: TextIO | None = None, force: bool = False):
        self.total = max(total, 1)
        self.out = out or sys.stderr
        self.enabled = force or (hasattr(self.out, "isatty") and self.out.isatty())
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0

    def advance(self, n: int, label: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        frac = min(self.done / self.total, 1.0)
        elapsed = now - self.started
        eta = elapsed / frac - elapsed if frac > 0 else 0
        bar = "#" * int(30 * frac)
        self.out.write(f"\r[{bar:<30}] {frac:6.1%} eta {eta:5.0f}s {label[:40]:<40}")
        if self.done >= self.total:
            self.out.write("\n")
        self.out.flush()


def _classes(ys: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(ys))


def _ticking(
    xs: Sequence[dict], ys: Sequence[Any], on_progress: Callable[[int], None] | None
) -> Iterator[tuple[int, tuple[dict, Any]]]:
    """``enumerate(zip(xs, ys))`` that reports progress every 1000 records."""
    for i, pair in enumerate(zip(xs, ys, strict=True)):
        yield i, pair
        if on_progress is not None and i % 1000 == 999:
            on_progress(1000)
    if on_progress is not None:
        on_progress(len(ys) % 1000)


def run_strategy(
    xs: Sequence[dict],
    ys: Sequence[Any],
    strategy: str,
    *,
    budget: float = 0.1,
    seed: int | None = 0,
    delay: int = 0,
    model: str = MODELS[0],
    clip: float | None = CLIP,
    drift: str = "adwin",
    exploration: float = 0.0,
    noises: Sequence[float] = (),
    partitions: int = 1,
    shared_model: bool = True,
    partition_by: str = "round-robin",
    on_progress: Callable[[int], None] | None = None,
    **learner_options: Any,
) -> RunResult:
    """Prequential run of one strategy (by name) over a labelled stream.

    ``partitions``: the records are dealt to that many partitions, each with
    a learner of its own (strategy, budget cap, pending requests), as the
    Kafka daemon keeps one a partition; with ``shared_model`` their model is
    one, learning every partition's labels, otherwise each partition's model
    learns its own labels only. ``partition_by`` deals them: ``round-robin``,
    ``hash`` (a hash of each record's position, as Kafka's partitioner
    spreads unique keys) or a feature's name (a hash of its value, as a key
    column).

    ``noises``: the labels come from simulated annotators with these noise
    rates (each request to one of them at random, the label tagged with
    its id when there are several) instead of being the true ones; the
    accuracy is still counted against the true labels. ``learner_options``
    go to ``ActiveLearner`` (``drift_boost``, ``background``,
    ``confidence_drift``, ``second_opinion_below`` ...).
    """
    classes = _classes(ys)
    # the random baseline spends the whole budget (bounded by the cap), not
    # the 88 % of it that the windowed estimate lets through
    params = {"w": None} if strategy == RANDOM else {}
    if strategy == RANDOM:  # the baseline stays plain random sampling
        learner_options = {**learner_options, "late_exploration": 0.0, "exploration_share": 0.0}
    if not 0 <= exploration < budget:
        raise ValueError(f"exploration must be in [0, budget), got {exploration}")
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    shared = None
    if partitions > 1 and shared_model:
        if learner_options.get("background"):
            raise ValueError("a background model swaps one partition's model: not with a "
                             "model shared by the partitions")  # fmt: skip
        unsupervised = learner_options.get("unsupervised", "labelled")
        shared = Classifier(make_model(model, len(classes), clip=clip), classes,
                            unsupervised=unsupervised)  # fmt: skip

    def partition_learner(p: int) -> ActiveLearner:
        own_seed = seed if p == 0 or seed is None else seed + 7919 * p
        return ActiveLearner(
            model=shared or make_model(model, len(classes), clip=clip),
            # exploring labels come out of the budget: the strategy gets the rest
            strategy=get_strategy(strategy, budget=budget - exploration, seed=own_seed, **params),
            classes=classes,
            drift=make_drift_monitor(drift, own_seed),
            exploration=exploration,
            seed=own_seed,
            pending_ttl=None,
            max_pending=10**9,
            clock=lambda: 0.0,
            **learner_options,
        )

    learners = [partition_learner(p) for p in range(partitions)]
    learner = learners[0]
    waiting: deque[tuple[int, str, Any]] = deque()
    team = _annotators(noises, delay, seed)
    tagged = team is not None and len(team.team) > 1
    correct = 0
    started = time.perf_counter()
    if partitions == 1:
        decide, learn = learner.decide, learner.learn
    else:
        dealt = deal(xs, partitions, partition_by)

        def decide(record: Record, now: int) -> Any:
            return learners[dealt[now]].decide(record, now=now)

        def learn(request_id: str, label: Any, now: int, annotator: Any = None) -> str:
            # request ids are "q-" and the record's position: its partition
            owner = learners[dealt[int(request_id[2:])]]
            return owner.learn(request_id, label, now=now, annotator=annotator)

    trace = _Trace(len(ys))

    def take_answers(now: int) -> None:
        for label in team.poll(now=now):
            learn(label.request_id, label.label, now=now,
                  annotator=label.annotator if tagged else None)  # fmt: skip

    for i, (x, y) in _ticking(xs, ys, on_progress):
        if team is not None:
            take_answers(i)
            for each in learners:
                for request, first in each.take_second_opinions():
                    team.ask_again(request.request_id, now=i, exclude=first)
        while waiting and waiting[0][0] <= i:
            _, request_id, label = waiting.popleft()
            learn(request_id, label, now=i)
        d = decide(Record(str(i), x), now=i)
        correct += d.prediction == y
        if d.query:
            if team is not None:
                team.submit(d.request_id, y, now=i)
                if not delay:
                    take_answers(i)
            elif delay:
                waiting.append((i + delay, d.request_id, y))
            else:
                learn(d.request_id, y, now=i)
        if (i + 1) % trace.every == 0 or i + 1 == len(ys):
            asked = sum(each.n_queries for each in learners)
            drifts = sum(each.drift_detections for each in learners)
            trace.add(i + 1, correct, asked, learner.threshold, drifts)
    n = len(ys)
    queries = sum(each.n_queries for each in learners)
    estimates = [(each.weighted_accuracy, each.n_records) for each in learners
                 if each.weighted_accuracy is not None]  # fmt: skip
    estimate = (sum(a * w for a, w in estimates) / sum(w for _, w in estimates)
                if estimates else None)  # fmt: skip
    return RunResult(
        strategy,
        seed,
        correct / n if n else 0.0,
        queries / n if n else 0.0,
        n,
        queries,
        sum(each.drift_detections for each in learners),
        time.perf_counter() - started,
        estimate,
        learner.annotators.snapshot(),  # the first partition's view of the annotators
        trace=trace.columns,
    )


def deal(xs: Sequence[dict], partitions: int, by: str = "round-robin") -> list[int]:
    """The partition of each record: ``round-robin``, ``hash`` of its position,
    or the hash of a feature's value (CRC-32, the same on every run).

    >>> deal([{"k": "a"}, {"k": "up"}, {"k": "a"}], 2, "k")
    [1, 0, 1]
    >>> deal([{}] * 5, 2)
    [0, 1, 0, 1, 0]
    """
    if by == "round-robin":
        return [i % partitions for i in range(len(xs))]
    if by == "hash":
        return [zlib.crc32(str(i).encode()) % partitions for i in range(len(xs))]
    if xs and by not in xs[0]:
        raise ValueError(f"partition by {by!r}: no such feature; the features are "
                         f"{', '.join(sorted(xs[0]))}")  # fmt: skip
    return [zlib.crc32(str(x.get(by)).encode()) % partitions for x in xs]


def run_all_labels(
    xs: Sequence[dict],
    ys: Sequence[Any],
    *,
    model: str = MODELS[0],
    clip: float | None = CLIP,
    delay: int = 0,
    noises: Sequence[float] = (),
    seed: int | None = 0,
    unsupervised: str = "labelled",
    on_progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Prequential run that learns every label: the ceiling a budget aims at.

    With ``noises``, every label comes from the simulated annotators, as in
    ``run_strategy``. ``unsupervised`` as in ``ActiveLearner``.
    """
    classes = _classes(ys)
    clf = Classifier(make_model(model, len(classes), clip=clip), classes, unsupervised=unsupervised)
    waiting: deque[tuple[int, dict, Any]] = deque()
    team = _annotators(noises, 0, seed)
    correct = 0
    started = time.perf_counter()
    trace = _Trace(len(ys))
    for i, (x, y) in _ticking(xs, ys, on_progress):
        while waiting and waiting[0][0] <= i:
            _, wx, wy = waiting.popleft()
            clf.learn_one(wx, wy)
        proba = clf.predict_proba_one(x)
        correct += bool(proba) and max(proba, key=proba.__getitem__) == y
        if team is not None:
            team.submit("", y, now=0)
            (answer,) = team.poll(now=0)
            y = answer.label
        if delay:
            waiting.append((i + delay, x, y))
        else:
            clf.learn_one(x, y)
        if (i + 1) % trace.every == 0 or i + 1 == len(ys):
            trace.add(i + 1, correct, i + 1, None, 0)
    n = len(ys)
    return RunResult(
        ALL_LABELS, seed if team is not None else None, correct / n if n else 0.0, 1.0, n, n, 0,
        time.perf_counter() - started, None, trace=trace.columns,
    )  # fmt: skip


def _annotators(noises: Sequence[float], delay: int, seed: int | None) -> SimulatedAnnotator | None:
    """Simulated annotators with these noise rates; None for exact labels."""
    if not noises:
        return None
    return SimulatedAnnotator(delay=delay, seed=seed, noises=list(noises))


def replay(
    xs: Sequence[dict],
    ys: Sequence[Any],
    strategies: Sequence[str],
    *,
    budget: float = 0.1,
    seeds: int = 1,
    delay: int = 0,
    model: str = MODELS[0],
    clip: float | None = CLIP,
    drift: str = "adwin",
    exploration: float = 0.0,
    noises: Sequence[float] = (),
    partitions: int = 1,
    shared_model: bool = True,
    partition_by: str = "round-robin",
    progress: Progress | None = None,
    every_label: dict[tuple, RunResult] | None = None,
    **learner_options: Any,
) -> dict[str, Any]:
    """Run strategies x seeds, random sampling x seeds and all labels once.

    ``every_label`` is a cache of the every-label runs, which do not depend
    on the budget: pass one dict to the replays of one file at several
    budgets and each such run is made once.

    Deterministic strategies run once whatever ``seeds`` is: every seed
    would give the same decisions. With exploration, a drift boost, late
    labels (``delay``, unless ``late_exploration=0``) or noisy annotators
    (``noises``, see ``run_strategy``) every strategy draws, so each runs
    under every seed; with noisy annotators learning on every label does
    too. ``partitions``, ``shared_model`` and ``partition_by`` as in ``run_strategy`` (learning
    on every label is one model whatever they are). ``learner_options`` go to
    every learner and into the result.
    """
    plan, every_label_seeds = _seed_plan(
        strategies, seeds, exploration, learner_options.get("drift_boost", 1.0), any(noises),
        delay, learner_options.get("late_exploration", 0.5),
        learner_options.get("exploration_share", EXPLORATION_SHARE),
    )  # fmt: skip
    names = [name for name, _ in plan]
    runs: list[RunResult] = []
    step = progress.advance if progress is not None else None
    for name, name_seeds in plan:
        for seed in name_seeds:
            runs.append(
                run_strategy(
                    xs, ys, name, budget=budget, seed=seed, delay=delay, model=model, clip=clip,
                    drift=drift, exploration=exploration, noises=noises, partitions=partitions,
                    shared_model=shared_model, partition_by=partition_by, on_progress=step,
                    **learner_options,
                )
            )  # fmt: skip
    cache = every_label if every_label is not None else {}
    unsupervised = learner_options.get("unsupervised", "labelled")
    for seed in every_label_seeds:
        key = (seed, model, clip, delay, tuple(noises), unsupervised)
        if key not in cache:
            cache[key] = run_all_labels(
                xs, ys, model=model, clip=clip, delay=delay, noises=noises, seed=seed,
                unsupervised=unsupervised, on_progress=step,
            )  # fmt: skip
        elif step is not None:
            step(len(ys))
        runs.append(cache[key])
    summary = []
    for name in [*names, ALL_LABELS]:
        mine = [r for r in runs if r.strategy == name]
        accs = [r.accuracy for r in mine]
        estimates = [r.estimated_accuracy for r in mine if r.estimated_accuracy is not None]
        errors = [
            r.estimated_accuracy - r.accuracy for r in mine if r.estimated_accuracy is not None
        ]
        summary.append(
            {
                "strategy": name,
                "accuracy": statistics.fmean(accs),
                "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "estimated_accuracy": statistics.fmean(estimates) if estimates else None,
                "estimate_error": statistics.fmean(errors) if errors else None,
                "labels_used": statistics.fmean(r.labels_used for r in mine),
                "runs": len(mine),
                "drift_detections": statistics.fmean(r.drift_detections for r in mine),
            }
        )
    random_acc = summary[names.index(RANDOM)]["accuracy"]
    for row in summary:
        row["efficiency"] = label_efficiency(row["accuracy"], random_acc, summary[-1]["accuracy"])
    return {
        "budget": budget,
        "seeds": seeds,
        "delay": delay,
        "model": model,
        "clip": clip,
        "drift": drift,
        "exploration": exploration,
        "noises": list(noises),
        "partitions": partitions,
        "partition_models": "shared" if shared_model else "own",
        "partition_by": partition_by,
        **learner_options,
        "records": len(ys),
        "summary": summary,
        "runs": [asdict(r) for r in runs],
    }


#: label efficiency is defined where every label beats random sampling by this much
MIN_GAP = 0.02


def label_efficiency(accuracy: float, random: float, every_label: float) -> float | None:
    """Share of the gap between random sampling and every label that a strategy closes.

    ``None`` where every label beats random sampling by less than ``MIN_GAP``:
    there the ratio would only magnify noise.

    >>> round(label_efficiency(0.80, random=0.78, every_label=0.84), 3)
    0.333
    >>> label_efficiency(0.80, random=0.78, every_label=0.79) is None
    True
    """
    gap = every_label - random
    return (accuracy - random) / gap if gap >= MIN_GAP else None


def _seed_plan(
    strategies: Sequence[str],
    seeds: int,
    exploration: float,
    drift_boost: float,
    noisy: bool,
    delay: int,
    late_exploration: float,
    exploration_share: float = EXPLORATION_SHARE,
) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """The seeds each strategy (random sampling included) runs under, and every label's.

    A run goes under every seed when its decisions or labels depend on it.
    """
    # late labels move budget to exploration (a draw), unless that is turned off
    draws = (exploration > 0 or exploration_share > 0 or drift_boost > 1.0 or noisy
             or bool(delay and late_exploration))  # fmt: skip
    every = list(range(seeds))
    names = dict.fromkeys([*strategies, RANDOM])
    plan = [(name, every if draws or takes_seed(name) else [0]) for name in names]
    return plan, every if noisy else [0]


def runs_needed(
    strategies: Sequence[str],
    seeds: int,
    exploration: float = 0.0,
    drift_boost: float = 1.0,
    noisy: bool = False,
    delay: int = 0,
    late_exploration: float = 0.5,
    exploration_share: float = EXPLORATION_SHARE,
) -> int:
    """How many runs ``replay`` makes with these settings (for a progress bar)."""
    plan, every_label_seeds = _seed_plan(
        strategies, seeds, exploration, drift_boost, noisy, delay, late_exploration,
        exploration_share,
    )  # fmt: skip
    return sum(len(name_seeds) for _, name_seeds in plan) + len(every_label_seeds)


def format_table(result: dict[str, Any], title: str = "") -> str:
    """The summary as an aligned text table.

    ``estimate`` is what the learner reports live (accuracy weighted by
    inverse query probability) and ``error`` its distance from the true
    prequential accuracy; ``efficiency`` is the label efficiency.
    """
    rows = result["summary"]
    random_acc = next(r["accuracy"] for r in rows if r["strategy"] == RANDOM)
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"{result['records']:,} records, budget {result['budget']:.0%}, "
        f"{result['seeds']} seed(s), label delay {result['delay']} records, model {result['model']}"
        + (f", exploration {result['exploration']:g}" if result.get("exploration") else "")
        + (f", late exploration up to {result.get('late_exploration', 0.5):g}"
           if result["delay"] and result.get("late_exploration", 0.5) else "")
        + (f", annotator noise {','.join(f'{n:g}' for n in result['noises'])}"
           if result.get("noises") else "")
        + (f", {result['partitions']} partitions, "
           + ("one model shared" if result['partition_models'] == "shared" else "a model each")
           if result.get("partitions", 1) > 1 else "")
    )  # fmt: skip
    header = (
        f"{'strategy':<38} {'accuracy':>16} {'estimate':>9} {'error':>7} {'labels used':>12} "
        f"{'vs random':>10} {'efficiency':>10}"
    )
    lines += [header, "-" * len(header)]
    for r in rows:
        acc = f"{r['accuracy']:.4f}"
        if r["runs"] > 1:
            acc += f" ±{r['accuracy_std']:.4f}"
        est, err, eff = r.get("estimated_accuracy"), r.get("estimate_error"), r.get("efficiency")
        lines.append(
            f"{r['strategy']:<38} {acc:>16} {_num(est, '.4f'):>9} {_num(err, '+.3f'):>7} "
            f"{r['labels_used']:>12.2%} {r['accuracy'] - random_acc:>+10.4f} "
            f"{_num(eff, '+.2f'):>10}"
        )
    return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_efficiency(results: list[dict[str, Any]]) -> str:
    """Label efficiency per dataset and budget, one column per strategy, and the mean."""
    names = [
        r["strategy"] for r in results[0]["summary"] if r["strategy"] not in (RANDOM, ALL_LABELS)
    ]
    header = f"{'dataset':<24} {'budget':>6} " + " ".join(f"{n[:24]:>24}" for n in names)
    lines = ["label efficiency (accuracy - random) / (every label - random)", header,
             "-" * len(header)]  # fmt: skip
    cells: dict[str, list[float]] = {n: [] for n in names}
    for result in results:
        by_name = {r["strategy"]: r for r in result["summary"]}
        row = f"{result.get('dataset', ''):<24} {result['budget']:>6.0%} "
        for n in names:
            eff = by_name[n]["efficiency"]
            if eff is not None:
                cells[n].append(eff)
            row += f" {_num(eff, '+.3f') if eff is not None else 'n/a (gap < 2 pt)':>24}"
        lines.append(row)
    means = [_num(statistics.fmean(v) if v else None, "+.3f") for v in cells.values()]
    lines.append(f"{'mean where defined':<31} " + " ".join(f"{m:>24}" for m in means))
    return "\n".join(lines)
