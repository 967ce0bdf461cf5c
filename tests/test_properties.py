"""Properties over arbitrary input: state round-trips, bad records never crash the loop."""

import math
import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river.datasets import synth

from streamal import ActiveLearner, Record, strategies
from streamal.engine import Engine
from streamal.sinks import CallableSink
from streamal.sources import IterableSource

STREAM = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=5).take(1500)]


def _play(learner, part, delay):
    out, waiting = [], []
    for i, (x, y) in part:
        d = learner.decide(Record(str(i), x), now=float(i))
        out.append((d.query, d.request_id, d.prediction, d.query_probability))
        if d.query:
            waiting.append((i + delay, d.request_id, y))
        while waiting and waiting[0][0] <= i:
            _, rid, label = waiting.pop(0)
            learner.learn(rid, label, now=float(i))
    return out, waiting


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(strategies.STRATEGIES)),
    split=st.integers(1, 1499),
    budget=st.sampled_from([0.05, 0.1, 0.3]),
    seed=st.integers(0, 10),
)
def test_state_round_trip_gives_the_same_decisions(name, split, budget, seed):
    indexed = list(enumerate(STREAM))
    expected, _ = _play(ActiveLearner(strategy=name, budget=budget, seed=seed), indexed, 0)
    first = ActiveLearner(strategy=name, budget=budget, seed=seed)
    got, _ = _play(first, indexed[:split], 0)
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(first.state())))
    rest, _ = _play(restored, indexed[split:], 0)
    assert got + rest == expected


feature_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.sampled_from([10**400, -(10**309)]),  # JSON integers too large for a float
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
records = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), feature_values, max_size=3),
    st.fixed_dictionaries(
        {
            "features": st.one_of(
                st.none(), st.integers(), st.dictionaries(st.text(max_size=3), feature_values)
            )
        },
        optional={
            "id": st.one_of(st.text(max_size=3), st.integers()),
            "ts": st.one_of(st.floats(), st.text(max_size=3)),
        },
    ),  # fmt: skip
    st.integers(),
    st.text(max_size=5),
)


@settings(max_examples=80, deadline=None)
@given(items=st.lists(records, max_size=40))
def test_bad_records_never_stop_the_loop(items):
    good = [{"a": float(i), "b": 1.0, "c": "x"} for i in range(5)]
    dead, requests = [], []
    engine = Engine(
        ActiveLearner(strategy=strategies.VariableUncertainty(budget=0.5)),
        IterableSource(good + items + good),
        requests=[CallableSink(requests.append)],
        dead_letters=CallableSink(dead.append),
    )
    stats = engine.run()
    assert stats.records == len(items) + 10
    assert engine.learner.n_records + len(dead) == stats.records
    assert all(d["reason"] and "\n" not in d["reason"] for d in dead)
    for r in requests:
        assert all(not (isinstance(v, float) and not math.isfinite(v))
                   for v in r["features"].values())  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.booleans()), min_size=1, max_size=60),
    st.data(),
)
def test_a_shared_model_saved_anywhere_and_taught_the_rest_is_the_model_taught_all(rows, data):
    """What makes the daemon's shared model exactly once: a replica saved at any
    offset and taught the examples after it equals one that learned them all."""
    import pickle

    from streamal.model import Classifier, default_model
    from streamal.shared_model import Example, SharedModel

    examples = [Example({"a": a, "b": b}, y) for a, b, y in rows]
    k = data.draw(st.integers(0, len(examples)))
    whole = SharedModel(Classifier(default_model(2)))
    part = SharedModel(Classifier(default_model(2)))
    for example in examples[:k]:
        part.teach(example)
    part = SharedModel(pickle.loads(pickle.dumps(part.replica)), part.learned)
    for example in examples:
        whole.teach(example)
    for example in examples[k:]:
        part.teach(example)
    assert part.learned == whole.learned == len(examples)
    probes = [{"a": a, "b": b} for a, b, _ in rows[:10]]
    assert [part.score(x) for x in probes] == [whole.score(x) for x in probes]
