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
from collections import OrderedDict, deque
from collections.abc import Sequence
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
    noises
        Several annotators instead of one: their noise rates. Each request
        goes to one of them at random; they are named ``a1``, ``a2``, ...

    >>> team = SimulatedAnnotator(delay=0, noises=[0.0, 1.0], seed=3)
    >>> for i in range(6):
    ...     team.submit(f"q{i}", i % 2 == 0, now=0)
    >>> [(lab.annotator, lab.label == (i % 2 == 0)) for i, lab in enumerate(team.poll(now=0))]
    [('a1', True), ('a1', True), ('a2', False), ('a2', False), ('a1', True), ('a1', True)]
    """

    def __init__(
        self, delay: int = 200, noise: float = 0.05, seed: int | None = 0, name: str = "simulated",
        noises: Sequence[float] | None = None,
    ):  # fmt: skip
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay!r}")
        for rate in [noise, *(noises or [])]:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"noise must be in [0, 1], got {rate!r}")
        self.delay = delay
        self.noise = noise
        self.name = name
        self.team = (
            [(name, noise)] if not noises else [(f"a{i + 1}", n) for i, n in enumerate(noises)]
        )
        self._rng = random.Random(seed)
        self._queue: deque[tuple[float, str, Any, int]] = deque()
        self._classes: list[Any] = []
        # true labels of answered requests, for a second opinion (teams only)
        self._truth: OrderedDict[str, Any] = OrderedDict()
        self.answered = 0
        self.flipped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, request_id: str, true_label: Any, now: float) -> None:
        if true_label is not None and true_label not in self._classes:
            self._classes.append(true_label)
        who = self._rng.randrange(len(self.team)) if len(self.team) > 1 else 0
        self._queue.append((now + self.delay, request_id, true_label, who))

    def poll(self, now: float) -> list[Label]:
        out = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, request_id, true_label, who = queue.popleft()
            label = true_label
            name, noise = self.team[who]
            if noise and len(self._classes) > 1 and self._rng.random() < noise:
                label = self._rng.choice([c for c in self._classes if c != label])
                self.flipped += 1
            self.answered += 1
            out.append(Label(request_id, label, name))
            if len(self.team) > 1:  # kept for a second opinion
                truth = self._truth
                truth[request_id] = true_label
                if len(truth) > 100_000:
                    truth.popitem(last=False)
        return out

    def ask_again(self, request_id: str, now: float, exclude: str) -> bool:
        """Send a request answered before to another annotator of the team; False if none."""
        truth = self._truth
        others = [i for i, (name, _) in enumerate(self.team) if name != exclude]
        if request_id not in truth or not others:
            return False
        who = others[self._rng.randrange(len(others))]
        self._queue.append((now + self.delay, request_id, truth[request_id], who))
        return True

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "team" not in state:  # saved before teams: one annotator, queue without its index
            self.team = [(self.name, self.noise)]
            self._truth = OrderedDict()
            self._queue = deque((*entry, 0) for entry in self._queue)
