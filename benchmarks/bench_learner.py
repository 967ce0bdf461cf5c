"""Speed of the learner, measured side by side with the bare river loop.

Prints two ratios, each from runs interleaved in one process (median of
``--repeats``), because absolute timings on shared machines are noise:

1. records/s of ``ActiveLearner`` (variable uncertainty, budget cap, ADWIN,
   pending table, metrics collector) divided by records/s of the bare river
   loop: ``predict_proba_one`` on every record, ``learn_one`` on the same
   queried records. The two run in alternating chunks of 500 records, so
   both meet the same machine noise. Measured for ``decide`` (one record,
   then its label) and for ``decide_many`` (a chunk, then its labels). Both
   score the default model family faster than its pipeline does, with the
   same results (``streamal.fast_scoring``: one record from a snapshot of
   the parameters, a chunk in a few numpy passes), where the bare loop calls
   the pipeline per record. Target >= 0.85. As references, a minimal Python
   ``decide`` against the same loop, and the learner against a bare loop
   that scores as fast as it does: what the learner's own work costs.
2. time per record of scikit-activeml's variable-uncertainty query+update
   divided by ours (``VariableUncertainty.ask``) on the same utilities.
   Target >= 100.

Run: python benchmarks/bench_learner.py [--records 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from prometheus_client import CollectorRegistry
from river import linear_model, preprocessing
from river.datasets import synth

from streamal import ActiveLearner, Classifier, Decision, Record, VariableUncertainty, default_model
from streamal.fast_scoring import LogisticSnapshot, positive_probabilities
from streamal.metrics import Metrics


def make_model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def make_learner():
    # labels of a batch come up to 500 records late, which would move half the
    # budget to exploration, and a twentieth of it goes there by default: both kept
    # off, so both loops query by variable uncertainty. The scaler learns from
    # the labelled records only, as in the bare loop, so that both do the same
    # model work.
    learner = ActiveLearner(
        model=make_model(), strategy=VariableUncertainty(budget=0.1), late_exploration=0.0,
        exploration_share=0.0, unsupervised="labelled",
    )  # fmt: skip
    Metrics(CollectorRegistry(), learner)
    return learner


class MinimalDecide:
    """The least a Python ``decide`` can do: no cap, drift, counters or checks.

    Model call, argmax, ``VariableUncertainty.ask``, a dict of pending
    requests and a ``Decision``: a reference for what deciding costs in
    Python before any of the learner's guarantees. ``decide_many`` is the
    same for a batch, with a ``Decision`` made for the queried records only.
    """

    def __init__(self):
        self.model = make_model()
        self.strategy = VariableUncertainty(budget=0.1)
        self.pending = {}
        self.n_queries = 0

    def decide(self, record, now=None):
        proba = self.model.predict_proba_one(record.features)
        prediction, confidence = None, 0.0
        for label, p in proba.items():
            if p > confidence or prediction is None:
                prediction, confidence = label, p
        utility = 1.0 - confidence
        query = self.strategy.ask(utility)
        request_id = None
        if query:
            self.n_queries += 1
            request_id = "q-" + record.id
            self.pending[request_id] = record.features
        return Decision(record.id, query, request_id, utility, confidence, prediction, proba,
                        self.strategy.query_probability)  # fmt: skip

    def decide_many(self, records, now=None):
        predict, ask, pending = self.model.predict_proba_one, self.strategy.ask, self.pending
        queried = []
        for j, record in enumerate(records):
            proba = predict(record.features)
            confidence = max(proba.values()) if proba else 0.0
            if ask(1.0 - confidence):
                request_id = "q-" + record.id
                pending[request_id] = record.features
                queried.append((j, Decision(record.id, True, request_id, 1.0 - confidence,
                                            confidence, None, proba, 1.0)))  # fmt: skip
        self.n_queries += len(queried)
        return _Queried(queried)

    def learn(self, request_id, label, now=None):
        self.model.learn_one(self.pending.pop(request_id), label)


class _Queried(list):
    def queried(self):
        return self


def queried_by_learner(stream, batch, chunk=500, make=make_learner):
    """The records the learner queries (an untimed run): the bare loop learns on them."""
    return side_by_side(stream, batch, None, chunk, make)[3]


def side_by_side(stream, batch, queried, chunk=500, make=make_learner, bare_fast=False):
    """Alternate chunks of the learner and of the bare loop over the same records.

    Both see the same stretches of machine noise. Which of the two reads a
    chunk first alternates from chunk to chunk: the first finds the records
    out of the CPU caches, the second finds them in, which is worth several
    microseconds a label.
    """
    model = make_model()
    snapshot = LogisticSnapshot.of(model)  # for a bare loop that scores as decide does
    learner = make()
    records = [Record(str(i), x) for i, (x, _) in enumerate(stream)]
    decide, learn = learner.decide, learner.learn
    decide_many = learner.decide_many
    clock = time.process_time
    made: list[int] = []

    def run_learner(part):
        t0 = clock()
        if batch:
            for j, d in decide_many(
                records[part.start : part.stop], now=float(part.start)
            ).queried():
                learn(d.request_id, stream[part.start + j][1], now=float(part.start))
                made.append(part.start + j)
        else:
            for i in part:
                d = decide(records[i], now=float(i))
                if d.query:
                    learn(d.request_id, stream[i][1], now=float(i))
                    made.append(i)
        return clock() - t0

    def run_bare(part):
        t0 = clock()
        if bare_fast and batch:  # the chunk scored as decide_many scores it, then its labels
            positive_probabilities(model, [stream[i][0] for i in part])
            for i in part:
                if i in queried:
                    model.learn_one(*stream[i])
            return clock() - t0
        if bare_fast:  # each record scored as decide scores it
            score, learned = snapshot.score, snapshot.learned
            for i in part:
                x, y = stream[i]
                score(x)
                if i in queried:
                    model.learn_one(x, y)
                    learned(x)
            return clock() - t0
        for i in part:
            x, y = stream[i]
            model.predict_proba_one(x)
            if i in queried:
                model.learn_one(x, y)
        return clock() - t0

    t_learner = t_bare = 0.0
    for k, start in enumerate(range(0, len(stream), chunk)):
        part = range(start, min(start + chunk, len(stream)))
        if queried is None:  # the untimed run
            run_learner(part)
        elif k % 2 == 0:
            t_learner += run_learner(part)
            t_bare += run_bare(part)
        else:
            t_bare += run_bare(part)
            t_learner += run_learner(part)
    if queried is not None and set(made) != queried:
        raise AssertionError("the learner queried other records than in its untimed run")
    return t_learner, t_bare, learner.n_queries, set(made)


def timed_runs(stream, batch, repeats, make=make_learner, bare_fast=False):
    """``(learner seconds, bare seconds, labels learned)`` of each timed run."""
    queried = queried_by_learner(stream, batch, make=make)
    return [side_by_side(stream, batch, queried, make=make, bare_fast=bare_fast)[:3]
            for _ in range(repeats)]  # fmt: skip


def snapshot_scoring(stream, repeats, n_classes=2):
    """Median µs per record of the default model's snapshot and of its pipeline, interleaved.

    Scored after learning the first 1,000 records of ``stream``, on the rest.
    """
    model = default_model(n_classes)
    classifier = Classifier(model, classes=range(n_classes) if n_classes > 2 else None)
    for x, y in stream[:1000]:
        classifier.learn_one(x, y)
    xs = [x for x, _ in stream[1000:]]
    classifier.score(xs[0])  # takes the snapshot, which is the classifier's score from then on
    score, pipeline = classifier.score, model.predict_proba_one
    assert score(xs[0])[0] == pipeline(xs[0])  # the same model
    times = {score: [], pipeline: []}
    for _ in range(repeats):
        for f in (score, pipeline):
            start = time.perf_counter()
            for x in xs:
                f(x)
            times[f].append((time.perf_counter() - start) / len(xs) * 1e6)
    return statistics.median(times[score]), statistics.median(times[pipeline])


def spread(ratios):
    return f"range {min(ratios):.3f}-{max(ratios):.3f}"


def ask_per_record(utilities):
    s = VariableUncertainty(budget=0.1)
    ask = s.ask
    t0 = time.process_time()
    for u in utilities:
        ask(u)
    return (time.process_time() - t0) / len(utilities)


def skactiveml_per_record(utilities):
    from skactiveml.stream.budgetmanager import VariableUncertaintyBudgetManager

    bm = VariableUncertaintyBudgetManager(budget=0.1)
    t0 = time.process_time()
    for u in utilities:
        arr = np.array([u])
        q = bm.query_by_utility(arr)
        bm.update(arr.reshape(1, 1), q)
    return (time.process_time() - t0) / len(utilities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--utilities", type=int, default=5_000)
    args = parser.parse_args()

    stream = [
        ({f"x{k}": v for k, v in x.items()}, y)
        for x, y in synth.Hyperplane(seed=42, n_features=10).take(args.records)
    ]
    print(f"Hyperplane(n_features=10), {args.records:,} records, StandardScaler | "
          "LogisticRegression, budget 10%")  # fmt: skip
    for batch, name in ((False, "decide, one by one"), (True, "decide_many, 500 a batch")):
        runs = timed_runs(stream, batch, args.repeats)
        ratios = [t_bare / t_learner for t_learner, t_bare, _ in runs]
        print(f"{name} ({runs[-1][2]:,} labels learned)")
        print(f"  bare river loop      {args.records / min(r[1] for r in runs):>10,.0f} records/s")
        print(f"  streamal learner     {args.records / min(r[0] for r in runs):>10,.0f} records/s")
        print(f"  ratio learner/bare   {statistics.median(ratios):>10.3f}   (median of "
              f"{args.repeats}, {spread(ratios)}; target >= 0.85)")  # fmt: skip

    print("reference: a minimal decide in Python (model call, argmax, ask, Decision)")
    for batch, name in ((False, "one by one"), (True, "500 a batch")):
        runs = timed_runs(stream, batch, args.repeats, make=MinimalDecide)
        ratios = [t_bare / t_minimal for t_minimal, t_bare, _ in runs]
        print(f"  ratio minimal/bare   {statistics.median(ratios):>10.3f}   (median of "
              f"{args.repeats}, {spread(ratios)}), {name}")  # fmt: skip

    # the bare loop scoring as fast as the learner: what the learner's own work costs
    print("reference: the bare loop scoring as the learner does (streamal.fast_scoring)")
    for batch, name in ((False, "decide, one by one (a snapshot of the model)"),
                        (True, "decide_many, 500 a batch (numpy)")):  # fmt: skip
        runs = timed_runs(stream, batch, args.repeats, bare_fast=True)
        ratios = [t_bare / t_learner for t_learner, t_bare, _ in runs]
        print(f"  ratio learner/bare   {statistics.median(ratios):>10.3f}   (median of "
              f"{args.repeats}, {spread(ratios)}), {name}")  # fmt: skip

    print("reference: one record of the default (binned) model, scored after 1,000 labels")
    snapshot_us, pipeline_us = snapshot_scoring(stream, args.repeats)
    print(f"  snapshot {snapshot_us:.2f} us/record, its pipeline {pipeline_us:.2f} us/record: "
          f"{pipeline_us / snapshot_us:.1f}x")  # fmt: skip

    print("reference: one record of the default model of 7 classes (one-vs-rest), "
          "scored after 1,000 labels")  # fmt: skip
    classes = synth.RandomRBF(seed_model=1, seed_sample=2, n_classes=7, n_features=10)
    snapshot_us, pipeline_us = snapshot_scoring(list(classes.take(5000)), args.repeats, 7)
    print(f"  snapshot {snapshot_us:.2f} us/record, its pipeline {pipeline_us:.2f} us/record: "
          f"{pipeline_us / snapshot_us:.1f}x")  # fmt: skip

    rng = np.random.default_rng(0)
    utilities = [float(u) for u in rng.beta(2, 5, size=args.utilities)]
    ours = min(ask_per_record(utilities * 20) for _ in range(args.repeats))
    theirs = min(skactiveml_per_record(utilities) for _ in range(args.repeats))
    print("Variable uncertainty, one record at a time on precomputed utilities")
    print(f"  scikit-activeml query+update {theirs * 1e6:>10.2f} us/record")
    print(f"  streamal ask                 {ours * 1e6:>10.3f} us/record")
    print(f"  speed-up                     {theirs / ours:>10.0f}x   (target >= 100x)")


if __name__ == "__main__":
    main()
