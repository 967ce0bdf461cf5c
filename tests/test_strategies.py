"""Strategies: the shared contract, scikit-activeml parity, invalid parameters."""

import random
import statistics

import numpy as np
import pytest
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
                            cold_start=0, budget_cap=False)  # fmt: skip
    rng = random.Random(4)
    asked = {"dense": 0, "outlier": 0}
    for i in range(3000):
        outlier = i % 60 == 0  # one outlier at a time in the window of 100
        far = 1000.0 * (1 + i) * (1 if (i // 60) % 2 else -1)  # on alternate sides
        x = {"x": rng.gauss(far, 1.0) if outlier else rng.gauss(0.0, 1.0)}
        if learner.decide(x, now=0.0).query:
            asked["outlier" if outlier else "dense"] += 1
    assert asked["outlier"] == 0 and asked["dense"] > 300
