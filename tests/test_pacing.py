"""Pacing guards: labels per hour and per day, cost budgets; exact under an injected clock."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamal import ActiveLearner, Record, strategies
from streamal.pacing import CostBudget, LabelRate


class Always:
    """A model that is always unsure: every record is worth a label."""

    def predict_proba_one(self, x):
        return {"a": 0.5, "b": 0.5}

    def learn_one(self, x, y):
        pass


def _learner(**kw):
    return ActiveLearner(
        model=Always(), strategy=strategies.FixedUncertainty(budget=1.0), cold_start=0, **kw
    )


@settings(max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 600.0), min_size=1, max_size=400),
    per_hour=st.sampled_from([1.0, 10.0, 60.0]),
    burst=st.sampled_from([1, 3, 10]),
)
def test_label_rate_never_exceeds_burst_plus_rate(gaps, per_hour, burst):
    learner = _learner(pacing=[LabelRate(per_hour=per_hour, burst=burst)])
    now, times = 0.0, []
    for i, gap in enumerate(gaps):
        now += gap
        if learner.decide(Record(str(i), {"x": 1.0}, ts=now)).query:
            times.append(now)
    for start in times:  # any window of T seconds holds at most burst + rate * T labels
        for end in times:
            if end >= start:
                n = sum(start <= t <= end for t in times)
                assert n <= burst + per_hour * (end - start) / 3600 + 1e-9


def test_label_rate_spends_the_rate_when_records_keep_coming():
    learner = _learner(pacing=[LabelRate(per_hour=120, burst=5)])
    asked = [learner.decide({"x": 1.0}, now=float(s)).query for s in range(3600)]
    assert sum(asked) == 5 + 120 - 1  # the burst, then one every 30 s
    assert learner.n_queries == sum(asked)


def test_daily_cap_resets_at_midnight():
    learner = _learner(pacing=[LabelRate(per_hour=3600, burst=100, per_day=7)])
    day1 = [learner.decide({"x": 1.0}, now=1000.0 + s).query for s in range(50)]
    day2 = [learner.decide({"x": 1.0}, now=86_400.0 + s).query for s in range(50)]
    assert sum(day1) == 7 and sum(day2) == 7


@settings(max_examples=50, deadline=None)
@given(costs=st.lists(st.floats(0.0, 20.0) | st.none(), min_size=1, max_size=300),
       per_record=st.sampled_from([0.1, 1.0, 3.0]))  # fmt: skip
def test_cost_budget_holds_for_any_costs(costs, per_record):
    learner = _learner(pacing=[CostBudget(per_record=per_record, cost="cost")])
    spent, top = 0.0, 0.0
    for n, c in enumerate(costs, start=1):
        features = {"x": 1.0} if c is None else {"x": 1.0, "cost": c}
        cost = 1.0 if c is None else c
        top = max(top, cost)
        if learner.decide(features, now=0.0).query:
            spent += cost
        assert spent <= per_record * n + 1e-9


def test_pacing_combines_with_the_fraction_budget_and_batches_agree():
    def make():
        return ActiveLearner(
            model=Always(), strategy=strategies.FixedUncertainty(budget=0.3), cold_start=0,
            pacing=[LabelRate(per_hour=600, burst=2), CostBudget(0.5, cost=lambda x: x["c"])],
        )  # fmt: skip

    records = [Record(f"r{i}", {"x": 1.0, "c": float(i % 3)}, ts=float(i)) for i in range(600)]
    one, many = make(), make()
    by_one = [one.decide(r) for r in records]
    by_many = [d for k in range(0, 600, 50) for d in many.decide_many(records[k : k + 50])]
    assert by_one == by_many
    asked = sum(d.query for d in by_one)
    assert 0 < asked <= math.ceil(0.3 * 600) + 1
    assert asked <= 2 + 600 * 600 / 3600


def test_bad_guards_and_parameters_are_refused():
    with pytest.raises(TypeError, match="allows"):
        _learner(pacing=[object()])
    with pytest.raises(ValueError, match="per_hour"):
        LabelRate(per_hour=0)
    with pytest.raises(ValueError, match="per_day"):
        LabelRate(per_hour=1, per_day=0)
    with pytest.raises(TypeError, match="cost"):
        CostBudget(1.0, cost=3)


class ScriptedDrift:
    """Reports drift at the given label counts: a stand-in for a detector."""

    def __init__(self, at):
        self.at, self.n, self.detections = set(at), 0, 0

    def update(self, error):
        self.n += 1
        hit = self.n in self.at
        self.detections += hit
        return hit


@settings(max_examples=40, deadline=None)
@given(
    drifts=st.lists(st.integers(1, 400), max_size=4),
    boost=st.sampled_from([2.0, 3.0, 5.0]),
    window=st.sampled_from([50, 200]),
    name=st.sampled_from(["balanced_incremental_quantile_filter", "variable_uncertainty",
                          "random_sampling"]),
)  # fmt: skip
def test_drift_boost_spends_more_then_pays_back(drifts, boost, window, name):
    b, n_records = 0.1, 3000
    learner = ActiveLearner(
        model=Always(), strategy=strategies.get(name, budget=b, seed=1), cold_start=0,
        drift=ScriptedDrift(drifts), drift_boost=boost, boost_window=window,
    )  # fmt: skip
    queried, fired_at = 0, []
    for n in range(1, n_records + 1):
        d = learner.decide({"x": 1.0}, now=0.0)
        queried += d.query
        before = learner.drift_detections
        if d.query:
            learner.learn(d.request_id, "a", now=0.0)
        if learner.drift_detections > before:
            fired_at.append(n)
        assert queried <= math.ceil(b * n) + 1 + (boost - 1) * b * window + 1e-9
        if fired_at and n >= fired_at[-1] + boost * window:
            assert queried <= math.ceil(b * n) + 1  # the loan is paid back
    assert learner.drift_detections == len(fired_at)


def test_drift_boost_spends_k_times_the_rate_after_a_drift():
    def asked_after_drift(boost):
        learner = ActiveLearner(
            model=Always(), strategy=strategies.BalancedIncrementalQuantileFilter(budget=0.1),
            cold_start=0, drift=ScriptedDrift([100]), drift_boost=boost, boost_window=500,
        )  # fmt: skip
        asked = []
        for _ in range(3000):
            d = learner.decide({"x": 1.0}, now=0.0)
            asked.append(d.query)
            if d.query:
                learner.learn(d.request_id, "a", now=0.0)
        start = next(i for i, _ in enumerate(asked) if sum(asked[: i + 1]) == 100) + 1
        return sum(asked[start : start + 500]), sum(asked)

    plain, plain_total = asked_after_drift(1.0)
    boosted, boosted_total = asked_after_drift(3.0)
    assert plain <= 52 and boosted >= 130  # about 3x the rate in the window
    assert boosted_total <= math.ceil(0.1 * 3000) + 1  # and the whole run still within budget
