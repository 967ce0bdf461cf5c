"""ActiveLearner: the embeddable decision logic, with no I/O.

It owns the model, the query strategy, the hard budget cap, the drift
monitor and the table of pending requests. Call ``decide`` for each record
and ``learn`` whenever a label comes back, from any loop you like.

>>> from streamal import ActiveLearner, strategies
>>> learner = ActiveLearner(strategy=strategies.VariableUncertainty(budget=0.2))
>>> asked = 0
>>> for i in range(200):
...     x = {"x": float(i % 7), "y": float(i % 3)}
...     d = learner.decide(x)
...     if d.query:
...         asked += 1
...         _ = learner.learn(d.request_id, x["x"] > 3)
>>> asked <= 0.2 * 200 + 1
True
>>> learner.labels_applied == asked
True
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streamal.annotators import AnnotatorReliability
from streamal.budget import BudgetCap
from streamal.drift import DriftMonitor
from streamal.latency import LabelLatency
from streamal.model import Classifier, default_model
from streamal.pending import PendingRequest, PendingRequests
from streamal.records import Decision, Decisions, Record, label_problem
from streamal.schema import InvalidRecord, RecordValidator
from streamal.strategies import PerClassQuantileFilter, QueryStrategy
from streamal.strategies import get as get_strategy
from streamal.strategies.exploration import Exploration
from streamal.utility import AUTO, get_utility

__all__ = ["ActiveLearner"]

log = logging.getLogger("streamal")

_STATE_FORMAT = 1

#: default share of the budget spent on records picked at random
EXPLORATION_SHARE = 0.05
# in the order Decisions takes its columns
_DECISION_COLUMNS = ("record_id", "probabilities", "confidence", "utility", "query",
                     "query_probability", "request_id")  # fmt: skip
_EXPIRE_EVERY = 256


class ActiveLearner:
    """Decides which records to label and learns from the labels that come back.

    Parameters
    ----------
    model
        A river classifier (or anything with ``predict_proba_one`` and
        ``learn_one``). Default: ``StandardScaler | LogisticRegression``
        with the scaled features bounded to [-2, 2] and a weight for each
        one's bin of 0.5 (``default_model``), one-vs-rest for more than two
        classes. Labels of any hashable type
        work; binary-only models get their labels mapped.
    strategy
        A ``QueryStrategy`` or its snake_case name. Default:
        ``PerClassQuantileFilter(budget=0.1)``, the balanced incremental
        quantile filter run apart for each predicted class (the docs'
        benchmarks pages compare it with the others).
    budget
        Used only when ``strategy`` is given by name.
    utility
        ``"margin"``, ``"least_confidence"`` or ``"entropy"``
        (``streamal.utility``), or ``"auto"`` (the default): the strategy's
        ``preferred_utility``, margin for the quantile filters (the default
        strategy among them), least confidence for the strategies that
        threshold the confidence, as their papers do. On two classes margin
        and least confidence order records alike.
    unsupervised
        What the unsupervised steps of a pipeline model (the scaler) learn
        from: only the ``"labelled"`` records (the default), as the pipeline
        alone would, or ``"all"`` records decided. Every record's features
        are at hand, while the labelled ones are few and, under an
        uncertainty strategy, drawn from near the decision boundary; but
        ``"all"`` costs a scaler update on every record (about as much as the
        model call). Ignored when ``model`` is already a ``Classifier``, which has its own.
    budget_cap
        Put a hard cap over the strategy: after ``n`` records at most
        ``ceil(budget n) + 1`` requests. On by default.
    drift
        ``True`` for an ADWIN monitor on the error stream of labelled
        records, a ``DriftMonitor``, or ``None`` for none. On drift the
        strategy's threshold is reset.
    pending_ttl, max_pending
        Time-to-live (seconds of the learner's clock) and size bound of the
        pending-request table.
    cold_start
        While fewer than two classes, or fewer than this many labels of
        some class, have been seen, query every record the cap allows
        (up to ``cold_start_max`` labels), so an untrained model cannot
        starve the strategy.
    classes
        Labels known in advance (optional). When given, a label that is
        not one of them is refused (``"invalid_label"``) instead of starting
        a new class; ``add_class`` adds one on purpose.
    validator
        Checks each record's features before the model sees them: a NaN,
        infinite, huge or non-numeric value, or a string where the first
        record had a number, raises ``InvalidRecord`` (a ``ValueError``) and
        leaves the learner as it was. Default:
        ``RecordValidator(require_all=False)``, which lets a record lack
        features others had; the daemon requires them all unless told not to.
    pacing
        Guards beside the cap, such as ``LabelRate(per_hour=120)`` or
        ``CostBudget(per_record=0.5, cost="pages")`` (``streamal.pacing``):
        while any of them forbids it, no label is requested. They run on the
        learner's time (event time, else ``clock``).
    exploration
        Query a record the strategy skipped with this probability (0: never),
        so that every record can be labelled and the importance-weighted
        accuracy (``weighted_accuracy``) estimates the accuracy on all
        records, not only on the hard ones queried. The hard cap allows the
        strategy's budget plus this rate.
    exploration_share
        Share of the budget spent on records picked at random, whatever the
        label delay; the strategy gets the rest. An uncertainty strategy
        never asks about the records the model is sure of, right or wrong;
        these picks reach them, and they make every record's query
        probability positive. Late exploration can raise the share, never
        lower it. A larger share takes labels from the strategy; a smaller
        one leaves the regions where the model is sure and wrong unlabelled.
    late_exploration, late_delay
        When labels come late, move up to ``late_exploration`` of the
        strategy's budget to exploration (records picked at random): an
        uncertainty measured by a model that has not yet learned the last
        ``d`` records' labels points at the wrong records. The share grows
        with the label delay ``d`` measured in records (a running mean over
        labels): ``late_exploration * min(1, d / late_delay)``, in steps of
        an eighth, never below ``exploration_share``. With labels at once
        it leaves the exploration share as it is. ``0`` turns it off.
    second_opinion_below
        When a label comes from an annotator whose implied accuracy
        (``annotators.accuracy``: 1 for the annotator who agrees most with
        the model) is below this, after at least 20 of their labels,
        hold it and ask another annotator: the request stays open and its id
        is put on ``second_opinions`` for the loop to send out again. When
        the second label comes, both agree or the more reliable annotator's
        label is learned. 0 (the default) never asks twice.
    background
        Train a second model from the moment a more sensitive detector warns
        of drift, and swap it in when the drift is confirmed, so that the
        new concept is learned from labels of the new concept only. If no
        drift follows within ``background_patience`` labels, the warning was
        false and the second model is dropped. Needs a drift monitor.
    confidence_drift
        ``True`` for an ADWIN monitor on the confidence of every record (or a
        ``DriftMonitor``): a drift signal that needs no label, so it also
        works while labels are late or scarce. It acts as a drift of the
        error stream does. Off by default: it costs about a microsecond a
        record, and ``decide_many`` then decides record by record.
    drift_boost, boost_window
        After a detected drift, spend up to ``drift_boost`` times the budget
        for ``boost_window`` records (the extra labels picked at random, so
        that the new concept is seen everywhere), then pay the extra back:
        the cap lends it and holds queries until the spending is back under
        ``ceil(budget n) + 1``. ``1`` (the default) turns it off.
    seed
        Seed handed to a strategy built by name.
    clock
        Returns the current time in seconds, used when a record carries no
        event time. Inject a fake one in tests. When records carry event
        times, the pending table's TTL runs on them: a label is placed at the
        latest event time seen.
    """

    def __init__(
        self,
        model: Any = None,
        strategy: QueryStrategy | str | None = None,
        *,
        budget: float = 0.1,
        utility: str = AUTO,
        unsupervised: str = "labelled",
        budget_cap: bool = True,
        drift: bool | DriftMonitor | None = True,
        pending_ttl: float | None = 86_400.0,
        max_pending: int = 100_000,
        cold_start: int = 3,
        cold_start_max: int = 50,
        classes: Iterable[Any] | None = None,
        validator: RecordValidator | None = None,
        pacing: Iterable[Any] = (),
        exploration: float = 0.0,
        exploration_share: float = EXPLORATION_SHARE,
        late_exploration: float = 0.5,
        late_delay: int = 200,
        second_opinion_below: float = 0.0,
        background: bool = False,
        background_patience: int = 500,
        confidence_drift: bool | DriftMonitor | None = None,
        drift_boost: float = 1.0,
        boost_window: int = 500,
        seed: int | None = 0,
        clock: Callable[[], float] = time.time,
    ):
        classes = list(classes) if classes is not None else None
        for c in classes or ():
            if (problem := label_problem(c)) is not None:
                raise ValueError(f"classes: {problem}")
        #: the labels accepted, when fixed: a label's text form maps to its class,
        #: so that "1" from a form and 1 from JSON reach the same class
        self.fixed_classes: dict[Any, Any] | None = {} if classes else None
        for c in classes or ():
            self._accept_class(c)
        self.validator = validator if validator is not None else RecordValidator(require_all=False)
        if model is None:
            model = default_model(len(classes) if classes else 2)
        if not isinstance(model, Classifier):
            model = Classifier(model, classes, unsupervised=unsupervised)
        self.model = model
        if strategy is None:
            strategy = PerClassQuantileFilter(budget=budget)
        elif isinstance(strategy, str):
            strategy = get_strategy(strategy, budget=budget, seed=seed)
        if not callable(getattr(strategy, "ask", None)):
            raise TypeError(f"strategy must be a QueryStrategy or a name, got {strategy!r}")
        if not (isinstance(drift_boost, int | float) and drift_boost >= 1.0):
            raise ValueError(f"drift_boost must be a number >= 1, got {drift_boost!r}")
        if not (isinstance(boost_window, int) and boost_window > 0):
            raise ValueError(f"boost_window must be a positive integer, got {boost_window!r}")
        for name, share in (("exploration_share", exploration_share),
                            ("late_exploration", late_exploration)):  # fmt: skip
            if not (isinstance(share, int | float) and 0.0 <= share < 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {share!r}")
        if not (isinstance(late_delay, int) and late_delay > 0):
            raise ValueError(f"late_delay must be a positive integer, got {late_delay!r}")
        self.exploration = exploration
        self.exploration_share = float(exploration_share)
        self.late_exploration = float(late_exploration)
        self.late_delay = late_delay
        self.label_delay: float | None = None  # running mean, in records
        self.drift_boost = float(drift_boost)
        self.boost_window = boost_window
        self._seed = seed
        self.pacing = tuple(pacing)
        for guard in self.pacing:
            if not all(callable(getattr(guard, verb, None)) for verb in ("allows", "spend")):
                raise TypeError(f"a pacing guard needs allows() and spend(), got {guard!r}")
        if confidence_drift is True:
            confidence_drift = DriftMonitor()
        self.confidence_drift = confidence_drift or None
        self.strategy = strategy  # a property: also sets what decides (see below)
        if utility == AUTO:
            utility = getattr(strategy, "preferred_utility", "least_confidence")
        self.utility_name = utility
        self._utility = get_utility(utility)
        self._least_confidence = utility == "least_confidence"
        self.cap = BudgetCap(self._policy.budget) if budget_cap else None
        if drift is True:
            drift = DriftMonitor()
        self.drift = drift or None
        # a warning: ADWIN with a looser confidence than the drift detector's
        if background and not callable(getattr(self.model.model, "clone", None)):
            raise TypeError("background=True needs a model with clone(), as river models have")
        self.warning = _warning_monitor() if background and self.drift is not None else None
        self.background: Classifier | None = None
        self.background_patience = background_patience
        self._background_since = 0
        self.model_swaps = 0
        self.pending = PendingRequests(ttl=pending_ttl, max_size=max_pending)
        self.cold_start = cold_start
        self.cold_start_max = cold_start_max
        self.clock = clock
        # plain counters: read by the metrics collector at scrape time
        self.n_records = 0
        self.n_queries = 0
        self.labels_applied = 0
        self.labels_rejected: Counter[str] = Counter()
        #: seconds from each request to its label (the learner's time)
        self.label_latency = LabelLatency()
        self.label_counts: Counter[Any] = Counter()
        self.labelled_correct = 0
        self.labelled_scored = 0
        self.iw_correct = 0.0
        self.iw_total = 0.0
        self.annotators = AnnotatorReliability()
        self.second_opinion_below = second_opinion_below
        #: (request id, annotator to avoid) for each label held for a second opinion
        self.second_opinions: list[tuple[str, str]] = []
        self._held: dict[str, tuple[str, Any]] = {}
        self._warm = cold_start <= 0
        self._event_time: float | None = None

    # -- deciding -------------------------------------------------------------

    def decide(self, record: Record | Mapping[str, Any], now: float | None = None) -> Decision:
        """Score one record and decide whether to request its label."""
        if not isinstance(record, Record):
            record = Record(id=f"r{self.n_records + 1}", features=_features_of(record))
        problem = self.validator.check(record.features)
        if problem is not None:
            raise InvalidRecord(problem)
        if now is None:
            if record.ts is not None:
                now = record.ts
                self._saw_event_time(now)
            else:
                now = self.clock()
        self.n_records += 1
        # this is the hot path: a few attribute reads and no needless calls
        proba, prediction, confidence = self.model.score(record.features)
        if self._least_confidence:
            utility = 1.0 - confidence  # 1 too while nothing is learned: confidence is 0
        else:
            utility = self._utility(proba)
        if self._extras:  # one flag for the options that look at every record
            self._look(record.features, proba, prediction, confidence)
        cap = self.cap
        allowed = cap.allows() if cap is not None else True
        if self._extras and allowed and self.pacing:
            allowed = all(guard.allows(record.features, now) for guard in self.pacing)
        if self._warm or self._warmed_up():
            strategy = self._policy
            query = strategy.ask(utility, allowed)
            query_probability = strategy.query_probability
            reason = "strategy"
        else:
            query = allowed
            query_probability = 1.0 if allowed else 0.0
            reason = "cold_start"
        request_id = None
        if cap is not None:
            cap.spend(query)
        if self._extras:
            for guard in self.pacing:
                guard.spend(record.features, now, query)
        if query:
            self.n_queries += 1
            request_id = f"q-{record.id}"
            self.pending.add(
                request_id,
                record.features,
                now=now,
                record_id=record.id,
                prediction=prediction,
                query_probability=query_probability,
                position=self.n_records,
                utility=utility,
                reason=reason,
                probabilities=proba,
            )
        if self.n_records % _EXPIRE_EVERY == 0:
            self.pending.expire(now)
        return Decision(
            record.id,
            query,
            request_id,
            utility,
            confidence,
            prediction,
            proba,
            query_probability,
            reason,
        )

    def decide_many(
        self, records: Iterable[Record | Mapping[str, Any]], now: float | None = None
    ) -> Decisions:
        """Decide a batch: what ``decide`` decides on each record in turn, faster.

        For a loop that has a batch at hand anyway (a poll from Kafka, a chunk
        of a file); labels learned between batches count as with ``decide``.
        Records without an event time take one clock reading for the batch.
        A record the model cannot score is counted but changes nothing else:
        its slot is ``None`` and the exception is in ``Decisions.failed``.

        Examples
        --------
        >>> learner = ActiveLearner(budget=0.5)
        >>> batch = learner.decide_many([{"x": 1.0}, {"x": 2.0}])
        >>> [d.request_id for _, d in batch.queried()]
        ['q-r1', 'q-r2']
        """
        if self._each:  # pacing, density, confidence drift look at each record in turn
            return self._decide_each(records, now)
        first = self.n_records + 1
        records = records if isinstance(records, list) else list(records)
        batch = [r if isinstance(r, Record) else Record(f"r{first + i}", _features_of(r))
                 for i, r in enumerate(records)]  # fmt: skip
        features = [r.features for r in batch]
        problems = self.validator.check_many(features)
        refused: list[tuple[int, Exception]] = []
        if problems is not None:
            # a refused record leaves no trace, as with decide: it takes no id, no count
            kept: list[Record] = []
            for i, (r, problem) in enumerate(zip(batch, problems, strict=True)):
                if problem is not None:
                    refused.append((i, InvalidRecord(problem)))
                elif isinstance(records[i], Record):
                    kept.append(r)
                else:
                    kept.append(Record(f"r{first + len(kept)}", r.features))
            batch = kept
            features = [r.features for r in batch]
        model = self.model
        try:
            probas, confidences = model.score_many(features)
            failed: list[tuple[int, Exception]] = []
        except Exception:  # find the records at fault; the others go on
            batch, probas, confidences, failed = self._score_each(batch)
        n_failed = len(failed)
        if refused:
            failed = _merge_failed(refused, failed, len(records))
        if self._least_confidence:
            utilities = [1.0 - c for c in confidences]
        else:
            utility_of = self._utility
            utilities = [utility_of(p) for p in probas]
        warm = self._warm or self._warmed_up()
        reason = "strategy" if warm else "cold_start"
        cap = self.cap if self.cap is not None else BudgetCap(1.0)
        policy = self._policy if warm else _ColdStart()
        if warm and self._routes:
            predictions = [model.prediction_of(p) for p in probas]
            policy = _Told(policy, self._strategy.observe_prediction, predictions, probas)
        queries, query_probabilities = cap.ask_each(policy, utilities)
        self.n_records += len(batch) + n_failed  # the model's failures too: ids stay unique
        times = self._times(batch, now)
        request_ids: list[str | None] = [None] * len(batch)
        add, prediction_of = self.pending.add, model.prediction_of
        for k in [k for k, query in enumerate(queries) if query]:
            record = batch[k]
            request_ids[k] = request_id = f"q-{record.id}"
            add(request_id, record.features, times[k], record.id, prediction_of(probas[k]),
                query_probabilities[k], first + k, utilities[k], reason, probas[k])  # fmt: skip
        self.n_queries += sum(queries)
        if batch and (first - 1) // _EXPIRE_EVERY != self.n_records // _EXPIRE_EVERY:
            self.pending.expire(times[-1])
        return Decisions(
            [r.id for r in batch], probas, confidences, utilities, queries, query_probabilities,
            request_ids,
            prediction_of=prediction_of, reason=reason,
            failed=failed,
        )  # fmt: skip

    def _decide_each(
        self, records: Iterable[Record | Mapping[str, Any]], now: float | None
    ) -> Decisions:
        made: list[Decision] = []
        failed: list[tuple[int, Exception]] = []
        for i, record in enumerate(records):
            try:
                made.append(self.decide(record, now))
            except Exception as e:
                failed.append((i, e))
        columns = [[getattr(d, f) for d in made] for f in _DECISION_COLUMNS]
        return Decisions(
            *columns, predictions=[d.prediction for d in made], reason=[d.reason for d in made],
            failed=failed,
        )  # fmt: skip

    def _score_each(self, batch: list[Record]) -> tuple[list, list, list, list]:
        kept, probas, confidences, failed = [], [], [], []
        for i, record in enumerate(batch):
            try:
                (proba,), (confidence,) = self.model.score_many([record.features])
            except Exception as e:
                failed.append((i, e))
                continue
            kept.append(record)
            probas.append(proba)
            confidences.append(confidence)
        return kept, probas, confidences, failed

    def _times(self, batch: list[Record], now: float | None) -> list[float]:
        if now is not None:
            return [now] * len(batch)
        stamps = [r.ts for r in batch]
        if None in stamps:
            clock = self.clock()
            stamps = [clock if t is None else t for t in stamps]
        event_times = [r.ts for r in batch if r.ts is not None]
        if event_times:
            self._saw_event_time(max(event_times))
        return stamps

    def _saw_event_time(self, t: float) -> None:
        # labels carry no time: they are placed at the latest event time
        if self._event_time is None or t > self._event_time:
            self._event_time = t

    @property
    def strategy(self) -> QueryStrategy:
        """The query strategy; setting it takes effect from the next record."""
        return self._strategy

    @strategy.setter
    def strategy(self, strategy: QueryStrategy) -> None:
        self._strategy = strategy
        # a strategy that looks at the features (density) is shown each record
        self._observes = bool(getattr(strategy, "needs_features", False))
        self._hears_labels = bool(getattr(strategy, "needs_labels", False))
        # one that keeps apart the records of each predicted class is told the prediction
        self._routes = bool(getattr(strategy, "needs_prediction", False))
        self._refresh()
        self._full_budget = strategy.budget
        self._late_share = 0.0
        self._explore_share(self.exploration_share)

    def _explore_share(self, share: float) -> None:
        """Give ``share`` of the budget to records picked at random, the rest to the strategy."""
        if share != self._late_share:
            self._late_share = share
            # rounded: 0.05 * 0.9 would print as 0.045000000000000005
            self._strategy.rebudget(round(self._full_budget * (1.0 - share), 12))
        self._decide_by()

    def _decide_by(self) -> None:
        """What decides: the strategy, or the strategy with an exploration floor."""
        strategy = self._strategy
        moved = self._full_budget * self._late_share
        # random picks fall among the records the strategy skips, 1 - its budget
        # of them: at this rate they spend the share moved, no less
        rate = self.exploration + (moved / (1.0 - strategy.budget) if moved else 0.0)
        rate = min(1.0, rate)
        if rate or self.drift_boost > 1.0:
            policy = self.__dict__.get("_policy")
            if not (isinstance(policy, Exploration) and policy.strategy is strategy):
                policy = self._policy = Exploration(strategy, rate, self._seed)
            policy.rate = rate
            policy.budget = min(1.0, self._full_budget + self.exploration)
        else:
            self._policy = strategy

    def _label_came(self, delay: int) -> None:
        """Track the label delay; past a step, move budget to or from exploration."""
        mean = self.label_delay
        self.label_delay = mean = delay if mean is None else mean + (delay - mean) / 100
        share = self.late_exploration * min(1.0, mean / self.late_delay)
        share = max(self.exploration_share, round(share * 8) / 8)
        if share != self._late_share:
            log.info("labels come %.0f records late: %.0f%% of the budget to exploration",
                     mean, 100 * share)  # fmt: skip
            self._explore_share(share)

    def _look(
        self, features: dict[str, Any], proba: dict, prediction: Any, confidence: float
    ) -> None:
        """What the options that watch every record do before the decision."""
        if self._observes:
            self.strategy.observe(features)
        if self._routes:
            self.strategy.observe_prediction(prediction, proba)
        monitor = self.confidence_drift
        if monitor is not None and proba and monitor.update(confidence):
            self._on_drift(f"in the confidence of {monitor.n} records")

    def _refresh(self) -> None:
        # options that need each record in turn, which decide_many then decides one by one
        self._each = bool(self.pacing or self.confidence_drift or self._observes)
        self._extras = self._each or self._routes

    def _warmed_up(self) -> bool:
        """True once the cold start is over (and from then on)."""
        counts = self.label_counts
        warm = (len(counts) >= 2 and min(counts.values()) >= self.cold_start) or (
            self.labels_applied >= self.cold_start_max
        )
        self._warm = warm
        return warm

    # -- learning -------------------------------------------------------------

    def learn(
        self,
        request: str | Mapping[str, Any],
        label: Any,
        *,
        now: float | None = None,
        weight: float = 1.0,
        annotator: str | None = None,
    ) -> str:
        """Apply a label; returns ``"applied"`` or why it was rejected.

        ``request`` is a request id from a ``Decision`` (labels may come late
        and in any order), or a feature dict to learn from directly. A
        label for an unknown, already answered or expired request is
        counted and its reason returned (``"unknown"``, ``"duplicate"``,
        ``"expired"``, ``"invalid_label"``); nothing is raised. With an
        ``annotator`` id, the label also updates that annotator's reliability
        (``annotators``) and is weighted by it.
        """
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        label = self._as_class(label)
        if label is _INVALID:
            self.labels_rejected["invalid_label"] += 1
            return "invalid_label"
        if not isinstance(request, str):
            if isinstance(request, Mapping):
                features = dict(request)
                self.validator.ensure(features)
                if annotator is not None:
                    weight *= self._annotator_weight(features, label, annotator)
                self._learn_features(features, label, weight, seen=False)
                return "applied"
            self.labels_rejected["unknown"] += 1
            return "unknown"
        if now is None:
            now = self._event_time if self._event_time is not None else self.clock()
        if annotator is not None and self.second_opinion_below:
            held = self._second_opinion(request, label, str(annotator))
            if isinstance(held, str):
                return held
            label, annotator = held
        req = self.pending.pop(request, now)
        if isinstance(req, str):
            self.labels_rejected[req] += 1
            return req
        self.label_latency.observe(now - req.created)
        if self.late_exploration:
            position = getattr(req, "position", -1)  # requests saved before it existed lack it
            if position >= 0:
                self._label_came(self.n_records - position)
        if req.prediction is not None:
            correct = req.prediction == label
            self.labelled_scored += 1
            self.labelled_correct += correct
            if req.query_probability > 0:
                w = 1.0 / req.query_probability
                self.iw_total += w
                self.iw_correct += w * correct
            warning = self.warning
            if warning is not None and warning.update(not correct) and self.background is None:
                # it learns from labels only: it is not shown the records until swapped in
                self.background = self.model.fresh(unsupervised="labelled")
                self._background_since = self.labels_applied
            if self.drift is not None and self.drift.update(not correct):
                self._on_drift(f"in the errors of {self.drift.n} labelled records")
                self._swap_in_background()
        if annotator is not None:
            weight *= self._annotator_weight(req.features, label, annotator)
        self._learn_features(req.features, label, weight)
        return "applied"

    def _as_class(self, label: Any) -> Any:
        """The class a label names, or ``_INVALID``."""
        if label_problem(label) is not None:
            return _INVALID
        fixed = self.fixed_classes
        if fixed is None:
            return label
        return fixed.get(label, fixed.get(str(label), _INVALID))

    def why_refused(self, request_id: Any, label: Any, outcome: str) -> str:
        """One line saying why ``learn(request_id, label)`` gave ``outcome``."""
        if outcome == "invalid_label":
            problem = label_problem(label)
            if problem is None and self.fixed_classes is not None:
                known = list(dict.fromkeys(self.fixed_classes.values()))
                problem = f"label {label!r} is not one of the classes {known!r}"
            return f"{problem or f'invalid label {label!r}'} (request {request_id!r})"
        if outcome in ("unknown", "duplicate", "expired"):
            return f"label for {outcome} request {request_id!r}"
        return f"label for request {request_id!r} not applied: {outcome}"

    def add_class(self, label: Any) -> None:
        """Accept ``label`` as a class from now on (when the classes are fixed).

        Examples
        --------
        >>> learner = ActiveLearner(classes=["spam", "ham"])
        >>> learner.learn({"x": 1.0}, "phishing")
        'invalid_label'
        >>> learner.add_class("phishing")
        >>> learner.learn({"x": 1.0}, "phishing")
        'applied'
        """
        if (problem := label_problem(label)) is not None:
            raise ValueError(problem)
        if self.fixed_classes is not None:
            self._accept_class(label)

    def _accept_class(self, label: Any) -> None:
        fixed = self.fixed_classes
        fixed.setdefault(label, label)
        fixed.setdefault(str(label), label)

    def _swap_in_background(self) -> None:
        background = self.background
        # swapped in once it has learned something of the new concept
        if background is not None and background.n_labels_seen >= 2:
            background.learn_unsupervised_from(self.model.unsupervised)
            self.model, self.background = background, None
            self.model_swaps += 1
            log.info("swapped in the model trained since the warning (%d labels)",
                     self.labels_applied - self._background_since)  # fmt: skip

    def _on_drift(self, where: str) -> None:
        self.strategy.on_drift()
        if self.drift_boost > 1.0:
            extra = (self.drift_boost - 1.0) * self._full_budget
            self._policy.boost(extra, self.boost_window)
            if self.cap is not None:
                self.cap.lend(extra, self.boost_window)
        log.info("drift detected %s (record %d); threshold reset", where, self.n_records)

    def _second_opinion(self, request_id: str, label: Any, annotator: str) -> tuple | str:
        """``"held"``, or the label and annotator to learn (resolving a held label)."""
        held = self._held.pop(request_id, None)
        if held is not None:
            first, first_label = held
            if first == annotator:  # the same annotator again: keep waiting for another
                self._held[request_id] = held
                return "duplicate"
            if first_label == label:
                return label, annotator
            rel = self.annotators.reliability
            return (first_label, first) if rel(first) > rel(annotator) else (label, annotator)
        if (
            self.annotators.labels.get(annotator, 0) >= 20
            and self.annotators.accuracy(annotator) < self.second_opinion_below
            and self.pending.peek(request_id) is not None
        ):
            self._held[request_id] = (annotator, label)
            self.second_opinions.append((request_id, annotator))
            if len(self._held) > self.pending.max_size:  # requests that expired meanwhile
                self._held.pop(next(iter(self._held)))
            return "held"
        return label, annotator

    def take_second_opinions(self) -> list[tuple[PendingRequest, str]]:
        """The requests to send out again, with the annotator to avoid; empties the list."""
        wanted, self.second_opinions = self.second_opinions, []
        found = [(self.pending.peek(request_id), first) for request_id, first in wanted]
        return [(req, first) for req, first in found if req is not None]

    def _annotator_weight(self, features: dict[str, Any], label: Any, annotator: str) -> float:
        annotators = self.annotators
        # the model as it is now, not at decide time; the record was seen then
        prediction = self.model.score_quietly(features)[1]
        if prediction is not None:
            annotators.update(str(annotator), prediction == label)
        return annotators.weight(str(annotator))

    def _learn_features(
        self, features: dict[str, Any], label: Any, weight: float, seen: bool = True
    ) -> None:
        if seen:  # decided before: the unsupervised steps have learned it then
            self.model.learn_one(features, label, weight)
        else:
            self.model.learn_unseen_one(features, label, weight)
        if self._hears_labels:
            self.strategy.learned(features, label)
        background = self.background
        if background is not None:
            if self.labels_applied - self._background_since > self.background_patience:
                self.background = None  # the warning had no drift after it
            else:
                background.learn_one(features, label, weight)
        self.label_counts[label] += 1
        self.labels_applied += 1

    # -- reading --------------------------------------------------------------

    @property
    def drift_detections(self) -> int:
        """Drifts detected, in the errors of labelled records or in the confidence."""
        supervised = self.drift.detections if self.drift is not None else 0
        monitor = self.confidence_drift
        return supervised + (monitor.detections if monitor is not None else 0)

    @property
    def budget(self) -> float:
        """The strategy's budget as configured, before any share went to exploration."""
        return self._full_budget

    @property
    def late_share(self) -> float:
        """Share of the budget spent on records picked at random (``exploration_share``,
        more when labels come late)."""
        return self._late_share

    @property
    def threshold(self) -> float | None:
        return self.strategy.threshold

    @property
    def labelled_accuracy(self) -> float | None:
        """Accuracy of the predictions on the records that got a label (biased)."""
        return self.labelled_correct / self.labelled_scored if self.labelled_scored else None

    @property
    def weighted_accuracy(self) -> float | None:
        """Accuracy on labelled records, each weighted by its inverse query probability.

        The self-normalised (Hajek) estimate of the accuracy on every record;
        it is consistent when every record could be queried (``exploration``).
        """
        return self.iw_correct / self.iw_total if self.iw_total else None

    # -- state ----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as a picklable dict (clock excluded)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("clock", "_utility")}
        state["format"] = _STATE_FORMAT
        return state

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], clock: Callable[[], float] = time.time
    ) -> ActiveLearner:
        """Rebuild a learner from ``state()``; decisions continue as if never stopped."""
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"unsupported learner state format {state.get('format')!r}")
        learner = cls.__new__(cls)
        state = dict(state)
        if "strategy" in state:  # saved before exploration existed
            state.setdefault("_strategy", state.pop("strategy"))
            state.setdefault("_policy", state["_strategy"])
        # what states saved before an option existed lack: the option off
        defaults = {
            "exploration": 0.0, "drift_boost": 1.0, "boost_window": 500, "_seed": 0,
            "confidence_drift": None, "_observes": False, "_hears_labels": False, "pacing": (),
            "_routes": False,
            "warning": None, "background": None, "model_swaps": 0, "background_patience": 500,
            "_background_since": 0, "annotators": AnnotatorReliability(),
            "second_opinion_below": 0.0, "second_opinions": [], "_held": {},
            "late_exploration": 0.0, "late_delay": 200, "label_delay": None, "_late_share": 0.0,
            "exploration_share": 0.0, "fixed_classes": None, "label_latency": LabelLatency(),
            "validator": RecordValidator(require_all=False),
        }  # fmt: skip
        learner.__dict__.update({**defaults, **{k: v for k, v in state.items() if k != "format"}})
        learner.__dict__.setdefault("_full_budget", learner._strategy.budget)
        learner._refresh()
        learner._utility = get_utility(learner.utility_name)
        learner.clock = clock
        return learner


_INVALID = object()


def _features_of(features: Any) -> Any:
    """A mapping as a dict of its own; anything else as it is, for the validator to name."""
    return dict(features) if isinstance(features, Mapping) else features


def _merge_failed(
    refused: list[tuple[int, Exception]], failed: list[tuple[int, Exception]], n: int
) -> list[tuple[int, Exception]]:
    """Both lists of failures as indexes in a batch of ``n``; ``failed`` counts only
    the records that were not refused."""
    at = {i for i, _ in refused}
    kept = [i for i in range(n) if i not in at]
    return sorted(refused + [(kept[k], e) for k, e in failed], key=lambda p: p[0])


class _Told:
    """A strategy told the prediction (and probabilities) of each record of a batch
    before its ``ask``."""

    def __init__(
        self, policy: Any, tell: Callable[[Any, dict], None], predictions: list[Any], probas: list
    ):
        self.policy, self._tell = policy, tell
        self._next = zip(predictions, probas).__next__  # noqa: B905 (one per record)

    def ask(self, utility: float, allowed: bool = True) -> bool:
        self._tell(*self._next())
        return self.policy.ask(utility, allowed)

    @property
    def query_probability(self) -> float:
        return self.policy.query_probability


class _ColdStart:
    """Stands in for the strategy until the model has seen every class a few times."""

    query_probability = 0.0

    def ask(self, utility: float, allowed: bool = True) -> bool:
        self.query_probability = 1.0 if allowed else 0.0
        return allowed


def _warning_monitor() -> DriftMonitor:
    from river.drift import ADWIN

    return DriftMonitor(ADWIN(delta=0.01))  # the drift detector's ADWIN uses 0.002
