"""Scores records with the default model faster than its river pipeline does.

The learner spends most of its time in the model, and a river pipeline
handles one dict at a time, through a new dict at every step. For the model
streamal builds by default (``StandardScaler``, optionally bounded, then a
``LogisticRegression`` or a one-vs-rest of them) the same arithmetic runs
here in one pass: on a whole batch as a matrix (``positive_probabilities``,
``class_probabilities``), or on one record through a snapshot of the
parameters (``LogisticSnapshot``). The results are bit-for-bit those of
``predict_proba_one``: the same subtractions and divisions, each dot product
summed in the record's own feature order as river sums it, the same sigmoid.

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

from streamal.model import OneHotText, _Clip, _one_hot_text

__all__ = [
    "positive_probabilities",
    "class_probabilities",
    "LogisticSnapshot",
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
    z, keys = scaled
    logits = _logits(plan[-1], z, keys)
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
    {'legit': 0.18..., 'phishing': 0.81...}
    """

    __slots__ = ("score", "_positive", "_params", "_scaler", "_lr", "_sparse")

    @classmethod
    def of(cls, model: Any, negative: Any = False, positive: Any = True) -> LogisticSnapshot | None:
        """The snapshot of ``model``, or ``None`` for a model it does not reproduce."""
        plan = _plan(model, linear_model.LogisticRegression)
        if plan is None:
            return None
        scaler, limit, lr = plan
        means, weights = scaler.means, lr._weights
        # a feature of no variance (or never seen) is scaled to 0 and adds 0 to the sum;
        # a text value is one-hot encoded first, which the pipeline does
        params = {
            k: (means[k], v**0.5, weights.get(k, 0.0)) for k, v in scaler.vars.items() if v
        }  # fmt: skip
        # weights run off to infinity: river's own arithmetic decides what comes out
        if not isfinite(sum([abs(w) for _, _, w in params.values()]) + abs(lr.intercept)):
            return None
        snapshot = cls.__new__(cls)
        snapshot._params, snapshot._scaler, snapshot._lr = params, scaler, lr
        # a step that moves the weights of x's features only: plain SGD, no L2
        snapshot._sparse = type(lr.optimizer) is optim.SGD and not lr.l2
        snapshot._positive = positive
        snapshot.score = _scorer(params, lr, limit, model.predict_proba_one, negative, positive)
        return snapshot

    def probability(self, x: dict) -> float:
        """The model's ``predict_proba_one(x)[True]``."""
        return self.score(x)[0][self._positive]

    def learned(self, x: dict) -> bool:
        """Update after the model learned ``x``; ``False`` if only a new snapshot will do."""
        if not self._sparse:
            return False
        params, scaler = self._params, self._scaler
        means, variances, weights = scaler.means, scaler.vars, self._lr._weights
        total = 0.0
        for k, value in x.items():
            if isinstance(value, str):  # learned as a one-hot feature of another name
                return False
            v = variances[k]
            if v:
                params[k] = param = (means[k], v**0.5, weights.get(k, 0.0))
                total += abs(param[2])
            else:
                params.pop(k, None)
        return isfinite(total + abs(self._lr.intercept))


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
        if total is None:
            p = river(x)[True]
        else:
            total += lr.intercept
            # river's sigmoid, inlined; NaN (an overflow) goes to river's arithmetic
            if -30 <= total <= 30:
                p = 1 / (1 + exp(-total))
            elif total < -30:
                p = 0
            elif total > 30:
                p = 1
            else:
                p = river(x)[True]
        q = 1.0 - p
        # the prediction is the first label on ties, as the argmax over river's dict
        return ({negative: q, positive: p}, positive, p) if p > q else (
            {negative: q, positive: p}, negative, q)  # fmt: skip

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
    z, keys = scaled
    labels, columns = list(members), []
    for member in members.values():
        logits = _logits(member, z, keys)
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
    """``(scaler, clip limit or None, last step)`` when the batch path reproduces ``model``."""
    if type(model) is not compose.Pipeline or model._LEARN_UNSUPERVISED_DURING_PREDICT:
        return None
    steps = list(model.steps.values())
    if steps and (
        type(steps[0]) is OneHotText
        or (isinstance(steps[0], compose.FuncTransformer) and steps[0].func is _one_hot_text)
    ):
        steps = steps[1:]  # numbers pass it unchanged; text values are refused below
    if len(steps) not in (2, 3):
        return None
    scaler, last = steps[0], steps[-1]
    if not (
        type(scaler) is preprocessing.StandardScaler
        and scaler.with_std
        and scaler.window_size is None
    ):
        return None
    limit = None
    if len(steps) == 3:
        clip = steps[1]
        if not (isinstance(clip, compose.FuncTransformer) and isinstance(clip.func, _Clip)):
            return None
        limit = clip.func.limit
    if type(last) is not last_type:
        return None
    if last_type is linear_model.LogisticRegression and not _is_logistic(last):
        return None
    return scaler, limit, last


def _scaled(plan: tuple, xs: list[dict]) -> tuple[np.ndarray, tuple] | None:
    """The standard-scaled (and bounded) features as a matrix, and their order."""
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
    scaler, limit, _ = plan
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
    return z, keys


def _logits(lr: Any, z: np.ndarray, keys: tuple) -> np.ndarray | None:
    weights = lr._weights
    w = np.array([weights.get(k, 0.0) for k in keys])
    # accumulate adds the columns one after another, as river's dot product does
    dots = np.add.accumulate(z * w, axis=1)[:, -1] + lr.intercept
    # an overflow would meet a missing weight differently here and in river
    return dots if np.isfinite(dots).all() else None
