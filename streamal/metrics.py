"""Prometheus metrics on one injected registry.

Per-record work only bumps plain counters on the learner and the engine;
``Metrics`` publishes them through a collector read at scrape time, so a
scrape costs nothing on the hot path. Only the decision latency is a real
histogram.

>>> from prometheus_client import CollectorRegistry
>>> from streamal import ActiveLearner
>>> registry = CollectorRegistry()
>>> learner = ActiveLearner()
>>> metrics = Metrics(registry, learner)
>>> _ = learner.decide({"x": 1.0})
>>> registry.get_sample_value("streamal_records_total")
1
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

__all__ = ["Metrics"]


class Metrics:
    """Registers streamal's metrics on ``registry`` for ``learner``.

    ``engine_stats`` (optional) is an object with ``dead_letters`` (a
    Counter of reasons) and ``labels_received``; the engine passes its own.
    """

    def __init__(self, registry: CollectorRegistry, learner: Any, engine_stats: Any = None):
        self.registry = registry
        self.learner = learner
        self.engine_stats = engine_stats
        self.decision_seconds = Histogram(
            "streamal_decision_seconds",
            "Time to decide one record (model scoring included).",
            registry=registry,
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1),
        )
        registry.register(_Collector(self))


class _Collector:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> list:
        return []

    def collect(self):
        learner = self.metrics.learner
        stats = self.metrics.engine_stats
        n = learner.n_records
        yield CounterMetricFamily("streamal_records", "Records decided.", value=n)
        decisions = CounterMetricFamily(
            "streamal_decisions", "Decisions made, by outcome.", labels=["query"]
        )
        decisions.add_metric(["true"], learner.n_queries)
        decisions.add_metric(["false"], n - learner.n_queries)
        yield decisions
        yield CounterMetricFamily(
            "streamal_label_requests", "Label requests emitted.", value=learner.n_queries
        )
        received = learner.labels_applied + sum(learner.labels_rejected.values())
        if stats is not None:
            received = max(received, stats.labels_received)
        yield CounterMetricFamily("streamal_labels_received", "Labels received.", value=received)
        if learner.label_delay is not None:
            yield GaugeMetricFamily(
                "streamal_label_delay_records",
                "Records decided between a label request and its label (running mean).",
                value=learner.label_delay,
            )
        yield GaugeMetricFamily(
            "streamal_late_exploration_ratio",
            "Share of the budget moved to random exploration because labels come late.",
            value=learner.late_share,
        )
        yield CounterMetricFamily(
            "streamal_labels_applied",
            "Labels the model learned from.",
            value=learner.labels_applied,
        )
        rejected = CounterMetricFamily(
            "streamal_labels_rejected", "Labels rejected, by reason.", labels=["reason"]
        )
        reasons: Counter[str] = Counter(
            {"unknown": 0, "duplicate": 0, "expired": 0, "invalid_label": 0}
        )
        reasons.update(learner.labels_rejected)
        if stats is not None:
            reasons.update(stats.bad_labels)
        for reason, count in sorted(reasons.items()):
            rejected.add_metric([reason], count)
        yield rejected
        dead = CounterMetricFamily(
            "streamal_dead_letters",
            "Records and labels sent to the dead letters, by reason.",
            labels=["kind"],
        )
        kinds: Counter[str] = Counter({"record": 0, "label": 0})
        if stats is not None:
            kinds.update(stats.dead_letters)
        for kind, count in sorted(kinds.items()):
            dead.add_metric([kind], count)
        yield dead
        yield GaugeMetricFamily(
            "streamal_pending_requests", "Requests waiting for a label.", value=len(learner.pending)
        )
        yield CounterMetricFamily(
            "streamal_pending_expired",
            "Requests that expired unanswered.",
            value=learner.pending.expired,
        )
        yield GaugeMetricFamily(
            "streamal_budget_spent_ratio",
            "Label requests divided by records decided.",
            value=learner.n_queries / n if n else 0.0,
        )
        yield GaugeMetricFamily(
            "streamal_budget_ratio",
            "Configured budget (fraction of records).",
            value=learner.budget,
        )
        threshold = learner.threshold
        if threshold is not None:
            yield GaugeMetricFamily(
                "streamal_threshold", "Current threshold of the query strategy.", value=threshold
            )
        yield CounterMetricFamily(
            "streamal_drift_detections", "Concept drifts detected.", value=learner.drift_detections
        )
        acc = GaugeMetricFamily(
            "streamal_accuracy_ratio",
            "Prequential accuracy on labelled records: 'labelled' is the plain rate "
            "(biased towards hard records), 'weighted' is weighted by inverse query probability.",
            labels=["estimate"],
        )
        if learner.labelled_accuracy is not None:
            acc.add_metric(["labelled"], learner.labelled_accuracy)
        if learner.weighted_accuracy is not None:
            acc.add_metric(["weighted"], learner.weighted_accuracy)
        yield acc
        latency = getattr(learner, "label_latency", None)
        if latency is not None:
            yield HistogramMetricFamily(
                "streamal_label_latency_seconds",
                "Seconds from a label request to its label (the learner's time: event time "
                "when records carry it).",
                buckets=latency.cumulative(), sum_value=latency.sum,
            )  # fmt: skip
        if stats is not None and getattr(stats, "intake", None) is not None:
            intake = CounterMetricFamily(
                "streamal_intake_labels", "Labels received, by the way they came.",
                labels=["intake"],
            )  # fmt: skip
            for name, count in sorted(stats.intake.items()):
                intake.add_metric([name], count)
            yield intake
        if stats is not None and getattr(stats, "http_requests", None):
            http = CounterMetricFamily(
                "streamal_http_requests", "Requests the labelling API answered.",
                labels=["route", "status"],
            )  # fmt: skip
            for (route, status), count in sorted(stats.http_requests.items()):
                http.add_metric([route, str(status)], count)
            yield http
        annotators = getattr(learner, "annotators", None)
        if annotators is not None and annotators.labels:
            rel = GaugeMetricFamily(
                "streamal_annotator_reliability_ratio",
                "How often each annotator's labels agree with the model (Beta posterior mean).",
                labels=["annotator"],
            )
            for name, value in annotators.snapshot().items():
                rel.add_metric([name], value)
            yield rel
