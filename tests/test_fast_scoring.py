"""The fast paths of the default model give exactly what river gives one record at a time."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, multiclass, preprocessing, tree

from streamal import ActiveLearner, bin_features, clip_features, default_model
from streamal.fast_scoring import (
    MIN_BATCH,
    LogisticSnapshot,
    OneVsRestSnapshot,
    class_probabilities,
    positive_probabilities,
)
from streamal.model import Classifier


def _probability(model):
    snapshot = LogisticSnapshot.of(model)
    return None if snapshot is None else snapshot.probability


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-1000, 1000),
    st.booleans(),
    st.sampled_from([0.0, 1.0]),  # 0/1 features, whose scaled values run far out
)


def _rows(draw, n, keys):
    return [{k: draw(values) for k in keys} for _ in range(n)]


@st.composite
def trained(draw):
    """A default model trained on a drawn stream, and a drawn batch to score."""
    keys = draw(st.lists(st.sampled_from("abcdefghijklmnop"), min_size=1, max_size=16, unique=True))
    n_classes = draw(st.sampled_from([2, 3, 5]))
    clip = draw(st.sampled_from([None, 3.0, 0.5]))
    bin_width = draw(st.sampled_from([None, 0.5, 0.2])) if clip else None
    model = default_model(n_classes, clip=clip, bin_width=bin_width)
    # some training features the batch does not have, and the other way round
    seen = keys[: draw(st.integers(1, len(keys)))] + ["z"]
    for x in _rows(draw, draw(st.integers(0, 40)), seen):
        y = draw(st.integers(0, n_classes - 1))
        model.learn_one(x, y == 1 if n_classes == 2 else y)
    batch = _rows(draw, draw(st.integers(MIN_BATCH, 60)), keys)
    return model, n_classes, batch


@settings(max_examples=150, deadline=None)
@given(trained())
def test_a_batch_scores_bit_for_bit_as_river_does_one_by_one(case):
    model, n_classes, batch = case
    one_by_one = [model.predict_proba_one(x) for x in batch]
    if n_classes == 2:
        assert positive_probabilities(model, batch) == [p[True] for p in one_by_one]
        assert class_probabilities(model, batch) is None
    else:
        got = class_probabilities(model, batch)
        if one_by_one[0]:  # a one-vs-rest that has seen a label
            assert got == one_by_one
            assert [list(p) for p in got] == [list(p) for p in one_by_one]  # class order too
        assert positive_probabilities(model, batch) is None


odd_values = st.one_of(values, st.sampled_from(["red", "blue"]), st.none(), st.just(10**400))


def _outcome(score, x):
    try:
        return score(x)
    except Exception as e:
        return type(e)


@settings(max_examples=150, deadline=None)
@given(trained(), st.data())
def test_one_record_scores_bit_for_bit_as_river_does(case, data):
    model, n_classes, batch = case
    probability = _probability(model)
    # some records with text, None or a huge int, and keys the model never saw
    keys = list(batch[0]) + ["new"]
    odd = [{k: data.draw(odd_values) for k in keys} for _ in range(5)]
    if n_classes > 2:
        assert probability is None
        snapshot = OneVsRestSnapshot.of(model)
        if not model.predict_proba_one(batch[0]):  # a one-vs-rest that has seen no label
            assert snapshot is None
            return
        for x in batch + odd:
            expected = _outcome(model.predict_proba_one, x)
            got = _outcome(snapshot.score, x)
            if isinstance(expected, dict):
                proba, prediction, confidence = got
                assert list(proba.items()) == list(expected.items())  # class order too
                assert (prediction, confidence) == _argmax(expected)
            else:
                assert got == expected
        return
    assert OneVsRestSnapshot.of(model) is None
    for x in batch + odd:
        assert _outcome(probability, x) == _outcome(lambda x: model.predict_proba_one(x)[True], x)


@given(
    st.dictionaries(
        st.sampled_from("abcdef"),
        st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1),
        max_size=6,
    )
)
def test_the_prediction_is_the_first_most_probable_label(proba):
    expected = _argmax(proba)[0] if proba else None
    assert Classifier.prediction_of(proba) == expected


def _argmax(proba):
    # the first class of the highest probability, as max() picks it
    best = max(proba.values())
    return next((label, p) for label, p in proba.items() if p == best)


def _draw_features_and_bins(data):
    """Feature names, and the default model's bound and bin width, drawn."""
    keys = data.draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True))
    clip = data.draw(st.sampled_from([None, 3.0, 0.5]))
    bin_width = data.draw(st.sampled_from([None, 0.5, 0.2])) if clip else None
    return keys, clip, bin_width


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_snapshot_kept_up_to_date_label_by_label_scores_as_river(data):
    keys, clip, bin_width = _draw_features_and_bins(data)
    l2 = data.draw(st.sampled_from([0.0, 0.0, 0.01]))
    model = default_model(clip=clip, bin_width=bin_width)
    model.steps["LogisticRegression"].l2 = l2
    classifier = Classifier(model)
    feature = st.one_of(values, st.sampled_from(["red", "blue"]))  # text: a new snapshot
    for _ in range(data.draw(st.integers(2, 40))):
        x = {k: data.draw(feature if k == "h" else values) for k in keys}
        if classifier.n_labels_seen == 2:
            p_pos = classifier.model.predict_proba_one(x)[True]
            assert classifier.predict_proba_one(x) == {False: 1.0 - p_pos, True: p_pos}
        classifier.learn_one(x, data.draw(st.booleans()) if classifier.n_labels_seen else False)
        if classifier.n_labels_seen == 1:
            classifier.learn_one(x, True)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_one_vs_rest_snapshot_kept_up_to_date_label_by_label_scores_as_river(data):
    keys, clip, bin_width = _draw_features_and_bins(data)
    # declared classes: one-vs-rest from the start; none: binary until a third label
    declared = data.draw(st.sampled_from([None, ["x", "y", "z"]]))
    classifier = Classifier(default_model(clip=clip, bin_width=bin_width), declared)
    feature = st.one_of(values, st.sampled_from(["red", "blue"]))  # text: a new snapshot
    labels = st.sampled_from(["x", "y", "z", "w"])  # "w" is never declared
    for _ in range(data.draw(st.integers(2, 40))):
        x = {k: data.draw(feature if k == "h" else values) for k in keys}
        if not classifier._binary and classifier.n_labels_seen:
            expected = classifier.model.predict_proba_one(x)
            proba, prediction, confidence = classifier.score(x)
            assert list(proba.items()) == list(expected.items())
            assert (prediction, confidence) == _argmax(expected)
        classifier.learn_one(x, data.draw(labels))


def test_the_learner_scores_several_classes_with_a_snapshot():
    learner = ActiveLearner(budget=1.0, classes=["a", "b", "c"])
    rng = random.Random(3)
    for _ in range(300):
        x = {"u": rng.gauss(0, 1), "v": rng.gauss(0, 1)}
        d = learner.decide(x)
        assert d.probabilities == learner.model.model.predict_proba_one(x)
        learner.learn(d.request_id, "a" if x["u"] < -0.5 else "b" if x["u"] < 0.5 else "c")
    assert learner.model.score == learner.model._snapshot.score  # scored from the snapshot
    # the snapshot follows the model: a record of each class is told apart
    predictions = [learner.decide({"u": u, "v": 0.0}).prediction for u in (-2.0, 0.0, 2.0)]
    assert predictions == ["a", "b", "c"]


def test_text_values_are_scored_by_the_pipeline():
    # the pipeline one-hot encodes "proto": "tcp" as "proto=tcp": 1.0, a feature it knows
    model = default_model()
    for i in range(50):
        model.learn_one({"n": float(i % 7), "proto=tcp": float(i % 2)}, i % 2 == 0)
    x = {"n": 3.0, "proto": "tcp"}
    expected = model.predict_proba_one(x)[True]
    assert expected != model.predict_proba_one({"n": 3.0})[True]
    assert _probability(model)(x) == expected


def _fitted(model=None, n=300, keys="abc"):
    model = model if model is not None else default_model()
    rng = random.Random(1)
    for _ in range(n):
        x = {k: rng.gauss(0, 1) for k in keys}
        model.learn_one(x, x["a"] + rng.gauss(0, 0.5) > 0)
    return model


def _batch(n=50, keys="abc"):
    rng = random.Random(2)
    return [{k: rng.gauss(0, 1) for k in keys} for _ in range(n)]


def test_the_batch_path_is_taken_for_the_models_it_knows():
    assert positive_probabilities(_fitted(), _batch()) is not None
    binned = _fitted(default_model(clip=2.0, bin_width=0.5))
    assert positive_probabilities(binned, _batch()) is not None
    assert _probability(binned) is not None
    plain = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    assert positive_probabilities(_fitted(plain), _batch()) is not None


@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.HoeffdingTreeClassifier(),
        lambda: linear_model.LogisticRegression(),  # not a pipeline
        lambda: preprocessing.MinMaxScaler() | linear_model.LogisticRegression(),
        lambda: preprocessing.StandardScaler(with_std=False) | linear_model.LogisticRegression(),
        lambda: preprocessing.StandardScaler() | linear_model.Perceptron(),
        # bins over another range than the bound's
        lambda: (
            preprocessing.StandardScaler()
            | clip_features(2.0)
            | bin_features(3.0, 0.5)
            | linear_model.LogisticRegression()
        ),
    ],
    ids=["tree", "bare", "minmax", "no-std", "perceptron", "bins-unbounded"],
)
def test_other_models_go_one_by_one(make):
    assert positive_probabilities(_fitted(make()), _batch()) is None
    assert _probability(_fitted(make())) is None


def test_a_one_vs_rest_of_other_classifiers_goes_one_by_one():
    rng = random.Random(5)
    model = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
        linear_model.Perceptron()
    )
    for _ in range(100):
        model.learn_one({"a": rng.gauss(0, 1)}, rng.randrange(3))
    assert OneVsRestSnapshot.of(model) is None
    assert OneVsRestSnapshot.of(_fitted()) is None  # a binary model


def test_the_learner_scores_with_a_snapshot_taken_after_each_label():
    learner = ActiveLearner(model=_fitted(), budget=1.0)
    learner.learn({"a": -1.0, "b": 0.0, "c": 0.0}, False)  # False first: no mapping
    learner.learn({"a": 1.0, "b": 0.0, "c": 0.0}, True)
    x = {"a": 0.3, "b": -1.0, "c": 0.5}
    before = learner.decide(x).probabilities
    assert learner.model.score == learner.model._snapshot.score  # scored from the snapshot
    assert before[True] == learner.model.model.predict_proba_one(x)[True]
    learner.learn({"a": 5.0, "b": 0.0, "c": 0.0}, False)
    after = learner.decide(x).probabilities
    assert after != before
    assert after[True] == learner.model.model.predict_proba_one(x)[True]


def test_batches_it_cannot_reproduce_go_one_by_one():
    model = _fitted()
    batch = _batch()
    assert positive_probabilities(model, batch[: MIN_BATCH - 1]) is None
    reordered = batch[:10] + [{"c": x["c"], "b": x["b"], "a": x["a"]} for x in batch[10:]]
    assert positive_probabilities(model, reordered) is None  # sums would go in another order
    assert positive_probabilities(model, batch[:-1] + [{"a": 1.0, "b": 2.0}]) is None
    assert positive_probabilities(model, batch[:-1] + [{**batch[0], "c": "red"}]) is None
    assert positive_probabilities(model, batch[:-1] + [{**batch[0], "c": None}]) is None
    assert positive_probabilities(model, batch[:-1] + [{**batch[0], "c": 10**400}]) is None


def test_a_pipeline_that_learns_while_it_predicts_goes_one_by_one():
    learner = ActiveLearner(model=_fitted(), unsupervised="all")
    assert positive_probabilities(learner.model.model, _batch()) is None
    before = learner.model.model["StandardScaler"].counts["a"]
    learner.decide_many(_batch())
    assert learner.model.model["StandardScaler"].counts["a"] == before + 50


@pytest.mark.parametrize("labels", [("no", "yes"), (False, True), (0, 1), ("a", "b", "c")])
def test_decide_many_on_the_default_model_decides_as_decide(labels):
    def run(batched):
        learner = ActiveLearner(budget=0.3, seed=5)
        rng = random.Random(3)
        made = []
        for _ in range(20):
            xs = [{"u": rng.gauss(0, 1), "v": rng.random() < 0.1} for _ in range(40)]
            ds = list(learner.decide_many(xs, now=0.0)) if batched else [
                learner.decide(x, now=0.0) for x in xs
            ]  # fmt: skip
            for x, d in zip(xs, ds, strict=True):
                made.append((d.query, d.utility, d.probabilities, d.prediction))
                if d.query:
                    k = int(x["u"] > 0) + (x["v"] and len(labels) > 2)
                    learner.learn(d.request_id, labels[k], now=0.0)
        return made, learner.labels_applied

    (batched, n), (single, m) = run(True), run(False)
    assert batched == single
    assert n == m > 20
