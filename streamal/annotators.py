"""Several annotators, some noisy: an online reliability estimate for each.

Labels carry an annotator id. There is no ground truth to check them
against, so each label is compared with what the model, trained on every
annotator's labels so far, predicts for the record when the label arrives.
A careless annotator disagrees with it more often than a careful one, even
while the model itself is still poor, so the estimates rank annotators
correctly. Taking the most agreeing annotator as right, the agreement ``a``
of another gives its accuracy ``q = (a - (1 - m)) / (2 m - 1)`` where ``m``
is the best agreement (exact for two classes); the learner weights its
labels by ``2 q - 1``, the information a label right with probability ``q``
carries.

>>> r = AnnotatorReliability()
>>> for agreed in [True] * 18 + [False] * 2:
...     r.update("ann", agreed)
>>> for agreed in [True] * 10 + [False] * 10:
...     r.update("bob", agreed)
>>> round(r.reliability("ann"), 3), round(r.reliability("bob"), 3)
(0.88, 0.56)
>>> r.weight("ann"), round(r.weight("bob"), 3)
(1.0, 0.158)
"""

from __future__ import annotations

__all__ = ["AnnotatorReliability"]


class AnnotatorReliability:
    """Agreement of each annotator with the model, as a Beta posterior mean.

    Parameters
    ----------
    prior_agree, prior_disagree
        Pseudo-counts of the Beta prior: a new annotator starts at
        ``prior_agree / (prior_agree + prior_disagree)``.
    min_weight
        Floor of the learning weight, so that no annotator is silenced
        entirely by a run of bad luck.
    """

    def __init__(
        self, prior_agree: float = 4.0, prior_disagree: float = 1.0, min_weight: float = 0.05
    ):
        if prior_agree <= 0 or prior_disagree <= 0:
            raise ValueError("the prior pseudo-counts must be positive")
        self.prior_agree = prior_agree
        self.prior_disagree = prior_disagree
        self.min_weight = min_weight
        self.agreed: dict[str, int] = {}
        self.labels: dict[str, int] = {}

    def update(self, annotator: str, agreed: bool) -> None:
        self.labels[annotator] = self.labels.get(annotator, 0) + 1
        self.agreed[annotator] = self.agreed.get(annotator, 0) + bool(agreed)

    def reliability(self, annotator: str) -> float:
        """Posterior mean of the annotator's agreement rate."""
        a = self.agreed.get(annotator, 0) + self.prior_agree
        n = self.labels.get(annotator, 0) + self.prior_agree + self.prior_disagree
        return a / n

    def accuracy(self, annotator: str) -> float:
        """Implied accuracy, taking the most agreeing annotator as right (1 for that one)."""
        best = max((self.reliability(a) for a in self.labels), default=0.0)
        mine = self.reliability(annotator)
        if best <= 0.5 or mine >= best:
            return 1.0
        return max(0.0, (mine - (1.0 - best)) / (2.0 * best - 1.0))

    def weight(self, annotator: str) -> float:
        """Learning weight ``2 q - 1`` in [min_weight, 1]: 1 for the most agreeing annotator."""
        return min(1.0, max(self.min_weight, 2.0 * self.accuracy(annotator) - 1.0))

    def snapshot(self) -> dict[str, float]:
        """Annotator id -> reliability, for metrics and summaries."""
        return {a: self.reliability(a) for a in self.labels}
