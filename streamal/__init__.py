"""streamal: online active learning on live streams.

>>> import streamal
>>> learner = streamal.ActiveLearner(strategy="split", budget=0.05)
>>> learner.strategy  # a twentieth of the budget goes to records picked at random
Split(budget=0.0475, v=0.1, theta=1.0, step=0.01, w=100, seed=0)
>>> learner.budget
0.05
"""

from streamal import strategies
from streamal.budget import BudgetCap, EstimatedBudget
from streamal.drift import DriftMonitor
from streamal.learner import ActiveLearner
from streamal.model import Classifier, OneHotText, bin_features, clip_features, default_model
from streamal.pending import PendingRequests
from streamal.records import Decision, Label, Record
from streamal.schema import InvalidRecord, RecordValidator
from streamal.shared_model import SharedModel
from streamal.strategies import (
    BalancedIncrementalQuantileFilter,
    FixedUncertainty,
    PerBoundaryQuantileFilter,
    PerClassQuantileFilter,
    PeriodicSampling,
    PerPredictedClass,
    QueryStrategy,
    RandomizedVariableUncertainty,
    RandomSampling,
    Split,
    VariableUncertainty,
)
from streamal.utility import entropy, least_confidence, margin

__version__ = "0.1.0"

__all__ = [
    "ActiveLearner",
    "BalancedIncrementalQuantileFilter",
    "BudgetCap",
    "Classifier",
    "Decision",
    "DriftMonitor",
    "EstimatedBudget",
    "FixedUncertainty",
    "InvalidRecord",
    "Label",
    "OneHotText",
    "PendingRequests",
    "PerClassQuantileFilter",
    "PerBoundaryQuantileFilter",
    "PerPredictedClass",
    "PeriodicSampling",
    "QueryStrategy",
    "RandomSampling",
    "RandomizedVariableUncertainty",
    "Record",
    "RecordValidator",
    "SharedModel",
    "Split",
    "VariableUncertainty",
    "bin_features",
    "clip_features",
    "default_model",
    "entropy",
    "least_confidence",
    "margin",
    "strategies",
]
