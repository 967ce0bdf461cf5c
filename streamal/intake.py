"""One way in for labels from people, whatever carries them.

The labelling API, its page and the Label Studio bridge talk to a
``LabelIntake``: it lists the open requests (with what a person needs to
answer them) and takes labels, replying once they are safe. Two kinds
stand behind it:

* ``EngineIntake``, beside the file-mode ``Engine``: a label is journalled
  durably (``LabelJournal``), then learned; its outcome is the learner's
  (``applied``, ``unknown``, ``duplicate``, ``expired``, ``invalid_label``,
  or ``held`` for a second opinion);
* the Kafka daemon's intake (``streamal.connectors.kafka.intake``): a label
  is produced to the labels topic and acknowledged by the broker; its
  outcome is ``accepted``, and the learner holding its request learns it in
  its next transaction.

Both check a label the one way every label is checked
(``records.label_from_object`` and ``records.label_problem``), so an item
refused here is refused with the same reason a label file would get.

>>> from streamal import ActiveLearner
>>> learner = ActiveLearner(budget=1.0)
>>> _ = learner.decide({"x": 1.0})
>>> [e.request_id for e in open_requests([learner]).entries]
['q-r1']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from streamal.learner import ActiveLearner
from streamal.pending import PendingRequest
from streamal.records import Label

T = TypeVar("T")

__all__ = [
    "LabelIntake",
    "EngineIntake",
    "OpenRequests",
    "open_requests",
    "progress_of",
    "BusyError",
    "IntakeUnavailable",
]


@dataclass
class OpenRequests:
    """Open requests, oldest first, and what goes with them."""

    entries: list[PendingRequest]
    #: request id -> the annotator whose label waits for a second opinion
    held: dict[str, str] = field(default_factory=dict)
    classes: list[Any] = field(default_factory=list)


class LabelIntake(Protocol):
    """What the labelling API needs of whatever learns the labels."""

    @property
    def ready(self) -> bool: ...

    def open_requests(self) -> OpenRequests: ...

    def submit(self, labels: list[Label]) -> Future:
        """A future of the labels' outcomes, done once they are safe."""
        ...

    def why_refused(self, label: Label, outcome: str) -> str: ...

    def progress(self) -> dict[str, Any]: ...

    def count_http(self, route: str, status: int) -> None: ...


def open_requests(learners: Iterable[ActiveLearner]) -> OpenRequests:
    """The open requests of ``learners``, oldest first, read without their lock."""
    learners = list(learners)

    def read() -> OpenRequests:
        entries: list[PendingRequest] = []
        held: dict[str, str] = {}
        classes: list[Any] = []
        for learner in learners:
            entries += learner.pending.open_entries()
            held.update((rid, who) for rid, (who, _) in dict(learner._held).items())
            for c in getattr(learner.model, "classes", []):
                if c not in classes:
                    classes.append(c)
        return OpenRequests(entries, held, classes)

    now = read_unlocked(read)
    if len(learners) > 1:
        now.entries.sort(key=lambda e: e.created)
    return now


def read_unlocked(read: Callable[[], T]) -> T:
    """``read()``, which copies tables another thread is changing, tried again on a clash.

    The decision loop changes them between two records; copying a dict is one
    step it cannot interleave with, but a copy can still meet a change in size.
    """
    for _ in range(10):
        try:
            return read()
        except RuntimeError:  # changed size during the copy
            continue
    raise BusyError("the learners changed too fast to be read: try again")


def request_view(entry: PendingRequest, exclude: str | None = None) -> dict[str, Any]:
    """What a person answering ``entry`` is shown (JSON-ready); ``exclude``: the
    annotator whose held label waits for this second opinion."""
    # requests saved before probabilities, utility and reason existed lack them
    probabilities = getattr(entry, "probabilities", None) or {}
    return {
        "request_id": entry.request_id,
        "record_id": entry.record_id,
        "features": entry.features,
        "prediction": entry.prediction,
        "probabilities": {str(k): v for k, v in probabilities.items()},
        "utility": getattr(entry, "utility", None),
        "reason": getattr(entry, "reason", None),
        "query_probability": entry.query_probability,
        "second_opinion": exclude is not None,
        "exclude_annotator": exclude,
    }


class BusyError(RuntimeError):
    """The open requests could not be read this time."""


class IntakeUnavailable(RuntimeError):
    """The labels could not be made safe (the broker is gone): the client may retry."""


class EngineIntake:
    """The file-mode intake: labels journalled durably, then learned by ``engine``.

    Parameters
    ----------
    engine
        A ``streamal.Engine``; its journal is attached here (at ``journal``).
    journal
        Where the labels are written before they are learned.
    """

    def __init__(self, engine: Any, journal: str):
        self.engine = engine
        engine.attach_journal(journal)

    @property
    def ready(self) -> bool:
        return bool(self.engine.ready)

    def open_requests(self) -> OpenRequests:
        return open_requests([self.engine.learner])

    def submit(self, labels: list[Label]) -> Future:
        return self.engine.journal.submit(labels)

    def why_refused(self, label: Label, outcome: str) -> str:
        return self.engine.learner.why_refused(label.request_id, label.label, outcome)

    def progress(self) -> dict[str, Any]:
        return progress_of(self.engine.learner)

    def count_http(self, route: str, status: int) -> None:
        self.engine.stats.http_requests[(route, status)] += 1

    def close(self) -> None:
        self.engine.journal.close()


def progress_of(learner: Any) -> dict[str, Any]:
    """Records, requests, labels, budget spent and the accuracy estimate."""
    n = learner.n_records
    return {"records": n, "requests": learner.n_queries,
            "labels_applied": learner.labels_applied, "budget": learner.budget,
            "budget_spent": learner.n_queries / n if n else 0.0,
            "accuracy": learner.weighted_accuracy, "pending": len(learner.pending)}  # fmt: skip
