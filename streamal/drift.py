"""Drift monitor: watches the error stream of labelled records.

It wraps any river drift detector (ADWIN by default) and says when the
error rate has changed; the learner then resets its strategy's threshold
so that it spends again on the new concept.

>>> m = DriftMonitor()
>>> hits = [m.update(i >= 1000) for i in range(2000)]
>>> m.detections >= 1 and hits.index(True) > 1000
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["DriftMonitor"]


class DriftMonitor:
    """Feeds 0/1 errors to a river drift detector and counts detections.

    Parameters
    ----------
    detector
        A river detector (``river.drift.ADWIN()``, ``PageHinkley()``,
        ``KSWIN()``, ``binary.DDM()`` ...); ``None`` means ADWIN.
    """

    def __init__(self, detector: Any = None):
        if detector is None:
            from river.drift import ADWIN

            detector = ADWIN()
        self.detector = detector
        self.detections = 0
        self.last_detection: int | None = None
        self.n = 0

    def update(self, error: bool | float) -> bool:
        """Add one error indicator (or any value, such as a confidence); True on a drift now."""
        self.n += 1
        self.detector.update(float(error))
        if self.detector.drift_detected:
            self.detections += 1
            self.last_detection = self.n
            return True
        return False


DETECTORS = ("adwin", "page_hinkley", "kswin", "ddm", "none")


def make_drift_monitor(name: str = "adwin", seed: int | None = 0) -> DriftMonitor | None:
    """A monitor around a river detector by name (``none`` for no monitor).

    >>> make_drift_monitor("page_hinkley").detector
    PageHinkley (...)
    """
    from river import drift

    if name == "none":
        return None
    detectors = {
        "adwin": lambda: drift.ADWIN(),
        "page_hinkley": lambda: drift.PageHinkley(),
        "kswin": lambda: drift.KSWIN(seed=seed),
        "ddm": lambda: drift.binary.DDM(),
    }
    if name not in detectors:
        raise ValueError(f"unknown drift detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DriftMonitor(detectors[name]())
