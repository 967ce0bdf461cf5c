"""Configuration: a TOML file, every key also settable by a command-line flag.

Each option has one home, ``[section] key`` in the file and ``--flag`` on
the command line; a flag wins over the file, the file over the default. A
bad value stops with one line naming the key.

>>> settings = load_settings(overrides={"learner.budget": 0.05})
>>> settings["learner.budget"], settings["learner.strategy"]
(0.05, 'per_class_quantile_filter')
>>> load_settings(overrides={"learner.budget": 2.0})
Traceback (most recent call last):
streamal.config.ConfigError: learner.budget: must be in (0, 1], got 2.0
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal.drift import DETECTORS as DRIFT
from streamal.learner import EXPLORATION_SHARE
from streamal.model import CLIP, MODELS, UNSUPERVISED
from streamal.strategies import STRATEGIES
from streamal.utility import AUTO, UTILITIES

__all__ = [
    "Option",
    "OPTIONS",
    "ConfigError",
    "SettingsChanged",
    "check",
    "load_settings",
    "learner_settings",
    "settings_to_resume_with",
]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""


class SettingsChanged(ConfigError):
    """A resume whose settings differ from the saved state's; the message names each one."""

    def __init__(self, where: str, changed: list[tuple[str, Any, Any]]):
        self.changed = changed
        what = "; ".join(f"{flag} {new!r} (saved: {old!r})" for flag, old, new in changed)
        super().__init__(
            f"{where} was saved with other settings: {what}. Run with the saved values, "
            "or pass --resume-as-saved to keep them, or remove the saved state to start over"
        )


@dataclass(frozen=True)
class Option:
    key: str  # "section.name" in TOML
    flag: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None


def _fraction(v: float) -> str | None:
    return None if 0.0 < v <= 1.0 else f"must be in (0, 1], got {v!r}"


def _unit(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else f"must be in [0, 1], got {v!r}"


def _share(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v!r}"


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be positive, got {v!r}"


def rates(v: str) -> list[float] | None:
    """``"0.05,0.4"`` as a list of rates; ``[]`` for ``""``; None when malformed."""
    try:
        values = [float(part) for part in v.split(",") if part.strip()]
    except ValueError:
        return None
    return values if all(0.0 <= r <= 1.0 for r in values) else None


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else f"must be >= 0, got {v!r}"


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else f"must be a port number (0 disables), got {v!r}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "source.spec",
        "--source",
        str,
        "synth:sea_drift",
        "where records come from: synth:NAME, river:NAME, a .csv[.gz]/.jsonl[.gz] file, "
        "'-' (JSON lines on stdin), or 'kafka' for the Kafka daemon (see [kafka])",
    ),
    Option(
        "source.labels",
        "--labels",
        str,
        "",
        "a JSON-lines file of labels to follow as it grows, one "
        '{"request_id", "label", "annotator"} a line (like tail -F: truncation and '
        "rotation are followed; its position is saved with the checkpoint)",
    ),
    Option(
        "source.period",
        "--drift-period",
        int,
        10_000,
        "records between concept switches of synth:sea_drift",
        _positive,
    ),
    Option(
        "source.require_all_features",
        "--require-all-features",
        bool,
        True,
        "reject records that lack a feature the first record had (turn off for sparse data)",
    ),
    Option(
        "learner.classes",
        "--classes",
        str,
        "",
        "the labels there are, comma-separated (e.g. spam,ham); a label outside them is "
        "refused as invalid instead of starting a new class ('': learned from the labels)",
    ),
    Option("run.seed", "--seed", int, 42, "seed of the stream, the strategy and the annotator"),
    Option(
        "run.max_records",
        "--max-records",
        int,
        0,
        "stop when the stream position reaches N records, counting those before a resume "
        "(0: run until the source ends or Ctrl-C)",
        _non_negative,
    ),
    Option(
        "learner.strategy",
        "--strategy",
        str,
        "per_class_quantile_filter",
        "query strategy",
        choices=tuple(sorted(STRATEGIES)),
    ),
    Option(
        "learner.budget",
        "--budget",
        float,
        0.1,
        "fraction of records whose label may be requested",
        _fraction,
    ),
    Option(
        "learner.utility",
        "--utility",
        str,
        AUTO,
        "how uncertainty is measured (margin: 1 - the gap between the two likeliest classes); "
        "auto: margin for the quantile filters, least confidence for the other strategies",
        choices=(AUTO, *UTILITIES),
    ),
    Option(
        "learner.unsupervised",
        "--unsupervised",
        str,
        "labelled",
        "what the model's unsupervised steps (the scaler) learn from: only the labelled "
        "records, as the pipeline alone would, or all records decided",
        choices=UNSUPERVISED,
    ),
    Option(
        "learner.model",
        "--model",
        str,
        MODELS[0],
        "river model (standard-scaled; one-vs-rest for several classes where needed); the "
        "binned logistic regression adds each scaled feature's bin of 0.5 within [-2, 2]",
        choices=MODELS,
    ),
    Option(
        "learner.clip",
        "--clip",
        float,
        CLIP,
        "bound the standard-scaled features of --model logistic_regression to [-CLIP, CLIP], "
        "so that one unusual record cannot throw its weights around (0: no bound; the binned "
        "one is bounded to [-2, 2])",
        _non_negative,
    ),
    Option(
        "learner.drift",
        "--drift",
        str,
        "adwin",
        "drift detector on the error stream of labelled records",
        choices=DRIFT,
    ),
    Option(
        "learner.budget_cap",
        "--budget-cap",
        bool,
        True,
        "hard cap: after n records at most ceil(budget*n)+1 requests",
    ),
    Option(
        "learner.pending_ttl",
        "--pending-ttl",
        float,
        86_400.0,
        "seconds a label request waits for its label",
        _positive,
    ),
    Option(
        "learner.max_pending",
        "--max-pending",
        int,
        100_000,
        "most label requests waiting at once (the oldest expires first)",
        _positive,
    ),
    Option(
        "learner.exploration",
        "--exploration",
        float,
        0.0,
        "query a record the strategy skipped with this probability, on top of the budget, so "
        "that the live accuracy estimate covers every record (0: never)",
        _unit,
    ),
    Option(
        "learner.exploration_share",
        "--exploration-share",
        float,
        EXPLORATION_SHARE,
        "share of the budget spent on records picked at random, so that the records the model "
        "is sure of get labels too (0: the strategy spends it all)",
        _share,
    ),
    Option(
        "learner.late_exploration",
        "--late-exploration",
        float,
        0.5,
        "when labels come late, move up to this share of the budget to random exploration, "
        "growing with the label delay (0: never)",
        _share,
    ),
    Option(
        "learner.late_delay",
        "--late-delay",
        int,
        200,
        "label delay, in records, at which the whole late-exploration share is reached",
        _positive,
    ),
    Option(
        "learner.second_opinion_below",
        "--second-opinion-below",
        float,
        0.0,
        "hold a label from an annotator whose estimated accuracy is below this and ask another "
        "one (0: never)",
        _unit,
    ),
    Option(
        "learner.background",
        "--background",
        bool,
        False,
        "train a second model from a drift warning on and swap it in when the drift is confirmed",
    ),
    Option(
        "learner.confidence_drift",
        "--confidence-drift",
        bool,
        False,
        "also watch the confidence of every record for drift: a signal that needs no label",
    ),
    Option(
        "learner.drift_boost",
        "--drift-boost",
        float,
        1.0,
        "after a detected drift, spend up to this many times the budget for --boost-window "
        "records, then pay it back (1: off)",
        lambda v: None if v >= 1 else f"must be >= 1, got {v!r}",
    ),
    Option(
        "learner.boost_window",
        "--boost-window",
        int,
        500,
        "records the drift boost lasts",
        _positive,
    ),
    Option(
        "learner.labels_per_hour",
        "--labels-per-hour",
        float,
        0.0,
        "pace requests to at most this many an hour on average (0: no pacing)",
        _non_negative,
    ),
    Option(
        "learner.burst",
        "--burst",
        float,
        0.0,
        "requests that may go out at once under --labels-per-hour (0: a minute's worth)",
        _non_negative,
    ),
    Option(
        "learner.labels_per_day",
        "--labels-per-day",
        int,
        0,
        "at most this many requests a calendar day, UTC (0: no cap)",
        _non_negative,
    ),
    Option(
        "learner.cost_feature",
        "--cost-feature",
        str,
        "",
        "feature holding each record's labelling cost; with --cost-per-record (default: none)",
    ),
    Option(
        "learner.cost_per_record",
        "--cost-per-record",
        float,
        0.0,
        "average labelling cost that may be spent per record (0: no cost budget)",
        _non_negative,
    ),
    Option(
        "annotator.enabled",
        "--annotator",
        bool,
        True,
        "answer requests with the simulated annotator (needs true labels in the source)",
    ),
    Option(
        "annotator.delay",
        "--annotator-delay",
        int,
        200,
        "records between a request and the simulated answer",
        _non_negative,
    ),
    Option(
        "annotator.noise",
        "--annotator-noise",
        float,
        0.05,
        "probability that a simulated answer is wrong",
        _unit,
    ),
    Option(
        "annotator.noises",
        "--annotator-noises",
        str,
        "",
        "several simulated annotators a1, a2, ... with these noise rates, e.g. 0.05,0.4; each "
        "request goes to one at random (default: one annotator with --annotator-noise)",
        lambda v: None if rates(v) is not None else f"must be rates in [0, 1], got {v!r}",
    ),
    Option(
        "output.requests",
        "--requests",
        str,
        "streamal-out/requests.jsonl",
        "label requests as JSON lines ('-' for stdout)",
    ),
    Option(
        "output.dead_letters",
        "--dead-letters",
        str,
        "streamal-out/dead-letters.jsonl",
        "rejected records and labels as JSON lines, with the reason",
    ),
    Option(
        "output.rotate_mb",
        "--rotate-mb",
        float,
        100.0,
        "move an output file to FILE.1 (older ones to FILE.2 ...) once it passes this many MB "
        "(0: never)",
        _non_negative,
    ),
    Option(
        "output.keep_files",
        "--keep-files",
        int,
        5,
        "earlier output files kept after rotation (so at most this many plus one per output)",
        _non_negative,
    ),
    Option(
        "output.summary_every",
        "--summary-every",
        int,
        100_000,
        "print a one-line summary to stderr every N records, and when the Kafka daemon has "
        "caught up with its topics (0: never)",
        _non_negative,
    ),
    Option(
        "http.enabled",
        "--http",
        bool,
        False,
        "serve the labelling API (GET /requests, POST /labels) for people to answer "
        "requests; needs streamal[http]",
    ),
    Option(
        "http.listen",
        "--http-listen",
        str,
        "127.0.0.1:8765",
        "HOST:PORT the labelling API listens on",
    ),
    Option(
        "http.token_file",
        "--http-token-file",
        str,
        "streamal-out/http.token",
        "file holding the API's bearer token, created (mode 600) on first use; "
        "$STREAMAL_HTTP_TOKEN wins over it",
    ),
    Option(
        "http.journal",
        "--http-journal",
        str,
        "streamal-out/labels.journal",
        "where labels sent to the API are written durably before the reply",
    ),
    Option(
        "http.rate",
        "--http-rate",
        float,
        1000.0,
        "requests a second one client may make before it gets 429 (0: no limit)",
        _non_negative,
    ),
    Option(
        "labelstudio.url",
        "--labelstudio",
        str,
        "",
        "a Label Studio server (http://HOST:PORT) whose project gets a task for each open "
        "request; its annotations come back through the labelling API's webhook (needs "
        "--http and --classes)",
    ),
    Option(
        "labelstudio.token_file",
        "--labelstudio-token-file",
        str,
        "",
        "file holding a Label Studio personal access token (Account & Settings); "
        "$STREAMAL_LABEL_STUDIO_TOKEN wins over it",
    ),
    Option(
        "labelstudio.project",
        "--labelstudio-project",
        str,
        "streamal",
        "title of the Label Studio project: found, or created",
    ),
    Option(
        "labelstudio.webhook_url",
        "--labelstudio-webhook-url",
        str,
        "",
        "where Label Studio reaches the labelling API's webhook (default: "
        "http://HOST:PORT/labelstudio/webhook of --http-listen)",
    ),
    Option(
        "labelstudio.secret_file",
        "--labelstudio-secret-file",
        str,
        "streamal-out/labelstudio.secret",
        "file holding the secret Label Studio sends with each webhook, created (mode 600) "
        "on first use; $STREAMAL_LABEL_STUDIO_SECRET wins over it",
    ),
    Option(
        "metrics.host",
        "--metrics-host",
        str,
        "127.0.0.1",
        "address the Prometheus endpoint listens on",
    ),
    Option(
        "metrics.port",
        "--metrics-port",
        int,
        9108,
        "port of the Prometheus endpoint (0 disables it)",
        _port,
    ),
    Option(
        "kafka.bootstrap",
        "--bootstrap",
        str,
        "127.0.0.1:9092",
        "Kafka bootstrap server HOST:PORT (with source 'kafka')",
    ),
    Option(
        "kafka.client",
        "--kafka-client",
        str,
        "kafka-python",
        "Kafka client: kafka-python (pure Python) or confluent (librdkafka, several times "
        "faster on a busy topic; pip install 'streamal[confluent]')",
        choices=("kafka-python", "confluent"),
    ),
    Option(
        "kafka.records_topic",
        "--records-topic",
        str,
        "streamal-records",
        "topic the records are read from",
    ),
    Option("kafka.group", "--group", str, "streamal", "consumer group of the records topic"),
    Option(
        "kafka.requests_topic",
        "--requests-topic",
        str,
        "streamal-label-requests",
        "topic label requests are written to, keyed like the record",
    ),
    Option(
        "kafka.labels_topic", "--labels-topic", str, "streamal-labels", "topic labels come back on"
    ),
    Option(
        "kafka.dead_letters_topic",
        "--dead-letters-topic",
        str,
        "streamal-dead-letters",
        "topic for rejected records and labels, with the reason",
    ),
    Option(
        "kafka.changelog_topic",
        "--changelog-topic",
        str,
        "streamal-state",
        "compacted topic holding the signed learner state per partition",
    ),
    Option(
        "kafka.training_topic",
        "--training-topic",
        str,
        "streamal-training",
        "topic of the labelled examples every process's model learns from, in one order",
    ),
    Option(
        "kafka.partition_models",
        "--partition-models",
        str,
        "shared",
        "shared: every partition scores with one model that learns all partitions' labels "
        "(through the training topic); own: each partition's model learns its own labels",
        choices=("shared", "own"),
    ),
    Option(
        "kafka.instance",
        "--instance",
        str,
        "0",
        "name of this process within the group (stable across restarts)",
    ),
    Option(
        "kafka.transactions",
        "--transactions",
        bool,
        True,
        "exactly once with Kafka transactions (off: at least once)",
    ),
    Option(
        "kafka.commit_every",
        "--commit-every",
        int,
        10_000,
        "records per transaction at most (commit-seconds bounds how long requests wait)",
        _positive,
    ),
    Option(
        "kafka.commit_seconds",
        "--commit-seconds",
        float,
        1.0,
        "seconds per transaction at most",
        _positive,
    ),
    Option(
        "kafka.exit_when_idle",
        "--exit-when-idle",
        float,
        0.0,
        "stop after this many seconds without new records (0: never)",
        _non_negative,
    ),
    Option(
        "checkpoint.path",
        "--checkpoint",
        str,
        "",
        "checkpoint file: resume from it on start, save to it while running",
    ),
    Option(
        "checkpoint.every",
        "--checkpoint-every",
        int,
        10_000,
        "records between checkpoints",
        _positive,
    ),
    Option(
        "checkpoint.seconds",
        "--checkpoint-seconds",
        float,
        60.0,
        "seconds between checkpoints",
        _positive,
    ),
    Option(
        "checkpoint.key_file",
        "--checkpoint-key-file",
        str,
        "",
        "file holding the HMAC key that signs checkpoints "
        "(default: $STREAMAL_CHECKPOINT_KEY, else PATH.key, created on first use)",
    ),
)

BY_KEY = {o.key: o for o in OPTIONS}


def check(key: str, value: Any, name: str | None = None) -> Any:
    """``value`` for setting ``key`` checked (``None``: its default); errors say ``name``.

    >>> check("learner.budget", 1)
    1.0
    >>> check("learner.budget", 2.0, name="--budget")
    Traceback (most recent call last):
    ...
    streamal.config.ConfigError: --budget: must be in (0, 1], got 2.0
    """
    option = BY_KEY[key]
    return _coerce(option, option.default if value is None else value, name)


def _coerce(option: Option, value: Any, name: str | None = None) -> Any:
    t = option.type
    name = name or option.key
    if t is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: must be true or false, got {value!r}")
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, t) or isinstance(value, bool):
        raise ConfigError(f"{name}: must be {t.__name__}, got {value!r}")
    if option.choices and value not in option.choices:
        raise ConfigError(f"{name}: must be one of {', '.join(option.choices)}, got {value!r}")
    if option.check is not None and (problem := option.check(value)):
        raise ConfigError(f"{name}: {problem}")
    return value


def read_toml(path: str | Path) -> dict[str, Any]:
    """Flatten a TOML file to ``{"section.key": value}``; unknown keys are errors."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a [{section}] table, got a value")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in BY_KEY:
                raise ConfigError(f"{key}: unknown key (see 'streamal run --help')")
            flat[key] = value
    return flat


def load_settings(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults, then the TOML file, then overrides; every value checked."""
    values = {o.key: o.default for o in OPTIONS}
    if path:
        values.update(read_toml(path))
    for key, value in (overrides or {}).items():
        if key not in BY_KEY:
            raise ConfigError(f"{key}: unknown key")
        if value is not None:
            values[key] = value
    return {key: _coerce(BY_KEY[key], value) for key, value in values.items()}


#: the settings a checkpoint holds the result of: a resume with other values
#: would carry on with the saved ones without a word, so it is refused
_SAVED_WITH_STATE = ("learner.", "annotator.", "source.spec", "source.period",
                     "source.require_all_features", "run.seed")  # fmt: skip


def learner_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"--flag": value}`` of the settings that a checkpoint's state depends on.

    >>> learner_settings(load_settings())["--budget"]
    0.1
    """
    return {o.flag: settings[o.key] for o in OPTIONS
            if o.key.startswith(_SAVED_WITH_STATE) and o.key in settings}  # fmt: skip


def settings_to_resume_with(
    saved: Mapping[str, Any], current: Mapping[str, Any], where: str, keep_saved: bool = False
) -> dict[str, Any]:
    """The settings a resume goes on with: ``current`` when they agree with ``saved``;
    ``saved`` when told to keep them (a warning names what is ignored); else
    ``SettingsChanged``.

    >>> settings_to_resume_with({"--budget": 0.1}, {"--budget": 0.1}, "state")
    {'--budget': 0.1}
    >>> settings_to_resume_with({"--budget": 0.1}, {"--budget": 0.2}, "state")
    Traceback (most recent call last):
    ...
    streamal.config.SettingsChanged: state was saved with other settings: --budget 0.2 ...
    """
    changed = [(flag, saved[flag], value) for flag, value in current.items()
               if flag in saved and saved[flag] != value]  # fmt: skip
    if not changed:
        return dict(current)
    if not keep_saved:
        raise SettingsChanged(where, changed)
    logging.getLogger("streamal").warning(
        "resuming with the settings %s was saved with; ignored: %s", where,
        ", ".join(f"{flag} {new!r} (kept {old!r})" for flag, old, new in changed),
    )  # fmt: skip
    return {**current, **saved}
