"""The model behind the learner: any river-style classifier, any label type.

river's binary linear models expect ``True``/``False`` targets. ``Classifier``
maps the user's labels (strings, ints, bools) onto them and back, and turns
a binary-only model into one-vs-rest when a third class shows up (or from
the start when more than two ``classes`` are declared).

>>> from river import linear_model
>>> m = Classifier(linear_model.LogisticRegression())
>>> m.predict_proba_one({"x": 1.0})
{}
>>> m.learn_one({"x": 1.0}, "UP"); m.learn_one({"x": -1.0}, "DOWN")
>>> sorted(m.predict_proba_one({"x": 1.0}))
['DOWN', 'UP']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from river import base

__all__ = [
    "Classifier",
    "default_model",
    "clip_features",
    "bin_features",
    "one_hot_text",
    "OneHotText",
]

log = logging.getLogger("streamal")


def one_hot_text(max_values: int = 100) -> Any:
    """A river transformer that one-hot encodes text values (``OneHotText``).

    >>> one_hot_text().transform_one({"x": 2.0, "proto": "tcp"})
    {'x': 2.0, 'proto=tcp': 1.0}
    """
    return OneHotText(max_values)


def _one_hot_text(x: dict) -> dict:
    # the stateless encoding of earlier versions, kept so their checkpoints load
    for v in x.values():
        if isinstance(v, str):
            return {(f"{k}={v}" if isinstance(v, str) else k): (1.0 if isinstance(v, str) else v)
                    for k, v in x.items()}  # fmt: skip
    return x


class OneHotText(base.Transformer):
    """Numbers pass through; text value ``v`` of ``k`` becomes ``k=v``: 1, and 0 for the others.

    The other values are those of ``k`` seen while learning (up to
    ``max_values`` of them). A scaler after it then sees each indicator both
    on and off, as it sees a number vary: were the indicator only there when
    on, it would always be 1, have no variance, and be scaled to 0, so the
    column would count for nothing.

    >>> encode = OneHotText()
    >>> encode.learn_one({"x": 1.0, "proto": "tcp"})
    >>> encode.learn_one({"x": 3.0, "proto": "udp"})
    >>> encode.transform_one({"x": 2.0, "proto": "tcp"})
    {'x': 2.0, 'proto=tcp': 1.0, 'proto=udp': 0.0}
    >>> encode.transform_one({"x": 2.0})
    {'x': 2.0}
    """

    def __init__(self, max_values: int = 100):
        self.max_values = max_values
        self.values: dict[str, dict[str, None]] = {}  # column -> its values, in order seen

    def learn_one(self, x: dict) -> None:
        for k, v in x.items():
            if isinstance(v, str):
                seen = self.values.setdefault(k, {})
                if len(seen) < self.max_values:
                    seen[v] = None

    def transform_one(self, x: dict) -> dict:
        for v in x.values():
            if isinstance(v, str):
                break
        else:
            return x
        out = {}
        for k, v in x.items():
            if isinstance(v, str):
                for other in self.values.get(k, ()):
                    out[f"{k}={other}"] = 0.0
                out[f"{k}={v}"] = 1.0
            else:
                out[k] = v
        return out


#: default bound on the standard-scaled features of the plain logistic regression
CLIP = 3.0
#: the default model's bound on the scaled features, and the width of their bins
BINNED_CLIP, BIN_WIDTH = 2.0, 0.5


def clip_features(limit: float = CLIP) -> Any:
    """A river transformer that bounds every feature to ``[-limit, limit]``.

    >>> clip_features(3.0).transform_one({"a": 7.5, "b": -0.5, "c": -4.0})
    {'a': 3.0, 'b': -0.5, 'c': -3.0}
    """
    from river import compose

    if not limit > 0:
        raise ValueError(f"limit must be positive, got {limit!r}")
    return compose.FuncTransformer(_Clip(float(limit)))


class _Clip:
    # a named callable (river prints a FuncTransformer by its function's name)
    # that pickles with the model in a checkpoint
    def __init__(self, limit: float):
        self.limit = limit
        self.__name__ = f"clip_features({limit:g})"

    def __repr__(self) -> str:
        return self.__name__

    def __call__(self, x: dict) -> dict:
        limit = self.limit
        return {k: (limit if v > limit else -limit if v < -limit else v) for k, v in x.items()}


def bin_features(limit: float = BINNED_CLIP, width: float = BIN_WIDTH) -> Any:
    """A river transformer that adds to each bounded, scaled feature the bin it falls in.

    For a feature at least ``width`` away from its mean (0 once scaled), an
    indicator named after the lower edge of its bin of ``width`` within
    ``[-limit, limit]``. A linear model then gives each bin a weight of its
    own, so that it can learn a class that lives in the middle of a
    feature's range, or at both ends, which a single slope cannot. The bins
    around the mean are left out: the scaled value itself tells those
    records apart, and a 0/1 feature, whose absent value sits near its mean,
    does not gain an indicator that is on for nearly every record.

    >>> bin_features(2.0, 0.5).transform_one({"a": 1.7, "b": -0.2, "c": -2.0})
    {'a': 1.7, 'b': -0.2, 'c': -2.0, 'a@1.5': 1.0, 'c@-2': 1.0}
    """
    from river import compose

    if not (limit > 0 and 0 < width <= limit):
        raise ValueError(f"need 0 < width <= limit, got width {width!r} and limit {limit!r}")
    return compose.FuncTransformer(_Bins(float(limit), float(width)))


class _Bins:
    # named and picklable, as _Clip
    def __init__(self, limit: float, width: float):
        self.limit, self.width = limit, width
        self.__name__ = f"bin_features({limit:g}, {width:g})"

    def __repr__(self) -> str:
        return self.__name__

    def __call__(self, x: dict) -> dict:
        limit, width = self.limit, self.width
        out = dict(x)
        for k, v in x.items():
            if v >= width or v <= -width:  # NaN is neither
                out[_bin_name(k, (v + limit) // width, limit, width)] = 1.0
        return out


def _bin_name(k: str, number: float, limit: float, width: float) -> str:
    """The name of bin ``number`` (``(v + limit) // width``, a float) of feature ``k``."""
    return f"{k}@{number * width - limit:g}"


def default_model(
    n_classes: int = 2, clip: float | None = BINNED_CLIP, bin_width: float | None = BIN_WIDTH
) -> Any:
    """``StandardScaler | LogisticRegression``, bounded and binned, one-vs-rest for 3+ classes.

    Text features are one-hot encoded first, so categorical columns work too.
    The scaled features are bounded to ``[-clip, clip]`` (``None`` or 0: not
    bounded). An uncertainty strategy asks for unusual records, whose scaled
    values run far out (a rare 0/1 feature becomes 10 or more); one such
    label would throw the weights of a stochastic-gradient model around.
    The bounded features also get their bins of ``bin_width``
    (``bin_features``; ``None``: no bins), so that a class that lives in the
    middle of a feature's range can be learned. Bins need the bound: without
    one there are none.

    >>> print(default_model())
    OneHotText | StandardScaler | clip_features(2) | bin_features(2, 0.5) | LogisticRegression
    >>> print(default_model(clip=3, bin_width=None))
    OneHotText | StandardScaler | clip_features(3) | LogisticRegression
    >>> print(default_model(clip=None))
    OneHotText | StandardScaler | LogisticRegression
    """
    from river import linear_model, multiclass, preprocessing

    clf: Any = linear_model.LogisticRegression()
    if n_classes > 2:
        clf = multiclass.OneVsRestClassifier(clf)
    model = one_hot_text() | preprocessing.StandardScaler()
    if clip:
        model |= clip_features(clip)
        if bin_width:
            model |= bin_features(clip, bin_width)
    return model | clf


def _is_binary_only(model: Any) -> bool:
    # river classifiers say whether they handle more than two classes;
    # any other object with predict_proba_one/learn_one is taken as multi-class
    return getattr(model, "_multiclass", True) is False


def _one_vs_rest(model: Any) -> Any:
    from river import compose, multiclass

    if isinstance(model, compose.Pipeline):
        steps = list(model.steps.values())
        return compose.Pipeline(
            *[s.clone() for s in steps[:-1]], multiclass.OneVsRestClassifier(steps[-1].clone())
        )
    return multiclass.OneVsRestClassifier(model.clone())


UNSUPERVISED = ("all", "labelled")

# river's pipelines read this flag on themselves: set on one instance, its
# unsupervised steps learn when it predicts, and no longer when it learns
_LEARN_WHEN_PREDICTING = "_LEARN_UNSUPERVISED_DURING_PREDICT"


def _check_unsupervised(unsupervised: str) -> None:
    if unsupervised not in UNSUPERVISED:
        raise ValueError(f"unsupervised must be 'all' or 'labelled', got {unsupervised!r}")


class Classifier:
    """Wraps a river classifier so that it takes and returns the user's labels.

    Parameters
    ----------
    model
        Anything with ``predict_proba_one`` and ``learn_one``.
    classes
        Labels known in advance (optional). More than two with a binary-only
        model gives one-vs-rest from the start.
    unsupervised
        What the unsupervised steps of a river pipeline (a scaler) learn
        from: ``"labelled"`` records only, as a pipeline does by itself, or
        ``"all"`` records scored, labelled or not. The features of every
        record are there for free; the labelled ones alone are few and, under
        an uncertainty strategy, drawn from near the decision boundary. A
        model that is not a pipeline has no such steps and is unaffected.

    >>> from river import linear_model, preprocessing
    >>> m = Classifier(preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    ...                unsupervised="all")
    >>> for x in range(5):
    ...     _ = m.score({"x": float(x)})
    >>> m.model["StandardScaler"].counts["x"]
    5
    """

    #: class defaults, read by classifiers saved before these existed
    unsupervised = "labelled"
    _snapshot = None

    def __init__(
        self, model: Any, classes: Iterable[Any] | None = None, *, unsupervised: str = "labelled"
    ):
        for verb in ("predict_proba_one", "learn_one"):
            if not callable(getattr(model, verb, None)):
                raise TypeError(f"the model must have a {verb}() method; got {model!r}")
        _check_unsupervised(unsupervised)
        self.classes: list[Any] = list(dict.fromkeys(classes or ()))
        self.upgrades = 0
        self.unsupervised = unsupervised
        if _is_binary_only(model) and len(self.classes) > 2:
            model = _one_vs_rest(model)
        self._adopt(model)
        self._binary = _is_binary_only(model)
        self._labels_seen: set[Any] = set()
        self._choose_predictor()

    def _adopt(self, model: Any) -> None:
        if self.unsupervised == "all" and hasattr(type(model), _LEARN_WHEN_PREDICTING):
            setattr(model, _LEARN_WHEN_PREDICTING, True)
        self.model = model

    @property
    def _teaches(self) -> bool:
        """Whether scoring a record teaches the model's unsupervised steps now."""
        return bool(getattr(self.model, "__dict__", {}).get(_LEARN_WHEN_PREDICTING))

    def learn_unsupervised_from(self, unsupervised: str) -> None:
        """Switch what the unsupervised steps learn from (see ``unsupervised``)."""
        _check_unsupervised(unsupervised)
        self.unsupervised = unsupervised
        if unsupervised == "labelled":
            self.model.__dict__.pop(_LEARN_WHEN_PREDICTING, None)
        self._adopt(self.model)
        self._choose_predictor()

    @contextmanager
    def _as_a_plain_pipeline(self) -> Iterator[None]:
        """Within: scoring teaches the unsupervised steps nothing, learning teaches them."""
        flags = self.model.__dict__
        if not flags.get(_LEARN_WHEN_PREDICTING):
            yield
            return
        flags[_LEARN_WHEN_PREDICTING] = False
        try:
            yield
        finally:
            flags[_LEARN_WHEN_PREDICTING] = True

    def score_quietly(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        """``score`` that teaches the unsupervised steps nothing (for a record seen before)."""
        with self._as_a_plain_pipeline():
            return self.score(x)

    def learn_unseen_one(self, x: dict[str, Any], y: Any, w: float = 1.0) -> None:
        """``learn_one`` for a record never scored: the unsupervised steps learn it too."""
        with self._as_a_plain_pipeline():
            self.learn_one(x, y, w)

    def fresh(self, unsupervised: str | None = None) -> Classifier:
        """An untrained copy: same model settings, same known classes (their order kept)."""
        clone = getattr(self.model, "clone", None)
        if clone is None:
            raise TypeError(f"the model cannot be cloned: {self.model!r}")
        return Classifier(clone(), self.classes, unsupervised=unsupervised or self.unsupervised)

    @property
    def n_labels_seen(self) -> int:
        return len(self._labels_seen)

    def _choose_predictor(self) -> None:
        # predict_proba_one and score are rebound whenever the label situation
        # changes, so the per-record call does no mode checks
        if not self._labels_seen:
            self.predict_proba_one, self.score = self._predict_nothing, self._score_nothing
            self.score_many = self._score_many_nothing
        elif not self._binary:
            self.predict_proba_one, self.score = self.model.predict_proba_one, self._score_classes
            self.score_many = self._score_many_all
        elif len(self._labels_seen) < 2:
            self.predict_proba_one, self.score = self._predict_single, self._score_any
            self.score_many = self._score_many_any
        else:
            # river's own keys False/True equal and hash as 0/1, so labels 0 then 1
            # map onto themselves (predictions come back as river gives them, as bools)
            if self.classes[:2] == [False, True]:
                self._neg, self._pos = False, True
            else:
                self._neg, self._pos = self.classes[0], self.classes[1]
            self.predict_proba_one, self.score = self._predict_mapped, self._score_mapped
            self.score_many = self._score_many_mapped
        self._snapshot = None

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:  # replaced per instance
        return self._predict_nothing(x)

    def score(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        """``(probabilities, prediction, confidence)`` in one call (replaced per instance).

        The prediction is the most probable label (the first one on ties);
        ``None`` with confidence 0 while nothing has been learned.
        """
        return self._score_nothing(x)

    def score_many(self, xs: list[dict[str, Any]]) -> tuple[list[dict[Any, float]], list[float]]:
        """``(probabilities, confidences)`` of a batch, as ``score`` gives them one by one.

        Predictions are left out (``prediction_of`` makes one when it is needed).
        """
        return self._score_many_nothing(xs)

    @staticmethod
    def prediction_of(proba: dict[Any, float]) -> Any:
        """The most probable label (the first one on ties); ``None`` for no probabilities."""
        return _with_prediction(proba)[1]

    def _score_many_nothing(self, xs: list[dict[str, Any]]) -> tuple[list, list[float]]:
        if self._teaches:
            for x in xs:
                self.model.predict_proba_one(x)
        return [{} for _ in xs], [0.0] * len(xs)

    def _score_many_any(self, xs: list[dict[str, Any]]) -> tuple[list, list[float]]:
        predict = self.predict_proba_one
        probas = [predict(x) for x in xs]
        confidences = []
        add = confidences.append
        for proba in probas:
            if len(proba) == 2:  # unpacking two values is twice as fast as max()
                a, b = proba.values()
                add(a if a > b else b)
            else:
                add(max(proba.values()) if proba else 0.0)
        return probas, confidences

    # the default model scores a batch at once (streamal.fast_scoring), with the
    # same results; any other model, or a batch it cannot take, goes one by one

    def _score_many_all(self, xs: list[dict[str, Any]]) -> tuple[list, list[float]]:
        from streamal.fast_scoring import class_probabilities

        probas = class_probabilities(self.model, xs)
        if probas is None:
            return self._score_many_any(xs)
        return probas, [max(proba.values()) for proba in probas]

    def _score_many_mapped(self, xs: list[dict[str, Any]]) -> tuple[list, list[float]]:
        from streamal.fast_scoring import positive_probabilities

        p_pos = positive_probabilities(self.model, xs)
        if p_pos is None:  # one by one, as score has them
            scored = list(map(self.score, xs))
            return [s[0] for s in scored], [s[2] for s in scored]
        neg, pos = self._neg, self._pos
        confidences = [p if p > 1.0 - p else 1.0 - p for p in p_pos]
        return [{neg: 1.0 - p, pos: p} for p in p_pos], confidences

    # the three below answer without the model; with unsupervised="all" they
    # still show it the record, whose unsupervised steps learn from it

    def _predict_nothing(self, x: dict[str, Any]) -> dict[Any, float]:
        if self._teaches:
            self.model.predict_proba_one(x)
        return {}

    def _score_nothing(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        if self._teaches:
            self.model.predict_proba_one(x)
        return {}, None, 0.0

    def _predict_single(self, x: dict[str, Any]) -> dict[Any, float]:
        if self._teaches:
            self.model.predict_proba_one(x)
        return {next(iter(self._labels_seen)): 1.0}

    def _predict_mapped(self, x: dict[str, Any]) -> dict[Any, float]:
        return self.score(x)[0]

    # a model is scored from a snapshot of it (streamal.fast_scoring) where it has
    # one, taken on the first record after a change of the model

    def _score_mapped(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        from streamal.fast_scoring import LogisticSnapshot

        # a pipeline that learns as it scores changes with every record: no snapshot
        snapshot = None
        if self.unsupervised == "labelled":
            snapshot = LogisticSnapshot.of(self.model, self._neg, self._pos)
        self._snapshot = snapshot
        self.score = self._river_score if snapshot is None else snapshot.score
        return self.score(x)

    def _score_classes(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        from streamal.fast_scoring import OneVsRestSnapshot

        snapshot = None
        if self.unsupervised == "labelled":
            snapshot = OneVsRestSnapshot.of(self.model)
        self._snapshot = snapshot
        self.score = self._score_any if snapshot is None else snapshot.score
        return self.score(x)

    @property
    def _take_snapshot(self) -> Callable[[dict[str, Any]], tuple[dict[Any, float], Any, float]]:
        """The ``score`` that takes a new snapshot on the next record."""
        return self._score_mapped if self._binary else self._score_classes

    def _river_score(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        p_pos = self.model.predict_proba_one(x).get(True, 0.0)
        p_neg = 1.0 - p_pos
        proba = {self._neg: p_neg, self._pos: p_pos}
        return (proba, self._pos, p_pos) if p_pos > p_neg else (proba, self._neg, p_neg)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.pop("_snapshot", None) is not None:  # made again on the next record
            state["score"] = self._take_snapshot
        return state

    def _score_any(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        return _with_prediction(self.predict_proba_one(x))

    def learn_one(self, x: dict[str, Any], y: Any, w: float = 1.0) -> None:
        snapshot = self._snapshot
        if snapshot is not None:  # stale from here on, until brought up to date below
            self._snapshot, self.score = None, self._take_snapshot
        if y not in self._labels_seen:
            snapshot = None  # the model may change shape
            self._labels_seen.add(y)
            if y not in self.classes:
                self.classes.append(y)
            if self._binary and len(self.classes) > 2:
                log.warning(
                    "label %r is a third class for a binary model; switching to "
                    "one-vs-rest, which learns afresh from here on",
                    y,
                )
                self._adopt(_one_vs_rest(self.model))
                self._binary = False
                self.upgrades += 1
            self._choose_predictor()
        if self._binary:
            y = y != self.classes[0]
        if w == 1.0:
            self.model.learn_one(x, y)
        else:
            try:
                self.model.learn_one(x, y, w=w)
            except TypeError:  # a model that takes no weight
                self.model.learn_one(x, y)
        if snapshot is not None and snapshot.learned(x):
            self._snapshot, self.score = snapshot, snapshot.score


def _with_prediction(proba: dict[Any, float]) -> tuple[dict[Any, float], Any, float]:
    """``(proba, prediction, confidence)``: the first most probable label, and its probability."""
    prediction, confidence = None, 0.0
    for label, p in proba.items():  # argmax; twice as fast as max(key=...)
        if p > confidence or prediction is None:
            prediction, confidence = label, p
    return proba, prediction, confidence


MODELS = (
    "binned_logistic_regression",
    "logistic_regression",
    "hoeffding_tree",
    "hoeffding_adaptive_tree",
    "naive_bayes",
)


def make_model(
    name: str = "binned_logistic_regression", n_classes: int = 2, clip: float | None = CLIP
) -> Any:
    """A model by name, standard-scaled where it helps.

    ``binned_logistic_regression`` is ``default_model``: the scaled features
    bounded to [-2, 2] and their bins of 0.5 (``bin_features``), one-vs-rest
    for more than two classes. ``logistic_regression`` is the same without
    the bins, its scaled features bounded to ``[-clip, clip]``; the other
    models do not use ``clip``.

    >>> make_model("hoeffding_tree")
    HoeffdingTreeClassifier (...)
    """
    from river import naive_bayes, preprocessing, tree

    if name == "binned_logistic_regression":
        return default_model(n_classes)
    if name == "logistic_regression":
        return default_model(n_classes, clip, bin_width=None)
    if name == "hoeffding_tree":
        return tree.HoeffdingTreeClassifier()
    if name == "hoeffding_adaptive_tree":
        return tree.HoeffdingAdaptiveTreeClassifier(seed=0)
    if name == "naive_bayes":
        return one_hot_text() | preprocessing.StandardScaler() | naive_bayes.GaussianNB()
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
