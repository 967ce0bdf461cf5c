"""One model for several learners, taught the same examples in the same order.

The Kafka daemon keeps a learner per partition, and a group of processes
shares the partitions; a label is worth as much to every partition, so
they all score with one model. Each process holds a replica of it, and the
replicas stay one model only if each learns the same examples in the same
order. So a learner does not teach the replica: ``learn_one`` puts the
example in ``examples`` for the caller to publish (the daemon writes it to
the training topic in the transaction that consumed the label), and the
replica learns it when it comes back in the topic's order (``teach``).

Example
-------
>>> from streamal import ActiveLearner
>>> from streamal.model import Classifier, default_model
>>> shared = SharedModel(Classifier(default_model(2)))
>>> a, b = ActiveLearner(seed=1), ActiveLearner(seed=2)
>>> a.model = b.model = shared
>>> a.learn({"x": 1.0}, True)
'applied'
>>> shared.learned, len(shared.examples)
(0, 1)
>>> for example in shared.take_examples():  # as if back from the topic
...     shared.teach(example)
>>> shared.learned, b.model.n_labels_seen
(1, 1)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streamal.model import Classifier

__all__ = ["Example", "SharedModel"]


class Example(NamedTuple):
    """A labelled record on its way to every replica of the shared model."""

    features: dict[str, Any]
    label: Any
    weight: float = 1.0
    #: False when the record was never scored, so the model's unsupervised steps learn it too
    seen: bool = True
    #: the request it answers, for audits (None when learned from features directly)
    request: str | None = None


class SharedModel:
    """The model several learners hold: scores with the replica, queues what it learns.

    Only the scoring side of ``Classifier`` is offered; a learner option that
    would make a model of its own (``background``) cannot share one and is
    refused. A learner's saved state does not include the replica (it is
    saved once, with the position of the last example it learned); put the
    process's ``SharedModel`` back after ``ActiveLearner.from_state``.
    """

    def __init__(self, replica: Classifier, learned: int = 0):
        self.replica = replica
        #: examples learned so far (the position in the stream of examples)
        self.learned = learned
        self.examples: list[Example] = []

    # -- what the learner calls -------------------------------------------------

    def score(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        return self.replica.score(x)

    def score_many(self, xs: list[dict[str, Any]]) -> tuple[list[dict[Any, float]], list[float]]:
        return self.replica.score_many(xs)

    def score_quietly(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        return self.replica.score_quietly(x)

    def prediction_of(self, proba: dict[Any, float]) -> Any:
        return self.replica.prediction_of(proba)

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        return self.replica.predict_proba_one(x)

    @property
    def n_labels_seen(self) -> int:
        return self.replica.n_labels_seen

    @property
    def unsupervised(self) -> str:
        return self.replica.unsupervised

    @property
    def classes(self) -> list[Any]:
        return self.replica.classes

    @property
    def model(self) -> Any:
        return self.replica.model

    def learn_one(self, x: dict[str, Any], y: Any, w: float = 1.0) -> None:
        self.examples.append(Example(x, y, w, True))

    def learn_unseen_one(self, x: dict[str, Any], y: Any, w: float = 1.0) -> None:
        self.examples.append(Example(x, y, w, False))

    def fresh(self, unsupervised: str | None = None) -> Classifier:
        raise TypeError("a background model replaces one learner's model: not a shared one")

    # -- what the owner of the replica calls ---------------------------------------

    def take_examples(self) -> list[Example]:
        """The examples learned since the last call, to publish; empties the queue."""
        taken, self.examples = self.examples, []
        return taken

    def teach(self, example: Example) -> None:
        """Teach the replica one published example (in the order every replica sees)."""
        if example.seen:
            self.replica.learn_one(example.features, example.label, example.weight)
        else:
            self.replica.learn_unseen_one(example.features, example.label, example.weight)
        self.learned += 1

    def __getstate__(self) -> dict[str, Any]:
        # a learner's snapshot leaves the replica out: it is saved once, with its position
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.replica, self.learned, self.examples = None, 0, []
