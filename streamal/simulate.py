"""A simulated annotator: answers label requests after a delay, sometimes wrongly.

It stands in for the human queue in ``streamal run``'s embedded default and
in tests. The delay counts records, so a run is reproducible.

>>> ann = SimulatedAnnotator(delay=2, noise=0.0)
>>> ann.submit("q-1", True, now=0)
>>> ann.poll(now=1), [lab.label for lab in ann.poll(now=2)]
([], [True])
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from streamal.records import Label

__all__ = ["SimulatedAnnotator"]


class SimulatedAnnotator:
    """Returns the true label ``delay`` records after the request.

    Parameters
    ----------
    delay
        Records between a request and its answer.
    noise
        Probability that the answer is another (random) class seen so far.
    seed
        Seed of the noise.
    name
        Annotator id carried on the labels.
    """

    def __init__(
        self, delay: int = 200, noise: float = 0.05, seed: int | None = 0, name: str = "simulated"
    ):
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay!r}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise!r}")
        self.delay = delay
        self.noise = noise
        self.name = name
        self._rng = random.Random(seed)
        self._queue: deque[tuple[float, str, Any]] = deque()
        self._classes: list[Any] = []
        self.answered = 0
        self.flipped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, request_id: str, true_label: Any, now: float) -> None:
        if true_label is not None and true_label not in self._classes:
            self._classes.append(true_label)
        self._queue.append((now + self.delay, request_id, true_label))

    def poll(self, now: float) -> list[Label]:
        out = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, request_id, label = queue.popleft()
            if self.noise and len(self._classes) > 1 and self._rng.random() < self.noise:
                label = self._rng.choice([c for c in self._classes if c != label])
                self.flipped += 1
            self.answered += 1
            out.append(Label(request_id, label, self.name))
        return out
