"""Engine: the daemon's event loop. It owns no learning logic.

For each record it applies the labels that are due, checks the record,
asks the learner, writes label requests, and ticks the summary and the
checkpoint. A record or label that cannot be used goes to the dead
letters with its reason and a counter; the loop goes on.

>>> from streamal import ActiveLearner
>>> from streamal.sinks import CallableSink
>>> from streamal.sources import SyntheticSource
>>> from streamal.simulate import SimulatedAnnotator
>>> requests = []
>>> engine = Engine(
...     ActiveLearner(),
...     SyntheticSource("sea_drift", seed=1),
...     requests=[CallableSink(requests.append)],
...     annotator=SimulatedAnnotator(delay=10, noise=0.0),
... )
>>> stats = engine.run(max_records=1000)
>>> stats.records, 0 < len(requests) <= 101
(1000, True)
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from streamal import checkpoint as ckpt
from streamal.config import settings_to_resume_with
from streamal.learner import ActiveLearner
from streamal.records import BadInput, Label, Record
from streamal.schema import why_not_decided

__all__ = ["Engine", "EngineStats", "Interrupted"]

log = logging.getLogger("streamal")


@dataclass
class EngineStats:
    """What the loop has done; saved with each checkpoint."""

    records: int = 0  # records taken from the source, good or bad
    labels_received: int = 0
    dead_letters: Counter = field(default_factory=Counter)  # kind -> count
    bad_labels: Counter = field(default_factory=Counter)  # malformed labels from a source
    checkpoints: int = 0
    second_opinions: int = 0  # requests sent again to another annotator
    #: labels received by the way they came: simulated, file, http
    intake: Counter = field(default_factory=Counter)
    #: (route, status) -> requests the labelling API answered
    http_requests: Counter = field(default_factory=Counter)


class Interrupted(Exception):
    """Raised by ``Engine.stop`` into a wait on the source."""


_END = object()


def _as_read(record: Record) -> dict[str, Any]:
    """A record as a dead letter shows it."""
    out: dict[str, Any] = {"id": record.id, "features": record.features}
    if record.ts is not None:
        out["ts"] = record.ts
    return out


class Engine:
    """Runs ``source -> learner -> sinks`` with labels coming back.

    A record whose features the learner refuses (``InvalidRecord``) goes to
    the dead letters with ``where`` it came from (``file:line``).

    Parameters
    ----------
    learner
        The ``ActiveLearner`` that decides and learns.
    source
        An iterable of ``Record`` / ``BadInput`` (see ``streamal.sources``).
    requests
        Sinks that receive each label request.
    dead_letters
        Sink for rejected records and labels (``None``: counted only).
    annotator
        A simulated annotator, fed each request with the record's true label.
    labels
        Anything with ``poll(now) -> list[Label]``: labels from elsewhere.
    metrics
        A ``streamal.metrics.Metrics``; the engine times decisions into it.
    checkpoint, checkpoint_key
        Checkpoint file and its signing key; resumed from at start.
    checkpoint_every, checkpoint_seconds
        Save after this many records or seconds, whichever comes first.
    summary_every
        Records between one-line summaries on ``out`` (0: none).
    settings
        What the run was configured with (``{"--flag": value}``); saved with
        the checkpoint, and a resume with other values is refused, naming
        each difference (``SettingsChanged``), unless ``keep_saved_settings``:
        then the saved ones are kept, and a warning names what was ignored.
    """

    def __init__(
        self,
        learner: ActiveLearner,
        source: Iterable[Record | BadInput],
        *,
        requests: Sequence[Any] = (),
        dead_letters: Any = None,
        annotator: Any = None,
        labels: Any = None,
        metrics: Any = None,
        checkpoint: str | Path | None = None,
        checkpoint_key: bytes | None = None,
        checkpoint_every: int = 10_000,
        checkpoint_seconds: float = 60.0,
        summary_every: int = 0,
        settings: dict[str, Any] | None = None,
        keep_saved_settings: bool = False,
        clock: Callable[[], float] = time.time,
        out: TextIO | None = None,
    ):
        self.learner = learner
        self.source = source
        self.requests = list(requests)
        self.dead_letters = dead_letters
        self.annotator = annotator
        self.labels = labels
        self.metrics = metrics
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.checkpoint_key = checkpoint_key
        if self.checkpoint and checkpoint_key is None:
            self.checkpoint_key = ckpt.resolve_key(self.checkpoint)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.summary_every = summary_every
        self.settings = dict(settings or {})
        self.keep_saved_settings = keep_saved_settings
        self.clock = clock
        self.out = out if out is not None else sys.stderr
        self.stats = EngineStats()
        if metrics is not None:
            metrics.engine_stats = self.stats
        self._stopping = False
        self._waiting = False  # blocked on the source: a stop must interrupt it
        #: held while a record is processed: the label intake's thread waits for it
        self.lock = threading.RLock()
        self.journal: Any = None  # the label intake's LabelJournal, once attached
        self._started = threading.Event()  # resumed (and the journal read again): labels in
        self._inbox: deque = deque()  # labels from the journal, for the loop to apply
        self._journal_applied = 0  # journal bytes whose labels the learner holds
        #: request id -> (label, position it waits until): labels read before their request
        self._parked: dict[str, tuple[Label, int]] = {}
        self._running = False
        self._resumed = False

    # -- lifecycle ------------------------------------------------------------

    def attach_journal(self, path: str | Path) -> Any:
        """Take labels from people through a durable journal at ``path`` (``LabelJournal``):
        what the checkpoint does not hold of it is applied again at the start."""
        from streamal.journal import LabelJournal

        self._journal_path = Path(path)
        self.journal = LabelJournal(path, apply=self.apply_from_journal)
        return self.journal

    def apply_from_journal(
        self, labels: list[Label], end: int, done: Callable[[list[str]], None]
    ) -> None:
        """Learn labels just written to the journal, in order; ``done`` gets their outcomes."""
        self._started.wait()  # never into the learner a resume is about to replace
        # the loop applies them between two records, in journal order; when it is not
        # turning (waiting for the source, or stopped) this thread does. The loop says it
        # waits before it looks at the inbox, this thread hands over before it looks at
        # the loop: one of the two always sees the labels
        self._inbox.append((labels, end, done))
        if self._waiting or not self._running:
            with self.lock:
                self._drain_inbox()

    def _drain_inbox(self) -> None:
        """Apply the labels the journal handed over (with the lock held)."""
        inbox, intake = self._inbox, self.stats.intake
        while inbox:
            labels, end, done = inbox.popleft()
            self.stats.labels_received += len(labels)
            for label in labels:
                intake[label.extra.get("intake", "http")] += 1
            outcomes = [self._learn_label(label) for label in labels]
            self._journal_applied = end
            self._ask_second_opinions()
            done(outcomes)

    def _replay_journal(self) -> None:
        """After a resume: the journal's labels after the checkpoint, applied again (a label
        whose request the records decided again will make waits for it)."""
        from streamal.label_file import LabelFile

        path = getattr(self, "_journal_path", None)
        if path is None or not path.exists() or path.stat().st_size <= self._journal_applied:
            return
        journal = LabelFile(path, every=0)
        journal.seek({"inode": path.stat().st_ino, "offset": self._journal_applied})
        park = self.stats.records
        while items := journal.poll():
            self._apply_labels(items, park, intake="http")
        journal.close()
        self._journal_applied = path.stat().st_size
        log.info("applied again the labels of %s after the checkpoint", path)

    @property
    def ready(self) -> bool:
        """True while the loop runs: the source open, the learner restored and at work."""
        return self._running and not self._stopping

    def stop(self) -> None:
        """Ask the loop to finish the current record, checkpoint and return."""
        self._stopping = True

    def interrupt(self) -> None:
        """``stop`` for a signal handler: a wait for the source (stdin with nothing
        to read) is cut short too, so that the loop stops at once."""
        self._stopping = True
        if self._waiting:
            self._waiting = False
            raise Interrupted

    def _sinks(self) -> list[Any]:
        return self.requests + ([self.dead_letters] if self.dead_letters is not None else [])

    def resume(self) -> bool:
        """Load the checkpoint if there is one; True if state was restored."""
        if self.checkpoint is None or not self.checkpoint.exists():
            return False
        state = ckpt.load(self.checkpoint, self.checkpoint_key)
        self.settings = settings_to_resume_with(
            state.get("settings", {}), self.settings, str(self.checkpoint),
            self.keep_saved_settings,
        )  # fmt: skip
        self.learner = ActiveLearner.from_state(state["learner"], clock=self.learner.clock)
        if "validator" in state:  # saved when the engine held the schema
            self.learner.validator = state["validator"]
        self.stats = state["stats"]
        self.annotator = state["annotator"] if self.annotator is not None else None
        if hasattr(self.labels, "seek"):
            self.labels.seek(state.get("label_position"))
        self._parked = dict(state.get("parked_labels", {}))
        self._journal_applied = state.get("journal_applied", 0)
        # a crash after the checkpoint left outputs that the rerun writes again
        for sink, position in zip(self._sinks(), state["sink_positions"], strict=False):
            sink.truncate(position)
        if self.metrics is not None:
            self.metrics.learner = self.learner
            self.metrics.engine_stats = self.stats
        self._resumed = True
        log.info("resumed from %s at record %d", self.checkpoint, self.stats.records)
        return True

    def save(self) -> None:
        """Flush outputs, then write the checkpoint that matches them."""
        if self.checkpoint is None:
            return
        for sink in self._sinks():
            sink.flush(sync=True)
            # rotated only here, so that the positions saved are in the current files
            if hasattr(sink, "rotate_if_due"):
                sink.rotate_if_due()
        self.stats.checkpoints += 1
        state = {
            "learner": self.learner.state(),
            "stats": self.stats,
            "annotator": self.annotator,
            "settings": self.settings,
            "sink_positions": [sink.position() for sink in self._sinks()],
            # where the label source has read to: labels before it are in the learner
            "label_position": getattr(self.labels, "position", lambda: None)(),
            "parked_labels": self._parked,
            "journal_applied": self._journal_applied,
        }
        ckpt.save(self.checkpoint, state, self.checkpoint_key)

    # -- the loop -------------------------------------------------------------

    def run(self, max_records: int = 0) -> EngineStats:
        """Process records until the source ends, ``stop()``, or the stream position
        reaches ``max_records`` (records before a resume count, so a restarted
        run finishes the same job)."""
        if not self._resumed:
            if self.checkpoint is not None:
                for sink in self._sinks():
                    sink.rotate_when_due = False  # rotated at each save instead
            if self.resume():
                self._replay_journal()
            else:
                for sink in self._sinks():  # a new run: never append to an earlier run's file
                    if hasattr(sink, "start_new_run"):
                        sink.start_new_run()
                if self.journal is not None:  # an earlier run's labels are not this run's
                    self._journal_applied = self.journal.size()
                if self.checkpoint is not None:
                    # a first checkpoint before any output: a crash before the first periodic
                    # one then resumes here and cuts the outputs back to their sizes now
                    self.save()
            self._resumed = True
        self._started.set()
        stats = self.stats
        if max_records and stats.records >= max_records:
            return stats
        self._running = True
        try:
            self._loop(max_records)
        except Interrupted:
            pass  # stopped while waiting for the source
        finally:
            # whatever ended the loop (a stop, a source that failed): what was
            # decided is saved, so that nothing is lost or done twice
            self._waiting = self._running = False
            with self.lock:  # labels from the journal are now applied by its thread
                self.save()
            for sink in self._sinks():
                sink.flush()
        return stats

    def _loop(self, max_records: int) -> None:
        stats = self.stats
        annotator = self.annotator
        self._strategy_name = getattr(
            self.learner.strategy, "name", type(self.learner.strategy).__name__
        )
        started = time.perf_counter()
        start_records = stats.records
        last_save = time.monotonic()
        source = islice(iter(self.source), stats.records, None)
        while not self._stopping:
            self._waiting = True
            if self._inbox:  # handed over just before the journal saw the loop wait
                with self.lock:
                    self._drain_inbox()
            item = next(source, _END)
            self._waiting = False
            if item is _END or self._stopping:
                # a record read as the stop came is left for the next run to read
                break
            with self.lock:  # the label intake applies its labels between records
                if self._inbox:
                    self._drain_inbox()
                stats.records += 1
                position = stats.records
                if annotator is not None:
                    self._apply_labels(annotator.poll(position), intake="simulated")
                if self.labels is not None:
                    # after a resume, labels read again may come before their requests
                    park = position if self.checkpoint is not None else None
                    self._apply_labels(self.labels.poll(position), park, intake="file")
                if self._parked:
                    self._unpark_expired(position)
                if isinstance(item, BadInput):
                    self._dead_letter("record", item.reason, item.to_dead_letter(), item.where)
                else:
                    self._decide(item, position)
                if self.summary_every and position % self.summary_every == 0:
                    self._summary(position - start_records, time.perf_counter() - started)
                if self.checkpoint is not None and (
                    position % self.checkpoint_every == 0
                    or time.monotonic() - last_save >= self.checkpoint_seconds
                ):
                    self.save()
                    last_save = time.monotonic()
            if max_records and position >= max_records:
                break

    def _decide(self, record: Record, position: int) -> None:
        t0 = time.perf_counter()
        try:
            decision = self.learner.decide(record)
        except Exception as e:  # a record refused, or one the model cannot take: not a stop
            self._dead_letter("record", why_not_decided(e), _as_read(record), record.where)
            return
        if self.metrics is not None:
            self.metrics.decision_seconds.observe(time.perf_counter() - t0)
        if decision.query:
            request = decision.to_request(record, self._strategy_name)
            for sink in self.requests:
                sink.write(request)
            if self.annotator is not None:
                self.annotator.submit(decision.request_id, record.label, position)
            parked = self._parked.pop(decision.request_id, None)
            if parked is not None:  # its label came first: read again after a resume
                self._apply_labels([parked[0]], counted=True)

    def _apply_labels(
        self,
        labels: list[Label | BadInput],
        parked_at: int | None = None,
        counted: bool = False,
        intake: str = "file",
    ) -> None:
        """Learn the labels; with ``parked_at`` (labels from a source that a resume reads
        again: the stream position now), a label for a request not made yet waits for it,
        ``checkpoint_every`` records at most."""
        for label in labels:
            if not counted:
                self.stats.labels_received += 1
                self.stats.intake[intake] += 1
            if isinstance(label, BadInput):
                self._dead_letter("label", label.reason, label.to_dead_letter(), label.where)
                self.stats.bad_labels["malformed"] += 1
                continue
            if parked_at is not None and not self.learner.pending.knows(label.request_id):
                # after a crash the records since the checkpoint are decided again, and the
                # labels of their requests can be read before the requests are made again
                self._parked[label.request_id] = (label, parked_at + self.checkpoint_every)
                continue
            self._learn_label(label)

        self._ask_second_opinions()

    def _learn_label(self, label: Label) -> str:
        """Learn one label; a refusal goes to the dead letters with its reason."""
        try:
            outcome = self.learner.learn(label.request_id, label.label, annotator=label.annotator)
        except Exception as e:  # e.g. a label type the model cannot learn
            outcome = f"unusable ({type(e).__name__}: {e})"
        if outcome not in ("applied", "held"):  # held: waiting for a second opinion
            self._dead_letter(
                "label",
                self.learner.why_refused(label.request_id, label.label, outcome),
                {"request_id": label.request_id, "label": label.label,
                 "annotator": label.annotator, "outcome": outcome},
            )  # fmt: skip
        return outcome

    def _unpark_expired(self, position: int) -> None:
        """Labels parked past their wait: their request was never made, they are refused."""
        parked = self._parked
        while parked:
            request_id, (label, until) = next(iter(parked.items()))
            if until > position:
                return
            del parked[request_id]
            self._apply_labels([label], counted=True)

    def _ask_second_opinions(self) -> None:
        """Send out again the requests whose label the learner holds for a second opinion."""
        for pending, first in self.learner.take_second_opinions():
            request = {"request_id": pending.request_id, "record_id": pending.record_id,
                       "features": pending.features, "second_opinion": True,
                       "exclude_annotator": first, "strategy": self._strategy_name}  # fmt: skip
            for sink in self.requests:
                sink.write(request)
            if self.annotator is not None and hasattr(self.annotator, "ask_again"):
                self.annotator.ask_again(pending.request_id, self.stats.records, exclude=first)
            self.stats.second_opinions += 1

    def _dead_letter(self, kind: str, reason: str, raw: Any, where: str | None = None) -> None:
        self.stats.dead_letters[kind] += 1
        log.debug("dead letter (%s) at %s: %s", kind, where, reason)
        if self.dead_letters is not None:
            self.dead_letters.write({"kind": kind, "reason": reason, "where": where, "data": raw})

    def _summary(self, n: int, seconds: float) -> None:
        learner = self.learner
        acc = learner.weighted_accuracy
        threshold = learner.threshold
        team = learner.annotators.snapshot()
        reliability = "".join(f" {name}~{value:.2f}" for name, value in sorted(team.items()))
        print(
            f"records={self.stats.records} requested={learner.n_queries} "
            f"({learner.n_queries / max(learner.n_records, 1):.1%}) "
            f"labels={learner.labels_applied} pending={len(learner.pending)} "
            f"accuracy~{'-' if acc is None else f'{acc:.3f}'} "
            f"threshold={'-' if threshold is None else f'{threshold:.3f}'} "
            f"drifts={learner.drift_detections} dead={sum(self.stats.dead_letters.values())} "
            + (f"late-explore={learner.late_share:.0%} " if learner.late_share else "")
            + f"rate={n / seconds if seconds > 0 else 0:,.0f}/s"
            + (f" annotators:{reliability}" if len(team) > 1 else ""),
            file=self.out,
            flush=True,
        )
