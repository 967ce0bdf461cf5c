"""streamal inside Quix Streams: the active learner as a step of an ``Application``."""

from streamal.connectors.quix.learning import ActiveLearning

__all__ = ["ActiveLearning"]
