"""ActiveLearner: the budget cap, cold start, labels of every type, delayed labels, state."""

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, naive_bayes, preprocessing, tree
from river.datasets import synth

from streamal import ActiveLearner, Record, clip_features, default_model, strategies
from streamal.drift import DriftMonitor
from streamal.model import make_model
from streamal.schema import InvalidRecord


class ScriptedModel:
    """Returns the probabilities it is told to: a unit-test stand-in for a model."""

    def __init__(self, probas):
        self.probas = iter(probas)
        self.learned = 0

    def predict_proba_one(self, x):
        return next(self.probas)

    def learn_one(self, x, y):
        self.learned += 1


probability_dicts = st.one_of(
    st.just({}),
    st.floats(0.0, 1.0).map(lambda p: {"a": p, "b": 1.0 - p}),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5).map(
        lambda ps: {i: p / (sum(ps) or 1.0) for i, p in enumerate(ps)}
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    probas=st.lists(probability_dicts, min_size=1, max_size=600),
    budget=st.sampled_from([0.01, 0.05, 0.1, 0.25, 0.5]),
    name=st.sampled_from(sorted(strategies.STRATEGIES)),
    label_every=st.integers(1, 5),
)
def test_budget_cap_holds_for_any_utilities(probas, budget, name, label_every):
    learner = ActiveLearner(
        model=ScriptedModel(probas), strategy=strategies.get(name, budget=budget, seed=1)
    )
    queried = 0
    for n in range(1, len(probas) + 1):
        d = learner.decide({"x": 1.0})
        queried += d.query
        assert queried <= math.ceil(budget * n) + 1, (n, queried)
        if d.query and n % label_every == 0:
            learner.learn(d.request_id, "a" if n % 2 else "b")


def test_reference_strategy_overspends_without_the_cap():
    # the windowed estimate alone lets ~10.8 % through at a 10 % budget
    us = [0.9] * 20_000
    s = strategies.VariableUncertainty(budget=0.1)
    assert sum(s.ask_many(us)) / len(us) > 0.102
    learner = ActiveLearner(model=ScriptedModel([{"a": 0.55, "b": 0.45}] * 20_000), cold_start=0)
    spent = sum(learner.decide({"x": 1.0}).query for _ in range(20_000))
    assert spent <= 0.1 * 20_000 + 1


def test_cold_start_does_not_deadlock_on_an_empty_model():
    learner = ActiveLearner(model=ScriptedModel([{}] * 1000))
    asked = [learner.decide({"x": 1.0}) for _ in range(1000)]
    assert sum(d.query for d in asked) >= 90
    assert asked[0].reason == "cold_start"


def test_cold_start_with_a_single_class_keeps_asking_until_classes_have_labels():
    # a model that has seen one class is fully confident: utility 0
    learner = ActiveLearner(model=ScriptedModel([{"a": 1.0}] * 2000), cold_start=3)
    asked = 0
    for _ in range(2000):
        d = learner.decide({"x": 1.0})
        if d.query:
            asked += 1
            learner.learn(d.request_id, "a" if asked < 20 else "b")
    # it kept querying while only "a" was known, and left cold start after "b" labels
    assert asked >= 150
    assert learner.label_counts["b"] >= 3


@pytest.mark.parametrize(
    "labels",
    [["UP", "DOWN"], [0, 1], [True, False], [3, 7], ["a", "b", "c"], [1, 2, 3, 4]],
)
@pytest.mark.parametrize(
    "make_model",
    [
        lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        lambda: tree.HoeffdingTreeClassifier(),
        lambda: naive_bayes.GaussianNB(),
    ],
    ids=["logistic", "hoeffding_tree", "naive_bayes"],
)
def test_any_label_type_binary_and_multiclass(labels, make_model):
    rng = random.Random(0)
    learner = ActiveLearner(model=make_model(), strategy=strategies.VariableUncertainty(budget=0.3))
    correct = 0
    for i in range(3000):
        k = rng.randrange(len(labels))
        angle = 2 * math.pi * k / len(labels)  # classes on a circle: separable one-vs-rest
        x = {
            "f0": 2 * math.cos(angle) + rng.gauss(0, 0.2),
            "f1": 2 * math.sin(angle) + rng.gauss(0, 0.2),
        }
        d = learner.decide(x)
        correct += i >= 2000 and d.prediction == labels[k]
        if d.query:
            assert learner.learn(d.request_id, labels[k]) == "applied"
    assert set(d.probabilities) <= set(labels)
    assert correct / 1000 > 0.8


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_default_model_learns_from_a_text_column(n_classes):
    # the label is the text column: a model that scaled its indicators to 0 would guess
    learner = ActiveLearner(budget=1.0, classes=range(n_classes) if n_classes > 2 else None)
    rng = random.Random(4)
    protos = ["tcp", "udp", "icmp"][:n_classes]
    correct = 0
    for i in range(3000):
        k = rng.randrange(n_classes)
        d = learner.decide({"noise": rng.gauss(0, 1), "proto": protos[k]})
        correct += i >= 2000 and d.prediction == k
        if d.query:
            learner.learn(d.request_id, k)
    assert correct / 1000 > 0.95
    assert learner.model.model["OneHotText"].values == {"proto": dict.fromkeys(protos)}


def test_the_binned_model_learns_a_class_in_the_middle_of_a_feature():
    # no single slope separates |x| < 1 from the rest; a weight per bin does
    def accuracy(name):
        learner = ActiveLearner(model=make_model(name), budget=1.0, exploration_share=0.0)
        rng = random.Random(6)
        correct = 0
        for i in range(4000):
            x = rng.gauss(0, 1)  # the class edges fall on bin edges, 1 sd out
            d = learner.decide({"x": x, "noise": rng.random()})
            correct += i >= 3000 and d.prediction == (abs(x) < 1)
            if d.query:
                learner.learn(d.request_id, abs(x) < 1)
        return correct / 1000

    assert accuracy("binned_logistic_regression") > 0.9
    assert accuracy("logistic_regression") < 0.75  # about the share inside, 68%


def test_third_class_upgrades_a_binary_model():
    learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=1.0), cold_start=0)
    for i in range(300):
        d = learner.decide({"x": float(i % 3)})
        learner.learn(d.request_id, ["a", "b", "c"][i % 3])
    assert learner.model.upgrades == 1
    assert set(learner.decide({"x": 1.0}).probabilities) == {"a", "b", "c"}


def test_labels_arrive_late_and_out_of_order():
    learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=0.5))
    stream = list(synth.SEA(seed=3).take(2000))
    waiting = []
    for i, (x, y) in enumerate(stream):
        d = learner.decide(Record(str(i), x))
        if d.query:
            waiting.append((d.request_id, y))
    random.Random(1).shuffle(waiting)
    outcomes = [learner.learn(rid, y) for rid, y in waiting]
    assert outcomes == ["applied"] * len(waiting)
    assert learner.labels_applied == len(waiting) and len(learner.pending) == 0


def test_unknown_duplicate_expired_and_invalid_labels_are_counted_not_raised():
    now = [0.0]
    learner = ActiveLearner(
        strategy=strategies.VariableUncertainty(budget=1.0), pending_ttl=10, clock=lambda: now[0]
    )
    a = learner.decide(Record("1", {"x": 1.0}))
    b = learner.decide(Record("2", {"x": 2.0}))
    assert learner.learn(a.request_id, True) == "applied"
    assert learner.learn(a.request_id, True) == "duplicate"
    assert learner.learn("q-nope", True) == "unknown"
    assert learner.learn(b.request_id, None) == "invalid_label"
    assert learner.learn(b.request_id, ["unhashable"]) == "invalid_label"
    now[0] = 100.0
    assert learner.learn(b.request_id, True) == "expired"
    assert dict(learner.labels_rejected) == {
        "duplicate": 1,
        "unknown": 1,
        "invalid_label": 2,
        "expired": 1,
    }


def test_pending_table_is_bounded():
    learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=1.0), max_pending=50)
    for i in range(500):
        learner.decide(Record(str(i), {"x": float(i)}))
    assert len(learner.pending) == 50
    assert learner.learn("q-0", True) == "expired"


@settings(max_examples=100, deadline=None)
@given(
    request=st.one_of(st.text(), st.integers(), st.none(), st.dictionaries(st.text(), st.floats())),
    label=st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.lists(st.integers())),
)
def test_bad_labels_never_crash(request, label):
    learner = ActiveLearner()
    learner.decide({"x": 1.0})
    try:
        outcome = learner.learn(request, label)
    except InvalidRecord:  # features to learn from directly that the learner refuses
        assert isinstance(request, dict) and learner.validator.check(request) is not None
        return
    assert outcome in {"applied", "unknown", "invalid_label", "duplicate", "expired"}


def test_drift_resets_the_threshold_and_is_counted():
    learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=0.2))
    a, b = synth.SEA(variant=0, seed=1), synth.SEA(variant=3, seed=2)
    stream = list(a.take(5000)) + [(x, not y) for x, y in b.take(5000)]
    resets = []
    original = learner.strategy.on_drift
    learner.strategy.on_drift = lambda: (resets.append(learner.n_records), original())
    for x, y in stream:
        d = learner.decide(x)
        if d.query:
            learner.learn(d.request_id, y)
    assert learner.drift_detections >= 1
    assert any(r > 5000 for r in resets)
    assert learner.strategy.threshold is not None


def test_state_round_trip_continues_identically():
    hyperplane = synth.Hyperplane(seed=4).take(4000)
    stream = [({str(k): v for k, v in x.items()}, y) for x, y in hyperplane]

    def play(learner, part):
        out = []
        for i, (x, y) in part:
            d = learner.decide(Record(str(i), x), now=float(i))
            out.append((d.query, d.prediction, round(d.utility, 12)))
            if d.query:
                learner.learn(d.request_id, y, now=float(i))
        return out

    indexed = list(enumerate(stream))
    straight = ActiveLearner(strategy="split", seed=3)
    expected = play(straight, indexed)

    first = ActiveLearner(strategy="split", seed=3)
    got = play(first, indexed[:2000])
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(first.state())))
    got += play(restored, indexed[2000:])
    assert got == expected
    assert sum(q for q, _, _ in got) > 100


def test_custom_drift_monitor_and_no_monitor():
    from river.drift import PageHinkley

    assert ActiveLearner(drift=DriftMonitor(PageHinkley())).drift.detector.__class__ is PageHinkley
    assert ActiveLearner(drift=None).drift_detections == 0


def test_rejects_objects_that_are_not_models_or_strategies():
    with pytest.raises(TypeError, match="predict_proba_one"):
        ActiveLearner(model=object())
    with pytest.raises(TypeError, match="strategy"):
        ActiveLearner(strategy=42)


def test_ttl_runs_on_event_time_when_records_carry_it():
    learner = ActiveLearner(
        strategy=strategies.VariableUncertainty(budget=1.0), pending_ttl=10, clock=lambda: 1e9
    )
    early = learner.decide(Record("1", {"x": 1.0}, ts=100.0))
    late = learner.decide(Record("2", {"x": 2.0}, ts=105.0))
    # the wall clock (1e9) is far ahead of the events: it must not expire them
    assert learner.learn(late.request_id, True) == "applied"
    learner.decide(Record("3", {"x": 3.0}, ts=120.0))
    assert learner.learn(early.request_id, True) == "expired"


def _decisions_of(learner, batches, labels, batched):
    """Decide every batch (whole or one record at a time), then learn its queried records."""
    seen = []
    for batch in batches:
        if batched:
            made = list(learner.decide_many(batch, now=0.0))
        else:
            made = [learner.decide(r, now=0.0) for r in batch]
        for r, d in zip(batch, made, strict=True):
            seen.append((d.record_id, d.query, d.request_id, d.utility, d.confidence,
                         d.prediction, d.probabilities, d.query_probability, d.reason))  # fmt: skip
            if d.query:
                learner.learn(d.request_id, labels[r.id], now=0.0)
    return seen


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=12),
    name=st.sampled_from(sorted(strategies.STRATEGIES)),
    label_kind=st.sampled_from(["str", "int", "bool"]),
    cap=st.booleans(),
)
def test_a_batch_decides_as_records_one_by_one(sizes, name, label_kind, cap):
    stream = list(synth.Hyperplane(seed=3, n_features=3).take(sum(sizes)))
    convert = {"str": lambda y: "yes" if y else "no", "int": int, "bool": bool}[label_kind]
    records = [Record(f"r{i}", x) for i, (x, _) in enumerate(stream)]
    labels = {f"r{i}": convert(y) for i, (_, y) in enumerate(stream)}
    batches, start = [], 0
    for size in sizes:
        batches.append(records[start : start + size])
        start += size

    def learner():
        return ActiveLearner(
            model=preprocessing.StandardScaler() | linear_model.LogisticRegression(),
            strategy=strategies.get(name, budget=0.2, seed=4),
            budget_cap=cap,
        )

    one_by_one, batched = learner(), learner()
    assert _decisions_of(batched, batches, labels, True) == _decisions_of(
        one_by_one, batches, labels, False
    )
    assert batched.state()["n_queries"] == one_by_one.state()["n_queries"]
    assert batched.strategy.threshold == one_by_one.strategy.threshold


def test_a_record_the_model_cannot_score_fails_alone_in_its_batch():
    learner = ActiveLearner(budget=1.0)
    learner.learn({"x": 1.0}, "a")
    learner.learn({"x": 0.0}, "b")
    batch = learner.decide_many([{"x": 1.0}, {"x": None}, {"x": 0.5}, {"x": [1.0]}])
    assert [i for i, _ in batch.failed] == [1, 3]
    assert [d is None for d in batch] == [False, True, False, True]
    assert [i for i, _ in batch.queried()] == [0, 2]
    assert learner.n_queries == 2 and len(learner.pending) == 2
    again = learner.decide_many([{"x": 2.0}])
    # refused records leave no trace, as with decide: no id, no count; ids stay unique
    assert again[0].record_id == "r3" and learner.n_records == 3


def test_live_accuracy_estimate_is_honest_with_exploration():
    from streamal.evaluation import run_strategy

    data = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=5).take(20_000)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    blind = run_strategy(xs, ys, "variable_uncertainty", budget=0.1, seed=1, exploration_share=0)
    honest = run_strategy(xs, ys, "variable_uncertainty", budget=0.1, seed=1, exploration=0.02,
                          exploration_share=0)  # fmt: skip
    # without exploration the labels come from hard records only: too low
    blind_error = blind.accuracy - blind.estimated_accuracy
    honest_error = abs(honest.estimated_accuracy - honest.accuracy)
    assert blind_error > 0.01 and honest_error < 0.01 and honest_error < blind_error / 3
    assert honest.labels_used <= 0.1 + 1 / len(ys)


def test_replay_runs_a_deterministic_strategy_under_every_seed_once_it_explores():
    from streamal.evaluation import replay, runs_needed

    data = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=6).take(1_000)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    name = "balanced_incremental_quantile_filter"
    for exploration, share, expected in ((0.0, 0.0, 1), (0.02, 0.0, 3), (0.0, 0.2, 3)):
        result = replay(xs, ys, [name], budget=0.1, seeds=3, exploration=exploration,
                        exploration_share=share)  # fmt: skip
        rows = {row["strategy"]: row for row in result["summary"]}
        assert rows[name]["runs"] == expected
        accuracies = {r["accuracy"] for r in result["runs"] if r["strategy"] == name}
        assert (len(accuracies) > 1) == (expected > 1)  # the seeds draw differently
        assert runs_needed([name], 3, exploration, exploration_share=share) == expected + 3 + 1


@settings(max_examples=30, deadline=None)
@given(
    probas=st.lists(probability_dicts, min_size=1, max_size=400),
    rate=st.sampled_from([0.01, 0.05, 0.2]),
    name=st.sampled_from(sorted(strategies.STRATEGIES)),
)
def test_budget_cap_holds_with_exploration(probas, rate, name):
    learner = ActiveLearner(
        model=ScriptedModel(probas), strategy=strategies.get(name, budget=0.1, seed=1),
        exploration=rate, seed=2,
    )  # fmt: skip
    queried = 0
    for n in range(1, len(probas) + 1):
        d = learner.decide({"x": 1.0})
        queried += d.query
        assert queried <= math.ceil((0.1 + rate) * n) + 1
        if d.query:
            assert d.query_probability > 0
            learner.learn(d.request_id, "a" if n % 2 else "b")


def _noisy_team_run(use_ids, seed=1):
    data = [({str(k): v for k, v in x.items()}, y)
            for x, y in synth.Hyperplane(seed=1, n_features=5).take(20_000)]  # fmt: skip
    rng = random.Random(seed)
    learner = ActiveLearner(budget=0.2, seed=seed)
    correct = 0
    for i, (x, y) in enumerate(data):
        d = learner.decide(Record(str(i), x), now=0.0)
        correct += d.prediction == y
        if d.query:
            careful = rng.random() < 0.5
            label = y if careful or rng.random() > 0.45 else not y  # "sloppy" is wrong 45 %
            who = ("careful" if careful else "sloppy") if use_ids else None
            learner.learn(d.request_id, label, now=0.0, annotator=who)
    return correct / len(data), learner


def test_annotator_reliability_ranks_annotators_and_weighting_helps():
    blind, _ = _noisy_team_run(use_ids=False)
    weighted, learner = _noisy_team_run(use_ids=True)
    rel = learner.annotators.snapshot()
    assert rel["careful"] > rel["sloppy"] + 0.2
    assert learner.annotators.weight("careful") == 1.0
    assert learner.annotators.weight("sloppy") < 0.3
    assert weighted > blind + 0.002


class CountingResets(strategies.VariableUncertainty):
    resets = 0

    def on_drift(self):
        self.resets += 1
        super().on_drift()


def test_confidence_drift_is_seen_without_any_label():
    learner = ActiveLearner(
        model=preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        strategy=CountingResets(budget=0.1), confidence_drift=True,
        # a scaler that follows the records would itself move the confidence in phase one
        unsupervised="labelled",
    )  # fmt: skip
    rng = random.Random(0)
    for _ in range(300):  # teach a clear boundary at x = 0
        x = rng.uniform(-3, 3)
        learner.learn({"x": x}, x > 0)
    for _ in range(3000):  # far from the boundary: the model is sure
        d = learner.decide({"x": rng.choice([-1, 1]) * rng.uniform(2, 3)})
    assert learner.drift_detections == 0 and learner.strategy.resets == 0
    for _ in range(3000):  # the records move to the boundary; no label comes back
        learner.decide({"x": rng.uniform(-0.2, 0.2)})
    assert learner.drift_detections >= 1 and learner.labels_applied == 300
    assert learner.strategy.resets == learner.drift_detections
    batch = learner.decide_many([{"x": 0.1}, {"x": 2.5}])  # record by record now
    assert len(batch) == 2 and d.prediction in (True, False)


def _concept_switches(background):
    rng = random.Random(0)
    learner = ActiveLearner(
        strategy=strategies.RandomSampling(budget=0.3, seed=1), background=background
    )
    after = []
    for i in range(20_000):  # the boundary turns by 90 degrees every 5,000 records
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        y = (x["a"] + x["b"] > 0) if (i // 5000) % 2 == 0 else (x["a"] - x["b"] > 0)
        d = learner.decide(x, now=0.0)
        if i >= 5000:
            after.append(d.prediction == y)
        if d.query:
            learner.learn(d.request_id, y, now=0.0)
    return sum(after) / len(after), learner


def test_background_model_from_the_warning_is_swapped_in_on_drift():
    stale, plain = _concept_switches(background=False)
    fresh, swapping = _concept_switches(background=True)
    assert plain.model_swaps == 0 and swapping.model_swaps >= 2
    assert fresh > stale + 0.01
    again = ActiveLearner.from_state(pickle.loads(pickle.dumps(swapping.state())))
    assert again.model_swaps == swapping.model_swaps


def test_background_needs_a_model_that_can_be_cloned():
    with pytest.raises(TypeError, match="clone"):
        ActiveLearner(model=ScriptedModel([]), background=True)


def test_an_unreliable_annotator_gets_a_second_opinion():
    learner = ActiveLearner(budget=1.0, cold_start=0, second_opinion_below=0.8,
                            exploration_share=0.0)  # fmt: skip
    rng = random.Random(2)
    for _ in range(200):  # a clear concept, labelled by a careful annotator
        x = rng.uniform(-1, 1)
        learner.learn({"x": x}, x > 0, annotator="careful")
    for _ in range(40):  # a careless one, wrong half of the time
        x = rng.uniform(-1, 1)
        learner.learn({"x": x}, rng.random() < 0.5, annotator="careless")
    assert learner.annotators.accuracy("careless") < 0.8
    d = learner.decide({"x": 0.7})
    assert learner.learn(d.request_id, False, annotator="careless") == "held"
    assert learner.second_opinions == [(d.request_id, "careless")]
    assert learner.learn(d.request_id, False, annotator="careless") == "duplicate"
    before, trues = learner.labels_applied, learner.label_counts[True]
    assert learner.learn(d.request_id, True, annotator="careful") == "applied"
    assert learner.labels_applied == before + 1  # one label learned: the careful one's
    assert learner.label_counts[True] == trues + 1
    assert learner.learn(d.request_id, True, annotator="careful") == "duplicate"
    d = learner.decide({"x": 0.7})  # a careful annotator is never held
    assert learner.learn(d.request_id, True, annotator="careful") == "applied"


def _late_run(delay, n=6_000, **options):
    """Hyperplane records with each label `delay` records late; returns learner, decisions."""
    data = [({str(k): v for k, v in x.items()}, y)
            for x, y in synth.Hyperplane(seed=3, n_features=5).take(n)]  # fmt: skip
    learner = ActiveLearner(budget=0.1, seed=4, **options)
    waiting, decisions = [], []
    for i, (x, y) in enumerate(data):
        while waiting and waiting[0][0] <= i:
            _, request_id, label = waiting.pop(0)
            assert learner.learn(request_id, label, now=float(i)) == "applied"
        d = learner.decide(Record(str(i), x), now=float(i))
        decisions.append(d)
        if d.query:
            waiting.append((i + delay, d.request_id, y))
    return learner, decisions


def test_late_labels_move_half_the_budget_to_exploration():
    from streamal.strategies.exploration import Exploration

    learner, decisions = _late_run(delay=400)
    assert 395 <= learner.label_delay <= 400  # records decided before the label came
    assert learner.late_share == 0.5
    assert learner.budget == 0.1 and learner.strategy.budget == pytest.approx(0.05)
    # the random picks fall among the 95 % of records the filter skips
    assert isinstance(learner._policy, Exploration)
    assert learner._policy.rate == pytest.approx(0.05 / 0.95)
    late = [d for d in decisions[1_000:] if d.query]
    explored = sum(d.query_probability < 1.0 for d in late)
    # half the labels are picked at random, and the budget is spent, no more
    assert 0.35 < explored / len(late) < 0.65
    assert 0.09 * len(decisions) <= learner.n_queries <= math.ceil(0.1 * len(decisions)) + 1


def test_the_share_follows_the_delay_and_labels_at_once_change_nothing():
    assert _late_run(delay=50, n=3_000, exploration_share=0.0)[0].late_share == 0.125  # 0.5*50/200
    # the exploration share is a floor: a shorter delay leaves it as it is
    assert _late_run(delay=50, n=3_000, exploration_share=0.2)[0].late_share == 0.2
    assert _late_run(delay=100, n=3_000)[0].late_share == 0.25
    for share in (0.2, 0.0):
        at_once, decisions = _late_run(delay=0, n=3_000, exploration_share=share)
        off, reference = _late_run(delay=0, n=3_000, late_exploration=0.0, exploration_share=share)
        assert at_once.late_share == share and at_once.label_delay == 0
        assert [d.query for d in decisions] == [d.query for d in reference]
    assert at_once._policy is at_once.strategy  # no exploring wrapper on the fast path


def test_late_exploration_survives_a_restore():
    learner, _ = _late_run(delay=300, n=2_000)
    assert learner.late_share == 0.5
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(learner.state())))
    records = [Record(f"n{i}", {str(k): float((i * 7 + k) % 11) for k in range(5)})
               for i in range(2_000)]  # fmt: skip
    a = [(d.query, d.query_probability) for d in map(learner.decide, records)]
    b = [(d.query, d.query_probability) for d in map(restored.decide, records)]
    assert a == b and restored.late_share == 0.5


def test_an_older_state_resumes_with_late_exploration_off():
    learner, _ = _late_run(delay=0, n=500, exploration_share=0.0)  # it did not exist either
    state = learner.state()
    for key in ("late_exploration", "late_delay", "label_delay", "_late_share", "_full_budget",
                "exploration_share"):  # fmt: skip
        del state[key]
    restored = ActiveLearner.from_state(state)
    assert restored.late_exploration == 0.0 and restored.budget == learner.budget
    assert restored.learn({"0": 1.0}, True) == "applied"


def test_replay_with_noisy_annotators_tags_labels_and_charges_every_baseline():
    from streamal.evaluation import replay, run_strategy, runs_needed

    data = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=8).take(6_000)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    exact = replay(xs, ys, ["variable_uncertainty"], budget=0.2, seeds=2)
    noisy = replay(xs, ys, ["variable_uncertainty"], budget=0.2, seeds=2, noises=[0.3])
    rows = {r["strategy"]: r for r in noisy["summary"]}
    exact_rows = {r["strategy"]: r for r in exact["summary"]}
    assert noisy["noises"] == [0.3] and exact["noises"] == []
    assert all(run["trace"]["accuracy"] for run in noisy["runs"])  # plots of every run
    # the noise draws, so every run (every label too) goes under every seed
    assert [rows[n]["runs"] for n in rows] == [2, 2, 2]
    assert runs_needed(["variable_uncertainty"], 2, noisy=True) == 6
    for name in rows:  # wrong labels cost accuracy everywhere, measured on the true labels
        assert rows[name]["accuracy"] < exact_rows[name]["accuracy"] - 0.01
    # a careful annotator and one who answers at random: the labels carry their
    # ids, so the learner tells them apart
    team = run_strategy(xs, ys, "variable_uncertainty", budget=0.2, seed=1, noises=[0.0, 0.5],
                        exploration_share=0.0)  # fmt: skip
    assert set(team.annotators) == {"a1", "a2"}
    assert team.annotators["a1"] > team.annotators["a2"] + 0.2
    assert run_strategy(xs, ys, "variable_uncertainty", noises=[0.3]).annotators == {}
    # asking the careful one again when the random one answered pays
    again = run_strategy(xs, ys, "variable_uncertainty", budget=0.2, seed=1, noises=[0.0, 0.5],
                         second_opinion_below=0.8, exploration_share=0.0)  # fmt: skip
    assert again.accuracy > team.accuracy + 0.005


@settings(max_examples=30, deadline=None)
@given(
    probas=st.lists(probability_dicts, min_size=1, max_size=600),
    delays=st.lists(st.integers(0, 400), min_size=1, max_size=20),
    name=st.sampled_from(sorted(strategies.STRATEGIES)),
)
def test_budget_cap_holds_while_late_labels_move_budget_to_exploration(probas, delays, name):
    learner = ActiveLearner(
        model=ScriptedModel(probas), strategy=strategies.get(name, budget=0.1, seed=1),
        late_delay=50, seed=2,
    )  # fmt: skip
    waiting, queried = [], 0
    for n in range(1, len(probas) + 1):
        for _, request_id in [w for w in waiting if w[0] <= n]:
            learner.learn(request_id, "a" if n % 2 else "b")
        waiting = [w for w in waiting if w[0] > n]
        d = learner.decide({"x": 1.0})
        queried += d.query
        assert queried <= math.ceil(0.1 * n) + 1
        assert 0.0 <= learner.late_share <= 0.5
        if d.query:
            assert d.query_probability > 0
            waiting.append((n + delays[n % len(delays)], d.request_id))


def _scaled_learner(unsupervised, **options):
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    return ActiveLearner(
        model=model, strategy=strategies.RandomSampling(budget=0.2, seed=3),
        unsupervised=unsupervised, **options,
    )  # fmt: skip


def _scaler_count(learner):
    return learner.model.model["StandardScaler"].counts["x"]


@pytest.mark.parametrize("batch", [False, True])
def test_the_scaler_learns_from_every_record_decided_and_once_from_each(batch):
    everything, labelled = _scaled_learner("all"), _scaled_learner("labelled")
    rng = random.Random(0)
    xs = [{"x": rng.gauss(5.0, 2.0)} for _ in range(600)]
    for learner in (everything, labelled):
        for start in range(0, len(xs), 50):
            part = xs[start : start + 50]
            made = learner.decide_many(part).queried() if batch else [
                (i, d) for i, d in enumerate(map(learner.decide, part)) if d.query
            ]  # fmt: skip
            for i, d in made:
                learner.learn(d.request_id, part[i]["x"] > 5.0)
    assert 0 < labelled.labels_applied < 600
    # every record once, whether labelled or not; the pipeline alone: the labelled ones
    assert _scaler_count(everything) == 600
    assert _scaler_count(labelled) == labelled.labels_applied
    scaler = everything.model.model["StandardScaler"]
    assert abs(scaler.means["x"] - sum(x["x"] for x in xs) / 600) < 1e-9


def test_the_setting_survives_a_restore_and_annotator_checks_teach_nothing():
    learner = _scaled_learner("all")
    for i in range(200):
        d = learner.decide({"x": float(i % 10)})
        if d.query:
            learner.learn(d.request_id, i % 10 > 4, annotator="ann")
    assert _scaler_count(learner) == 200  # scoring for the annotator's check saw no record
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(learner.state())))
    restored.decide({"x": 3.0})
    assert _scaler_count(restored) == 201
    restored.learn({"x": 2.0}, True)  # learned directly, never decided: seen once, here
    assert _scaler_count(restored) == 202 and restored.labels_applied == learner.labels_applied + 1


def test_a_background_model_learns_from_labels_until_it_is_swapped_in():
    learner = _scaled_learner("all", background=True)
    learner.background = learner.model.fresh(unsupervised="labelled")
    learner.learn({"x": 1.0}, False)
    learner.learn({"x": 9.0}, True)
    learner.decide({"x": 4.0})
    assert learner.background.model["StandardScaler"].counts["x"] == 2  # labels only
    learner._swap_in_background()
    learner.decide({"x": 4.0})
    assert learner.model_swaps == 1 and _scaler_count(learner) == 3  # and now every record


def test_unsupervised_takes_only_its_two_values():
    with pytest.raises(ValueError, match="unsupervised"):
        _scaled_learner("some")


@given(
    st.dictionaries(
        st.text(max_size=3),
        st.floats(allow_nan=False, allow_infinity=True, width=64),
        max_size=8,
    ),
    st.floats(min_value=0.1, max_value=100.0),
)
def test_clipped_features_stay_in_bounds_and_others_pass_unchanged(x, limit):
    out = clip_features(limit).transform_one(x)
    assert out.keys() == x.keys()
    for k, v in x.items():
        assert -limit <= out[k] <= limit
        if -limit <= v <= limit:
            assert out[k] == v


def test_default_model_bounds_an_outlier_and_survives_a_checkpoint():
    def weight_after_an_outlier(clip):
        model = default_model(clip=clip)
        rng = random.Random(0)
        for _ in range(200):
            x = rng.uniform(-1, 1)
            model.learn_one({"x": x}, x > 0)
        before = model["LogisticRegression"].weights["x"]
        model.learn_one({"x": 1e4}, False)  # far out, and against the concept
        return before, model["LogisticRegression"].weights["x"], model

    before, after, clipped = weight_after_an_outlier(3.0)
    # one SGD step of the log loss moves a weight by at most lr * |feature| = 0.01 * 3
    assert abs(after - before) <= 0.03 + 1e-12
    before, after, _ = weight_after_an_outlier(None)
    # scaled by a scaler that has seen it among 200 others: about sqrt(200) = 14
    assert abs(after - before) > 0.1
    restored = pickle.loads(pickle.dumps(clipped))
    assert str(restored) == str(clipped)
    assert restored.predict_proba_one({"x": 50.0}) == clipped.predict_proba_one({"x": 50.0})


@pytest.mark.parametrize("batch", [False, True])
def test_a_per_class_strategy_is_told_each_prediction_and_resumes_from_a_state(batch):
    def run(learner, records, told):
        strategy = learner.strategy
        real = strategy.observe_prediction
        strategy.observe_prediction = lambda p, proba=None: (told.append(p), real(p, proba))[1]
        made = []
        for start in range(0, len(records), 50):
            part = records[start : start + 50]
            ds = list(learner.decide_many(part)) if batch else list(map(learner.decide, part))
            for x, d in zip(part, ds, strict=True):
                made.append((d.query, d.prediction, d.reason))
                if d.query:
                    label = "a" if x["x"] < -0.5 else "b" if x["x"] < 1 else "c"
                    learner.learn(d.request_id, label)
        del strategy.observe_prediction
        return made

    rng = random.Random(4)
    records = [{"x": rng.gauss(0, 1.5), "noise": rng.random()} for _ in range(1500)]
    learner = ActiveLearner(strategy="per_class_quantile_filter", budget=0.1)
    told: list = []
    made = run(learner, records[:1000], told)
    by_strategy = [prediction for _, prediction, reason in made if reason == "strategy"]
    # one by one it is told during the cold start too, before the learner knows it is over
    assert told == (by_strategy if batch else [prediction for _, prediction, _ in made])
    assert set(by_strategy) == {"a", "b", "c"}
    assert sorted(learner.strategy.classes, key=str) == sorted(set(by_strategy), key=str)
    # each predicted class is labelled at about the budget's rate
    for c in set(by_strategy):
        n = by_strategy.count(c)
        asked = sum(q for q, p, r in made if p == c and r == "strategy")
        assert n < 50 or asked >= 0.05 * n, (c, n, asked)
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(learner.state())))
    assert run(restored, records[1000:], []) == run(learner, records[1000:], [])


def test_a_per_boundary_filter_labels_a_quiet_boundary_that_a_busy_one_outbids():
    # records predicted b: most of them unsure between b and c, a tenth surer, between b and a
    def run(strategy):
        rng = random.Random(0)
        asked = {"a": 0, "c": 0}
        for i in range(2000):
            runner_up = "a" if i % 10 == 0 else "c"
            utility = rng.uniform(0.0, 0.1) if runner_up == "a" else rng.uniform(0.3, 0.5)
            proba = {"b": 0.6, runner_up: 0.3, "a" if runner_up == "c" else "c": 0.1}
            strategy.observe_prediction("b", proba)
            asked[runner_up] += strategy.ask(utility)
        return asked

    by_class = run(strategies.PerClassQuantileFilter(budget=0.2))
    by_boundary = run(strategies.PerBoundaryQuantileFilter(budget=0.2))
    assert by_class["a"] <= 2  # of 200
    assert 30 <= by_boundary["a"] <= 50 and 330 <= by_boundary["c"] <= 390
    assert sum(by_boundary.values()) == pytest.approx(sum(by_class.values()), abs=5)


@pytest.mark.parametrize("strategy", ["per_class_quantile_filter", "per_boundary_quantile_filter"])
def test_the_learner_routes_by_boundary_alike_one_by_one_and_in_batches(strategy):
    rng = random.Random(6)
    records = [{"x": rng.gauss(0, 1.5)} for _ in range(3000)]

    def run(batch):
        learner = ActiveLearner(strategy=strategy, budget=0.1, seed=2)
        made = []
        for start in range(0, len(records), 100):
            part = records[start : start + 100]
            ds = list(learner.decide_many(part)) if batch else list(map(learner.decide, part))
            for x, d in zip(part, ds, strict=True):
                made.append(d.query)
                if d.query:
                    learner.learn(d.request_id, "a" if x["x"] < -1 else "b" if x["x"] < 1 else "c")
        return made, learner.strategy.classes

    one_by_one, classes = run(False)
    assert run(True) == (one_by_one, classes)
    boundaries = {c for c in classes if isinstance(c, tuple)}
    if strategy == "per_boundary_quantile_filter":
        assert {("b", "a"), ("b", "c")} <= boundaries
    else:
        assert not boundaries


class _SureOfHalf:
    """A model sure of the records with x < 0 and unsure of the others."""

    def predict_proba_one(self, x):
        return {"a": 1.0, "b": 0.0} if x["x"] < 0 else {"a": 0.5, "b": 0.5}

    def learn_one(self, x, y):
        pass


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_the_exploration_share_reaches_records_the_strategy_never_asks_about(share):
    learner = ActiveLearner(model=_SureOfHalf(), strategy="balanced_incremental_quantile_filter",
                            budget=0.1, cold_start=0, exploration_share=share, seed=3,
                            classes=["a", "b"])  # fmt: skip
    learner.learn({"x": -0.5}, "a")  # a model that has learned nothing gives no probabilities
    rng = random.Random(5)
    n, asked = 20_000, {"sure": 0, "unsure": 0}
    for _ in range(n):
        x = rng.uniform(-1, 1)
        if learner.decide({"x": x}, now=0.0).query:
            asked["sure" if x < 0 else "unsure"] += 1
    assert learner.strategy.budget == pytest.approx(0.1 * (1 - share))
    assert asked["sure"] + asked["unsure"] <= 0.1 * n + 1  # the share comes out of the budget
    # the strategy asks about unsure records only; random picks land on both halves
    expected = n / 2 * 0.1 * share
    assert expected * 0.7 <= asked["sure"] <= expected * 1.3
    assert asked["unsure"] >= 0.1 * n * (1 - share) * 0.9


def test_the_utility_is_the_strategys_own_unless_given():
    assert ActiveLearner().utility_name == "margin"  # the default per-class filter
    assert ActiveLearner(strategy="variable_uncertainty").utility_name == "least_confidence"
    assert ActiveLearner(strategy="split", utility="entropy").utility_name == "entropy"
    proba = {"a": 0.5, "b": 0.3, "c": 0.2}
    learner = ActiveLearner(model=_Fixed(proba), cold_start=0, classes=list(proba))
    learner.learn({"x": 0.0}, "a")
    assert learner.decide({"x": 1.0}).utility == pytest.approx(1 - (0.5 - 0.3))


class _Fixed:
    def __init__(self, proba):
        self.proba = proba

    def predict_proba_one(self, x):
        return dict(self.proba)

    def learn_one(self, x, y):
        pass


def test_a_per_class_state_saved_before_runner_up_existed_resumes():
    learner = ActiveLearner(strategy="per_class_quantile_filter", budget=0.2, seed=0)
    for i in range(300):
        d = learner.decide({"x": float(i % 7)})
        if d.query:
            learner.learn(d.request_id, "abc"[i % 3])
    del learner.strategy.__dict__["runner_up"]  # as pickled by an earlier version
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(learner.state())))
    decided = [restored.decide({"x": float(i % 7)}).query for i in range(200)]
    assert restored.strategy.runner_up is False
    assert decided == [learner.decide({"x": float(i % 7)}).query for i in range(200)]
    assert all(not isinstance(c, tuple) for c in restored.strategy.classes)
