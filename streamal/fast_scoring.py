"""Scores records with the default model faster than its river pipeline does.

The learner spends most of its time in the model, and a river pipeline
handles one dict at a time, through a new dict at every step. For the model
streamal builds by default (``StandardScaler``, optionally bounded and
binned, then a ``LogisticRegression`` or a one-vs-rest of them) the same
arithmetic runs
here in one pass: on a whole batch as a matrix (``positive_probabilities``,
``class_probabilities``), or on one record through a snapshot of the
parameters (``LogisticSnapshot``, ``OneVsRestSnapshot``). The results are bit-for-bit those of
``predict_proba_one``: the same subtractions and divisions, each dot product
summed in the order of the features river hands the last step (the record's
own, then their bins), the same sigmoid.

Anything else returns ``None`` and the caller asks river: another model, a
pipeline that learns while it predicts, records whose features are not all
in one order, values that would overflow. Text values go to river too.

>>> from river import datasets
>>> from streamal.model import default_model
>>> model = default_model()
>>> data = list(datasets.Phishing())
>>> for x, y in data[:500]:
...     model.learn_one(x, y)
>>> xs = [x for x, _ in data[500:600]]
>>> positive_probabilities(model, xs) == [model.predict_proba_one(x)[True] for x in xs]
True
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from math import exp, isfinite
from typing import Any

import numpy as np
from river import compose, linear_model, multiclass, optim, preprocessing
from river.utils.math import sigmoid

from streamal.model import (
    OneHotText,
    _bin_name,
    _Bins,
    _Clip,
    _one_hot_text,
    _with_prediction,
)

__all__ = [
    "positive_probabilities",
    "class_probabilities",
    "LogisticSnapshot",
    "OneVsRestSnapshot",
]

#: below this many records the numpy set-up costs more than it saves
MIN_BATCH = 16


def positive_probabilities(model: Any, xs: list[dict]) -> list[float] | None:
    """``predict_proba_one(x)[True]`` of a ``... | LogisticRegression`` pipeline, per record."""
    plan = _plan(model, linear_model.LogisticRegression)
    if plan is None:
        return None
    scaled = _scaled(plan, xs)
    if scaled is None:
        return None
    logits = _logits(plan[-1], *scaled)
    return None if logits is None else list(map(sigmoid, logits.tolist()))


class LogisticSnapshot:
    """The parameters of a ``... | LogisticRegression`` pipeline, to score one record at a time.

    The scaler's means and deviations and the weights, gathered once:
    ``score(x)`` is then one loop over the record's features instead of a
    pass through every step of the pipeline, each making a new dict. It
    gives ``(probabilities, prediction, confidence)`` with the model's
    ``False``/``True`` named ``negative``/``positive``; ``probability(x)`` is
    the positive one alone. A record it cannot take (text values, None, an
    overflow) is handed to the pipeline. After ``model.learn_one(x, y)``,
    ``learned(x)`` brings the snapshot up to date by re-reading the
    parameters of ``x``'s features only, which are all that a plain SGD
    step and the scaler change.

    >>> from river import datasets
    >>> from streamal.model import default_model
    >>> model = default_model()
    >>> data = list(datasets.Phishing())
    >>> model.learn_one(*data[0])
    >>> snapshot = LogisticSnapshot.of(model, negative="legit", positive="phishing")
    >>> for x, y in data[1:200]:
    ...     model.learn_one(x, y)
    ...     assert snapshot.learned(x)
    >>> all(snapshot.probability(x) == model.predict_proba_one(x)[True] for x, _ in data)
    True
    >>> snapshot.score(data[0][0])[0]
    {'legit': 0.15..., 'phishing': 0.84...}
    """

    __slots__ = ("score", "_positive", "_params", "_scaler", "_lr", "_sparse", "_bins")

    @classmethod
    def of(cls, model: Any, negative: Any = False, positive: Any = True) -> LogisticSnapshot | None:
        """The snapshot of ``model``, or ``None`` for a model it does not reproduce."""
        plan = _plan(model, linear_model.LogisticRegression)
        if plan is None:
            return None
        scaler, limit, bins, lr = plan
        snapshot = cls.__new__(cls)
        snapshot._scaler, snapshot._lr = scaler, lr
        snapshot._bins = None if bins is None else _BinNames(bins)
        # a feature of no variance (or never seen) is scaled to 0 and adds 0 to the sum;
        # a text value is one-hot encoded first, which the pipeline does
        params = {k: snapshot._param(k) for k, v in scaler.vars.items() if v}
        # weights run off to infinity: river's own arithmetic decides what comes out
        if not isfinite(sum([_size(p) for p in params.values()]) + abs(lr.intercept)):
            return None
        snapshot._params = params
        # a step that moves the weights of x's features only (and of their
        # bins): plain SGD, no L2
        snapshot._sparse = type(lr.optimizer) is optim.SGD and not lr.l2
        snapshot._positive = positive
        river = model.predict_proba_one
        snapshot.score = (
            _scorer(params, lr, limit, river, negative, positive)
            if bins is None
            else _binned_scorer(params, lr, bins, river, negative, positive)
        )
        return snapshot

    def _param(self, k: str) -> tuple:
        """``(mean, deviation, weight)``, and the weight of each of its bins if binned."""
        scaler, weights, bins = self._scaler, self._lr._weights, self._bins
        if bins is None:
            return scaler.means[k], scaler.vars[k] ** 0.5, weights.get(k, 0.0)
        bin_weights = _bin_weights(bins(k), weights)
        return scaler.means[k], scaler.vars[k] ** 0.5, weights.get(k, 0.0), bin_weights

    def probability(self, x: dict) -> float:
        """The model's ``predict_proba_one(x)[True]``."""
        return self.score(x)[0][self._positive]

    def learned(self, x: dict) -> bool:
        """Update after the model learned ``x``; ``False`` if only a new snapshot will do."""
        if not self._sparse:
            return False
        params, scaler, bins = self._params, self._scaler, self._bins
        means, variances, weights = scaler.means, scaler.vars, self._lr._weights
        total = 0.0
        # as _param, inlined: this runs after every label
        for k, value in x.items():
            if isinstance(value, str):  # learned as a one-hot feature of another name
                return False
            v = variances[k]
            if not v:
                params.pop(k, None)
            elif bins is None:
                params[k] = p = (means[k], v**0.5, weights.get(k, 0.0))
                total += abs(p[2])
            else:
                params[k] = p = (
                    means[k],
                    v**0.5,
                    weights.get(k, 0.0),
                    _bin_weights(bins(k), weights),
                )
                total += _size(p)
        return isfinite(total + abs(self._lr.intercept))


def _size(param: tuple) -> float:
    """How large the weights of a feature are (infinite or NaN when they ran off)."""
    if len(param) == 3:
        return abs(param[2])
    return abs(param[2]) + sum([abs(w) for w in param[3]])


class _BinNames:
    """Each feature's bin names by bin number, as ``bin_features`` writes them (cached)."""

    def __init__(self, bins: _Bins):
        self.limit, self.width = bins.limit, bins.width
        # the bin of a value v is (v + limit) // width: numbers 0 to this one
        self.count = int((2 * bins.limit) // bins.width) + 1
        self._names: dict[str, tuple[str, ...]] = {}

    def __call__(self, k: str) -> tuple[str, ...]:
        names = self._names.get(k)
        if names is None:
            limit, width = self.limit, self.width
            # float(i) stands for (v + limit) // width, which is a float too
            names = self._names[k] = tuple(
                _bin_name(k, float(i), limit, width) for i in range(self.count)
            )
        return names


def _bin_weights(names: tuple[str, ...], weights: Any) -> tuple[float, ...]:
    """The logistic regression's weight of each bin (0 for a bin it never saw)."""
    return tuple([weights.get(name, 0.0) for name in names])


def _scorer(
    params: dict[str, tuple[float, float, float]],
    lr: Any,
    limit: float | None,
    river: Callable,
    negative: Any,
    positive: Any,
) -> Callable[[dict], tuple[dict[Any, float], Any, float]]:
    high = limit
    low = None if limit is None else -limit

    def score(x: dict) -> tuple[dict[Any, float], Any, float]:
        total = 0.0
        try:
            # two loops: the unbounded one skips two comparisons a feature, about a
            # tenth of the loop's time, which decide one by one has no room to spare
            if high is None:
                for k, v in x.items():
                    param = params.get(k)
                    if param is not None:
                        total += (v - param[0]) / param[1] * param[2]
                    elif isinstance(v, str):
                        total = None
                        break
            else:
                for k, v in x.items():
                    param = params.get(k)
                    if param is not None:
                        z = (v - param[0]) / param[1]
                        total += (high if z > high else low if z < low else z) * param[2]
                    elif isinstance(v, str):
                        total = None
                        break
        except (TypeError, OverflowError):  # text, None; ints too large for a float
            total = None
        # _scored's body and _sigmoid, inlined: the call would cost decide about 3 % (the bench)
        if total is None:
            p = river(x)[True]
        else:
            total += lr.intercept
            if -30 <= total <= 30:
                p = 1 / (1 + exp(-total))
            elif total < -30:
                p = 0
            elif total > 30:
                p = 1
            else:
                p = river(x)[True]
        q = 1.0 - p
        return ({negative: q, positive: p}, positive, p) if p > q else (
            {negative: q, positive: p}, negative, q)  # fmt: skip

    return score


def _scored(
    total: float | None, x: dict, lr: Any, river: Callable, negative: Any, positive: Any
) -> tuple[dict[Any, float], Any, float]:
    """The scorers' result from the weighted sum (``None``: river scores ``x``)."""
    p = None if total is None else _sigmoid(total + lr.intercept)
    if p is None:
        p = river(x)[True]
    q = 1.0 - p
    # the prediction is the first label on ties, as the argmax over river's dict
    return ({negative: q, positive: p}, positive, p) if p > q else (
        {negative: q, positive: p}, negative, q)  # fmt: skip


def _sigmoid(t: float) -> float | None:
    """river's sigmoid of ``t``; ``None`` for NaN (an overflow): river's arithmetic decides."""
    if -30 <= t <= 30:
        return 1 / (1 + exp(-t))
    if t < -30:
        return 0
    if t > 30:
        return 1
    return None


def _binned_scorer(
    params: dict[str, tuple],
    lr: Any,
    bins: _Bins,
    river: Callable,
    negative: Any,
    positive: Any,
) -> Callable[[dict], tuple[dict[Any, float], Any, float]]:
    """As ``_scorer``, for a model with ``bin_features`` before its logistic regression."""
    high, width = bins.limit, bins.width
    low, near = -high, -width

    def score(x: dict) -> tuple[dict[Any, float], Any, float]:
        total = 0.0
        later = []
        try:
            for k, v in x.items():
                param = params.get(k)
                if param is not None:
                    z = (v - param[0]) / param[1]
                    z = high if z > high else low if z < low else z
                    total += z * param[2]
                    if z >= width or z <= near:  # NaN is neither
                        later.append(param[3][int((z + high) // width)])
                elif isinstance(v, str):
                    total = None
                    break
        except (TypeError, OverflowError):  # text, None; ints too large for a float
            total = None
        if total is not None:
            # the bins come after the record's own features, as the pipeline adds them
            for w in later:
                total += w
        return _scored(total, x, lr, river, negative, positive)

    return score


class OneVsRestSnapshot:
    """``LogisticSnapshot`` for a ``... | OneVsRestClassifier(LogisticRegression)`` pipeline.

    Each feature is scaled, bounded and binned once for all the classes,
    where the pipeline hands the record to each class's logistic regression
    in turn. ``score(x)`` gives ``(probabilities, prediction, confidence)``
    as river's ``predict_proba_one`` and an argmax do (the first class on
    ties). A record it cannot take goes to the pipeline; after
    ``model.learn_one(x, y)``, ``learned(x)`` brings it up to date, or
    says that a new snapshot is needed (a class the model had not seen
    gets a logistic regression of its own).

    >>> from river import datasets
    >>> from streamal.model import default_model
    >>> model = default_model(n_classes=7)
    >>> data = list(datasets.ImageSegments())
    >>> for x, y in data[:50]:  # until it has seen all seven classes
    ...     model.learn_one(x, y)
    >>> snapshot = OneVsRestSnapshot.of(model)
    >>> for x, y in data[50:1000]:
    ...     model.learn_one(x, y)
    ...     assert snapshot.learned(x)
    >>> all(snapshot.score(x)[0] == model.predict_proba_one(x) for x, _ in data)
    True
    >>> snapshot.score(data[0][0])[1:]
    ('path', 0.52...)
    """

    __slots__ = ("score", "_params", "_scaler", "_ovr", "_members", "_sparse", "_bins")

    @classmethod
    def of(cls, model: Any) -> OneVsRestSnapshot | None:
        """The snapshot of ``model``, or ``None`` for a model it does not reproduce."""
        plan = _plan(model, multiclass.OneVsRestClassifier)
        if plan is None:
            return None
        scaler, limit, bins, ovr = plan
        members = ovr.classifiers
        if not members or not all(_is_logistic(m) for m in members.values()):
            return None
        snapshot = cls.__new__(cls)
        snapshot._scaler, snapshot._ovr = scaler, ovr
        snapshot._members = list(members.values())
        snapshot._bins = None if bins is None else _BinNames(bins)
        params = {k: snapshot._param(k) for k, v in scaler.vars.items() if v}
        intercepts = sum([abs(m.intercept) for m in snapshot._members])
        if not isfinite(sum([_class_size(p) for p in params.values()]) + intercepts):
            return None
        snapshot._params = params
        snapshot._sparse = all(
            type(m.optimizer) is optim.SGD and not m.l2 for m in snapshot._members
        )
        snapshot.score = _one_vs_rest_scorer(
            params, snapshot._members, list(members), limit, bins, model.predict_proba_one
        )
        return snapshot

    def _param(self, k: str) -> list:
        """``[mean, deviation, weight by class]``, and by bin number the weight by class."""
        scaler, bins = self._scaler, self._bins
        weights = [m._weights for m in self._members]
        by_class = [w.get(k, 0.0) for w in weights]
        if bins is None:
            return [scaler.means[k], scaler.vars[k] ** 0.5, by_class]
        names = bins(k)
        by_bin = [list(row) for row in zip(*[_bin_weights(names, w) for w in weights])]  # noqa: B905
        return [scaler.means[k], scaler.vars[k] ** 0.5, by_class, by_bin]

    def learned(self, x: dict) -> bool:
        """Update after the model learned ``x``; ``False`` if only a new snapshot will do."""
        if not self._sparse or len(self._ovr.classifiers) != len(self._members):
            return False  # or a class it had not seen got a logistic regression of its own
        params, bins = self._params, self._bins
        means, variances = self._scaler.means, self._scaler.vars
        weights = [m._weights for m in self._members]
        classes = range(len(weights))
        total = 0.0
        try:
            for k, v in x.items():
                if isinstance(v, str):  # learned as a one-hot feature of another name
                    return False
                var = variances[k]
                param = params.get(k)
                if not var:
                    params.pop(k, None)
                    continue
                if param is None:  # a feature seen for the first time
                    params[k] = param = self._param(k)
                    total += _class_size(param)
                    continue
                param[0], param[1] = mean, deviation = means[k], var**0.5
                by_class = param[2]
                for i in classes:
                    by_class[i] = w = weights[i].get(k, 0.0)
                    total += abs(w)
                if bins is None:
                    continue
                # a plain SGD step moves the weight of the one bin x's value fell in,
                # which the pipeline found with the scaler as it is after learning x
                high, width = bins.limit, bins.width
                z = (v - mean) / deviation
                z = high if z > high else -high if z < -high else z
                if z >= width or z <= -width:  # NaN is neither
                    j = int((z + high) // width)
                    name, row = bins(k)[j], param[3][j]
                    for i in classes:
                        row[i] = w = weights[i].get(name, 0.0)
                        total += abs(w)
        except (TypeError, OverflowError):
            return False
        return isfinite(total + sum([abs(m.intercept) for m in self._members]))


def _class_size(param: list) -> float:
    """As ``_size``, over every class."""
    size = sum([abs(w) for w in param[2]])
    if len(param) == 4:
        size += sum([abs(w) for by_class in param[3] for w in by_class])
    return size


def _one_vs_rest_scorer(
    params: dict[str, list],
    members: list[Any],
    labels: list[Any],
    limit: float | None,
    bins: _Bins | None,
    river: Callable,
) -> Callable[[dict], tuple[dict[Any, float], Any, float]]:
    high = limit
    low = None if limit is None else -limit
    width = bins.width if bins is not None else None
    classes = range(len(members))
    share = 1 / len(members)

    def by_river(x: dict) -> tuple[dict[Any, float], Any, float]:
        return _with_prediction(river(x))

    def score(x: dict) -> tuple[dict[Any, float], Any, float]:
        scaled, later = [], []
        try:
            for k, v in x.items():
                param = params.get(k)
                if param is not None:
                    z = (v - param[0]) / param[1]
                    if high is not None:
                        z = high if z > high else low if z < low else z
                        if width is not None and (z >= width or z <= -width):  # NaN is neither
                            later.append(param[3][int((z + high) // width)])
                    scaled.append((z, param[2]))
                elif isinstance(v, str):
                    return by_river(x)
        except (TypeError, OverflowError):  # text, None; ints too large for a float
            return by_river(x)
        votes, total = [], 0.0
        for i in classes:
            # each class's sum in the pipeline's order: the record's own features, then bins
            t = 0.0
            for z, by_class in scaled:
                t += z * by_class[i]
            for by_class in later:
                t += by_class[i]
            p = _sigmoid(t + members[i].intercept)
            if p is None:
                return by_river(x)
            votes.append(p)
            total += p
        if total:
            proba = {label: p / total for label, p in zip(labels, votes)}  # noqa: B905
        else:
            proba = dict.fromkeys(labels, share)
        return _with_prediction(proba)

    return score


def class_probabilities(model: Any, xs: list[dict]) -> list[dict[Any, float]] | None:
    """``predict_proba_one(x)`` of a ``... | OneVsRestClassifier(LogisticRegression)`` pipeline."""
    plan = _plan(model, multiclass.OneVsRestClassifier)
    if plan is None:
        return None
    ovr = plan[-1]
    members = ovr.classifiers
    if not members or not all(_is_logistic(m) for m in members.values()):
        return None
    scaled = _scaled(plan, xs)
    if scaled is None:
        return None
    labels, columns = list(members), []
    for member in members.values():
        logits = _logits(member, *scaled)
        if logits is None:
            return None
        columns.append(list(map(sigmoid, logits.tolist())))
    probas = []
    share = 1 / len(labels)
    for votes in zip(*columns, strict=True):
        total = 0.0
        for v in votes:  # summed in class order, as river sums them
            total += v
        if total:
            probas.append({label: v / total for label, v in zip(labels, votes, strict=True)})
        else:
            probas.append(dict.fromkeys(labels, share))
    return probas


def _is_logistic(step: Any) -> bool:
    return type(step) is linear_model.LogisticRegression and type(step.loss) is optim.losses.Log


def _plan(model: Any, last_type: type) -> tuple | None:
    """``(scaler, clip limit or None, bins or None, last step)`` when we reproduce ``model``."""
    if type(model) is not compose.Pipeline or model._LEARN_UNSUPERVISED_DURING_PREDICT:
        return None
    steps = list(model.steps.values())
    if steps and (
        type(steps[0]) is OneHotText
        or (isinstance(steps[0], compose.FuncTransformer) and steps[0].func is _one_hot_text)
    ):
        steps = steps[1:]  # numbers pass it unchanged; text values are refused below
    if len(steps) not in (2, 3, 4):
        return None
    scaler, last = steps[0], steps[-1]
    if not (
        type(scaler) is preprocessing.StandardScaler
        and scaler.with_std
        and scaler.window_size is None
    ):
        return None
    limit = bins = None
    if len(steps) >= 3:
        clip = steps[1]
        if not (isinstance(clip, compose.FuncTransformer) and isinstance(clip.func, _Clip)):
            return None
        limit = clip.func.limit
    if len(steps) == 4:
        binned = steps[2]
        if not (isinstance(binned, compose.FuncTransformer) and isinstance(binned.func, _Bins)):
            return None
        bins = binned.func
        if bins.limit != limit:  # values outside the bins' range
            return None
    if type(last) is not last_type:
        return None
    if last_type is linear_model.LogisticRegression and not _is_logistic(last):
        return None
    return scaler, limit, bins, last


def _scaled(plan: tuple, xs: list[dict]) -> tuple[np.ndarray, tuple, tuple | None] | None:
    """The standard-scaled (and bounded) features as a matrix, their order, and their bins.

    The bins are ``(bin names of each feature, bin number of each value,
    where a value has a bin)``, or ``None`` for a model without bins; the
    names are made once a batch, for every member of a one-vs-rest.
    """
    n = len(xs)
    if n < MIN_BATCH:
        return None
    keys = tuple(xs[0])
    # the dot product is summed in each record's own key order: one order for all
    if not keys or list(map(tuple, xs)).count(keys) != n:
        return None
    x = np.array(list(chain.from_iterable(map(dict.values, xs))))
    if x.dtype.kind not in "biuf":  # text (one-hot encoded one by one), None, huge ints
        return None
    x = x.reshape(n, len(keys))
    scaler, limit, bins, _ = plan
    means, variances = scaler.means, scaler.vars
    var = [variances.get(k, 0.0) for k in keys]
    # river divides by var ** 0.5, and sets a feature of no variance to 0
    z = (x - np.array([means.get(k, 0.0) for k in keys])) / np.array(
        [v**0.5 if v else 1.0 for v in var]
    )
    flat = [j for j, v in enumerate(var) if not v]
    if flat:
        z[:, flat] = 0.0
    if limit is not None:
        np.clip(z, -limit, limit, out=z)
    if bins is None:
        return z, keys, None
    width = bins.width
    number = np.floor_divide(z + limit, width)  # NaN fails the test below and gets no bin
    has_bin = (z >= width) | (z <= -width)
    number[~has_bin] = 0
    names = _BinNames(bins)
    return z, keys, ([names(k) for k in keys], number.astype(np.intp), has_bin)


def _logits(lr: Any, z: np.ndarray, keys: tuple, bins: tuple | None) -> np.ndarray | None:
    weights = lr._weights
    w = np.array([weights.get(k, 0.0) for k in keys])
    terms = z * w
    if bins is not None:
        names, number, has_bin = bins
        # one row per feature, one column per bin number
        table = np.array([_bin_weights(feature, weights) for feature in names])
        # a value without a bin adds 0.0, which leaves the sum as it is
        picked = np.where(has_bin, table[np.arange(len(keys)), number], 0.0)
        # the bins come after the record's own features, as the pipeline adds them
        terms = np.concatenate([terms, picked], axis=1)
    # accumulate adds the columns one after another, as river's dot product does
    dots = np.add.accumulate(terms, axis=1)[:, -1] + lr.intercept
    # an overflow would meet a missing weight differently here and in river
    return dots if np.isfinite(dots).all() else None
