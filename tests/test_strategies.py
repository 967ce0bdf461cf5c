"""Strategies: the shared contract, scikit-activeml parity, invalid parameters."""

import pickle
import random
import statistics

import numpy as np
import pytest
from river.datasets import synth
from skactiveml.stream import PeriodicSampling as SkPeriodic
from skactiveml.stream.budgetmanager import (
    BalancedIncrementalQuantileFilter as SkBIQF,
)
from skactiveml.stream.budgetmanager import (
    FixedUncertaintyBudgetManager,
    RandomBudgetManager,
    RandomVariableUncertaintyBudgetManager,
    SplitBudgetManager,
    VariableUncertaintyBudgetManager,
)

from streamal import strategies as S
from streamal.checks import yield_checks

NAMES = sorted(S.STRATEGIES)


def _utilities(n, seed=0):
    rng = random.Random(seed)
    # mixture: long confident stretches and uncertain bursts, as under drift
    return [
        rng.random() * (0.5 if (i // 700) % 2 else 0.15) + (0.3 if i % 97 == 0 else 0.0)
        for i in range(n)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_contract(name):
    for check in yield_checks(lambda seed: S.get(name, budget=0.1, seed=seed)):
        check()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, "0.1", True])
def test_invalid_budget_raises(name, budget):
    with pytest.raises((ValueError, TypeError)):
        S.get(name, budget=budget)


@pytest.mark.parametrize(
    "cls, params",
    [
        (S.VariableUncertainty, {"step": 0.0}),
        (S.VariableUncertainty, {"w": 0}),
        (S.Split, {"v": 1.5}),
        (S.RandomizedVariableUncertainty, {"delta": 0.0}),
        (S.FixedUncertainty, {"n_classes": 1}),
        (S.BalancedIncrementalQuantileFilter, {"w_tol": 0}),
    ],
)
def test_invalid_parameters_raise(cls, params):
    with pytest.raises(ValueError):
        cls(**params)


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="variable_uncertainty"):
        S.get("uncertainty_please")


def test_defaults_are_the_papers():
    vu = S.VariableUncertainty()
    assert (vu.budget, vu.theta, vu.step, vu.w) == (0.1, 1.0, 0.01, 100)
    assert S.Split().v == 0.1
    assert S.RandomizedVariableUncertainty().delta == 1.0
    biqf = S.BalancedIncrementalQuantileFilter()
    assert (biqf.w, biqf.w_tol) == (100, 50)


# -- parity with scikit-activeml: same utilities, one at a time ---------------


def _sk_decisions(manager, utilities, pass_utilities=False):
    out = []
    for u in utilities:
        arr = np.array([u])
        queried = manager.query_by_utility(arr)
        if pass_utilities:
            manager.update(arr.reshape(1, 1), queried, utilities=arr)
        else:
            manager.update(arr.reshape(1, 1), queried)
        out.append(len(queried) > 0)
    return out


@pytest.mark.parametrize("budget", [0.05, 0.1, 0.3])
def test_variable_uncertainty_matches_scikit_activeml(budget):
    us = _utilities(4000)
    ours = S.VariableUncertainty(budget=budget).ask_many(us)
    theirs = _sk_decisions(VariableUncertaintyBudgetManager(budget=budget), us)
    assert ours == theirs
    assert sum(ours) > 0


@pytest.mark.parametrize("budget", [0.1, 0.3])
@pytest.mark.parametrize("n_classes", [2, 5])
def test_fixed_uncertainty_matches_scikit_activeml(budget, n_classes):
    us = _utilities(3000)
    ours = S.FixedUncertainty(budget=budget, n_classes=n_classes).ask_many(us)
    sk = FixedUncertaintyBudgetManager(classes=list(range(n_classes)), budget=budget)
    assert ours == _sk_decisions(sk, us)
    assert sum(ours) > 0


@pytest.mark.parametrize("budget", [0.05, 0.1, 0.3])
def test_quantile_filter_matches_scikit_activeml(budget):
    us = _utilities(3000)
    ours = S.BalancedIncrementalQuantileFilter(budget=budget).ask_many(us)
    theirs = _sk_decisions(SkBIQF(budget=budget), us, pass_utilities=True)
    assert ours == theirs
    assert sum(ours) > 0


@pytest.mark.parametrize("budget", [0.1, 0.25])
def test_periodic_matches_scikit_activeml(budget):
    sk = SkPeriodic(budget=budget)
    theirs = []
    for _ in range(1000):
        x = np.zeros((1, 1))
        q = sk.query(x)
        sk.update(x, q)
        theirs.append(len(q) > 0)
    assert S.PeriodicSampling(budget=budget).ask_many([0.0] * 1000) == theirs


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda seed, us: S.RandomizedVariableUncertainty(seed=seed).ask_many(us),
            lambda seed, us: _sk_decisions(
                RandomVariableUncertaintyBudgetManager(random_state=seed, budget=0.1), us
            ),
        ),
        (
            lambda seed, us: S.Split(seed=seed).ask_many(us),
            lambda seed, us: _sk_decisions(SplitBudgetManager(random_state=seed, budget=0.1), us),
        ),
        (
            lambda seed, us: S.RandomSampling(seed=seed).ask_many(us),
            lambda seed, us: _sk_decisions(RandomBudgetManager(random_state=seed, budget=0.1), us),
        ),
    ],
    ids=["randomized_variable_uncertainty", "split", "random_sampling"],
)
def test_randomized_strategies_match_in_distribution(ours, theirs):
    us = _utilities(2000)
    seeds = range(12)
    a_runs = [ours(s, us) for s in seeds]
    b_runs = [theirs(s, us) for s in seeds]
    a = [sum(r) / len(us) for r in a_runs]
    b = [sum(r) / len(us) for r in b_runs]
    # same spending rate within a few standard errors of the seed-to-seed spread
    se = (statistics.pvariance(a) / len(a) + statistics.pvariance(b) / len(b)) ** 0.5
    assert abs(statistics.fmean(a) - statistics.fmean(b)) <= 4 * se + 1e-3
    # and they prefer the same records: mean utility of queried records agrees
    qa = [u for r in a_runs for u, q in zip(us, r, strict=True) if q]
    qb = [u for r in b_runs for u, q in zip(us, r, strict=True) if q]
    assert abs(statistics.fmean(qa) - statistics.fmean(qb)) < 0.03


def test_variable_uncertainty_threshold_resets_on_drift():
    s = S.VariableUncertainty()
    s.ask_many([0.9] * 50)
    assert s.threshold < 1.0
    s.on_drift()
    assert s.threshold == 1.0


def test_exploration_passes_the_contract():
    for check in yield_checks(
        lambda seed: S.Exploration(S.VariableUncertainty(budget=0.08), rate=0.02, seed=seed)
    ):
        check()


def test_exploration_gives_every_record_a_chance():
    inner = S.FixedUncertainty(budget=0.5)  # never asks when confidence is 1
    s = S.Exploration(inner, rate=0.05, seed=3)
    asked, probabilities = [], []
    for _ in range(4000):
        asked.append(s.ask(0.0))  # certain every time
        probabilities.append(s.query_probability)
    assert set(probabilities) == {0.05}
    assert 0.035 < sum(asked) / 4000 < 0.065
    assert s.budget == pytest.approx(0.55)
    assert not s.ask(0.9, allowed=False) and s.query_probability == 0.0


def test_density_based_skips_outliers_the_learner_shows_it():
    from streamal import ActiveLearner

    class Unsure:  # every record looks uncertain, so only density decides
        def predict_proba_one(self, x):
            return {"a": 0.5, "b": 0.5}

        def learn_one(self, x, y):
            pass

    learner = ActiveLearner(model=Unsure(), strategy=S.DensityBasedActiveLearning(budget=0.2),
                            cold_start=0, budget_cap=False, exploration_share=0)  # fmt: skip
    rng = random.Random(4)
    asked = {"dense": 0, "outlier": 0}
    for i in range(3000):
        outlier = i % 60 == 0  # one outlier at a time in the window of 100
        far = 1000.0 * (1 + i) * (1 if (i // 60) % 2 else -1)  # on alternate sides
        x = {"x": rng.gauss(far, 1.0) if outlier else rng.gauss(0.0, 1.0)}
        if learner.decide(x, now=0.0).query:
            asked["outlier" if outlier else "dense"] += 1
    assert asked["outlier"] == 0 and asked["dense"] > 300


# -- probabilistic active learning ------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 4).flatmap(lambda n: st.lists(st.floats(0.0, 40.0), min_size=n, max_size=n)),
    st.integers(1, 3),
    st.sampled_from([1e-3, 0.1, 1.0]),
)
def test_expected_gain_is_scikit_activeml_cost_reduction(frequencies, m_max, prior):
    from skactiveml.pool._probabilistic_al import cost_reduction

    from streamal.strategies.pal import expected_gain

    theirs = float(cost_reduction(np.array([frequencies]), m_max=m_max, prior=prior)[0])
    assert expected_gain(frequencies, prior, m_max) == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def _two_gaussians(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 1, (n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return X, y


@pytest.mark.parametrize("budget", [0.1, 0.2])
def test_probabilistic_al_decides_as_scikit_activeml_on_the_same_frequencies(budget):
    """Given the frequencies scikit-activeml's Parzen window classifier gives, same decisions."""
    from skactiveml.classifier import ParzenWindowClassifier
    from skactiveml.stream import StreamProbabilisticAL

    from streamal.strategies.pal import expected_gain

    X, y = _two_gaussians(400, seed=1)
    theirs_strategy = StreamProbabilisticAL(budget=budget)  # frequencies from clf
    ours = S.ProbabilisticActiveLearning(budget=budget)
    clf = ParzenWindowClassifier(classes=[0, 1], metric="rbf", metric_dict={"gamma": "mean"})
    y_known = np.full(len(y), np.nan)
    y_known[:2] = y[:2]  # a first label of each class, as both need some frequencies
    same = 0
    for t in range(2, len(y)):
        x = X[t : t + 1]
        queried, utilities = theirs_strategy.query(
            x, clf=clf, X=X[:t], y=y_known[:t], fit_clf=True, return_utilities=True
        )
        theirs_strategy.update(x, queried, {"utilities": utilities})
        clf.fit(X[:t], y_known[:t])
        gain = expected_gain(clf.predict_freq(x)[0].tolist())
        asked = ours.ask(gain)
        same += asked == (len(queried) > 0)
        if len(queried):
            y_known[t] = y[t]
    assert same == len(y) - 2
    assert 0.5 * budget * len(y) < np.sum(~np.isnan(y_known)) < 1.5 * budget * len(y)


def test_probabilistic_al_spends_like_scikit_activeml_end_to_end():
    """Our own frequency estimate: as often, and as much near the boundary, as theirs."""
    from skactiveml.classifier import ParzenWindowClassifier
    from skactiveml.stream import StreamProbabilisticAL

    X, y = _two_gaussians(1200, seed=2)
    theirs_strategy = StreamProbabilisticAL(budget=0.1)
    clf = ParzenWindowClassifier(classes=[0, 1], metric="rbf", metric_dict={"gamma": "mean"})
    y_known = np.full(len(y), np.nan)
    ours = S.ProbabilisticActiveLearning(budget=0.1)
    ours_asked, theirs_asked = [], []
    for t in range(len(y)):
        x = X[t : t + 1]
        queried, utilities = theirs_strategy.query(
            x, clf=clf, X=X[: max(t, 1)], y=y_known[: max(t, 1)], fit_clf=True,
            return_utilities=True,
        )  # fmt: skip
        theirs_strategy.update(x, queried, {"utilities": utilities})
        if len(queried):
            y_known[t] = y[t]
            theirs_asked.append(t)
        features = {"a": float(X[t, 0]), "b": float(X[t, 1])}
        ours.observe(features)
        if ours.ask(1.0):
            ours.learned(features, int(y[t]))
            ours_asked.append(t)
    near = lambda ts: np.mean(np.abs(X[ts].sum(axis=1)) < 1.0)  # noqa: E731
    everywhere = np.mean(np.abs(X.sum(axis=1)) < 1.0)
    assert abs(len(ours_asked) - len(theirs_asked)) < 0.03 * len(y)
    # both prefer the boundary region over the stream at large, to a similar degree
    assert near(ours_asked) > everywhere and near(theirs_asked) > everywhere
    assert abs(near(ours_asked) - near(theirs_asked)) < 0.1


def test_probabilistic_al_learns_from_the_labels_the_learner_applies():
    from streamal import ActiveLearner

    strategy = S.ProbabilisticActiveLearning(budget=0.2)
    learner = ActiveLearner(strategy=strategy)
    X, y = _two_gaussians(600, seed=3)
    for x, label in zip(X, y, strict=True):
        d = learner.decide({"a": float(x[0]), "b": float(x[1])})
        if d.query:
            learner.learn(d.request_id, int(label))
    assert len(strategy._labelled) == learner.labels_applied > 50
    restored = ActiveLearner.from_state(pickle.loads(pickle.dumps(learner.state())))
    x = {"a": 0.1, "b": -0.2}
    assert restored.decide(x).utility == learner.decide(x).utility


# -- cognitive dual query ---------------------------------------------------------


def test_cognitive_dual_query_skips_noise_and_forgets_an_old_concept():
    s = S.CognitiveDualQuery(budget=0.3, memory=50, fading=50.0)
    rng = random.Random(5)
    asked = {"old": 0, "noise": 0, "new": 0}
    for i in range(1500):
        x = [rng.gauss(0.0, 1.0) for _ in range(5)]
        if i % 40 == 0:  # an isolated noisy record now and then, each in another direction
            k = i // 40
            x[k % 5] += 1000.0 * (1 if (k // 5) % 2 else -1)
            kind = "noise"
        elif i < 700:
            kind = "old"
        else:  # the concept moves far away at record 700
            x[0] += 500.0
            kind = "new"
        s.observe({f"x{j}": v for j, v in enumerate(x)})
        asked[kind] += s.ask(0.9)
        if i == 699:  # noise is forgotten about 115 records (fading * ln 10) after it came
            assert (np.abs(s._points) > 100).any(axis=1).sum() <= 3
    assert asked["noise"] == 0
    assert asked["old"] > 50 and asked["new"] > 50
    # the old concept is no longer recalled, so it fades from memory
    assert not (np.abs(s._points) < 100).all(axis=1).any() and s.forgotten > 0


def test_cognitive_dual_query_invalid_parameters():
    for params in ({"memory": 0}, {"fading": 0.0}, {"forget_below": 1.5}):
        with pytest.raises(ValueError):
            S.CognitiveDualQuery(**params)


def test_probabilistic_al_density_weight_discounts_records_far_from_the_stream():
    plain = S.ProbabilisticActiveLearning(budget=0.2)
    weighted = S.ProbabilisticActiveLearning(budget=0.2, density=True)
    X, y = _two_gaussians(300, seed=7)
    for s in (plain, weighted):
        for x, label in zip(X, y, strict=True):
            features = {"a": float(x[0]), "b": float(x[1])}
            s.observe(features)
            if s.ask(1.0):
                s.learned(features, int(label))
    gains = {}
    for where, point in (("tail", {"a": 3.0, "b": 3.0}), ("far", {"a": 40.0, "b": -40.0})):
        plain.observe(point)
        weighted.observe(point)
        gains[where] = (plain.gain, weighted.gain)
    # no labels near either: the far record looks worth more, until its density counts
    assert gains["far"][0] > gains["tail"][0] > 0
    assert gains["far"][1] < gains["tail"][1] <= gains["tail"][0]


def test_random_sampling_without_window_spends_its_whole_budget_under_the_cap():
    from streamal import BudgetCap

    spent = []
    for seed in range(20):
        strategy, cap = S.RandomSampling(budget=0.05, w=None, seed=seed), BudgetCap(0.05)
        queried = 0
        for _ in range(1_500):
            query = strategy.ask(0.5, cap.allows())
            cap.spend(query)
            queried += query
        spent.append(queried)
    # dropping the draws the cap forbids left it at about 69 of its 75 labels; the records
    # the cap holds back (not counted, so that it never turns periodic) cost it about 2
    assert sum(spent) / len(spent) >= 0.05 * 1_500 - 2.5
    assert max(spent) <= 0.05 * 1_500 + 1


def test_random_sampling_at_half_the_records_stays_random_under_the_cold_start_and_cap():
    from streamal.evaluation import run_strategy

    xs = [{str(k): v for k, v in x.items()} for x, _ in synth.SEA(seed=1).take(2000)]
    ys = [y for _, y in synth.SEA(seed=1).take(2000)]
    runs = [run_strategy(xs, ys, "random_sampling", budget=0.5, seed=seed) for seed in range(3)]
    # once every other record, whatever the seed, before: the cold start had filled the cap
    assert len({r.accuracy for r in runs}) == 3
    assert all(0.5 * 2000 - 10 <= r.queries <= 0.5 * 2000 + 1 for r in runs)


def test_entropy_sampling_on_auto_gets_the_entropy_and_selective_sampling_the_margin():
    from streamal import ActiveLearner

    assert ActiveLearner(strategy="entropy_sampling").utility_name == "entropy"
    assert ActiveLearner(strategy="selective_sampling").utility_name == "margin"
