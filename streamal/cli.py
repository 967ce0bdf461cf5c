"""The front door: ``streamal run``, ``streamal replay``, ``streamal strategies``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from streamal import __version__
from streamal.config import (
    BY_KEY,
    OPTIONS,
    ConfigError,
    Option,
    check,
    learner_settings,
    load_settings,
    rates,
)
from streamal.model import MODELS
from streamal.strategies import STRATEGIES

log = logging.getLogger("streamal")

_RUN_EPILOG = """\
With no options, runs the embedded default: a synthetic stream whose concept
switches abruptly every 10,000 records, a simulated annotator that answers
after 200 records and is wrong 5 % of the time, label requests written to
streamal-out/requests.jsonl, a summary line on stderr every 100,000 records,
and Prometheus metrics on http://127.0.0.1:9108/metrics. Stop with Ctrl-C
or SIGTERM (state is checkpointed first when --checkpoint is set).

Every option can also be set in the TOML file given by --config, under the
[section] key shown in brackets; a flag wins over the file.
"""

_REPLAY_EPILOG = """\
Each file is a CSV with a header and a 'label' column (.gz read as gzip).
Every record is predicted first, then learned from if its label was
requested (prequential, test-then-train), so accuracy covers the whole
stream. Strategies are set beside random sampling at the same budget and
beside learning on every label. A strategy runs under every seed when
something makes it draw: --exploration-share (on by default), --exploration,
--drift-boost, late labels (--delay, unless --late-exploration 0) or
--annotator-noises; with none of them, a deterministic strategy runs once.

example: streamal replay elec2.csv.gz --budget 0.1 --strategy variable_uncertainty \\
             --strategy split --seeds 5 --json results.json
"""


_BENCH_EPILOG = """\
Both loops build the same model afresh for each run and learn the same
labels, right after each chunk of 500 records; the learner is seeded, so it
asks about the same records every run. Times are CPU seconds of this
process, the two loops alternating chunk by chunk so that they meet the same
machine noise: read the ratio, not the records/s.

examples: streamal bench events.csv --model mymodels:make_model
          streamal bench river:synth.SEA --max-records 50000 --budget 0.05
"""


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    for opt in OPTIONS:
        _add_option(parser, opt)
    parser.add_argument(
        "--resume-as-saved", action="store_true",
        help="resume from the checkpoint with the settings it was saved with, even where "
        "the flags or the config file now say otherwise (without it such a resume is refused)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log on stderr (default: INFO)",
    )  # fmt: skip


def _add_option(parser: argparse.ArgumentParser, opt: Option, help: str | None = None) -> None:
    """The flag of a setting; unset it stays ``None``, so the config file or default holds."""
    help_text = f"{help or opt.help} [{opt.key}] (default: {opt.default!r})"
    if opt.type is bool:
        parser.add_argument(
            opt.flag, dest=opt.key, action=argparse.BooleanOptionalAction, default=None,
            help=help_text,
        )  # fmt: skip
    else:
        parser.add_argument(
            opt.flag, dest=opt.key, type=opt.type, default=None, choices=opt.choices,
            metavar=None if opt.choices else opt.type.__name__.upper(), help=help_text,
        )  # fmt: skip


# the settings of `run` that `replay` takes too: the same flags, help and checks
REPLAY_SETTINGS = (
    "learner.model", "learner.clip", "learner.unsupervised", "learner.utility", "learner.drift",
    "learner.exploration", "learner.exploration_share", "learner.late_exploration",
    "learner.late_delay", "learner.drift_boost", "learner.boost_window", "learner.background",
    "learner.confidence_drift", "learner.second_opinion_below", "annotator.noises",
)  # fmt: skip
_ALIKE = "; random sampling and learning on every label do the same"
REPLAY_HELP = {
    "learner.model": BY_KEY["learner.model"].help + _ALIKE,
    "learner.clip": BY_KEY["learner.clip"].help + _ALIKE,
    "learner.unsupervised": BY_KEY["learner.unsupervised"].help + _ALIKE,
    "annotator.noises": "labels from simulated annotators a1, a2, ... with these noise rates, "
    "e.g. 0.05,0.4; each request to one at random ('': the true labels)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamal",
        description="Online active learning: pick the records of a live stream worth a "
        "human label, within a budget, and keep the model learning.",
    )
    parser.add_argument("--version", action="version", version=f"streamal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the daemon (the embedded default needs no service)",
        description="Run the active-learning loop on a stream.", epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _add_run_options(run)

    replay = sub.add_parser(
        "replay", help="compare strategies on labelled stream files",
        description="Evaluate query strategies on labelled CSV streams.", epilog=_REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    replay.add_argument("paths", nargs="+", metavar="PATH", help="CSV file(s), .csv or .csv.gz")
    replay.add_argument(
        "--strategy", action="append", choices=sorted(STRATEGIES), metavar="NAME",
        help="strategy to evaluate; repeat for several "
        f"(default: {BY_KEY['learner.strategy'].default}). "
        f"One of: {', '.join(sorted(STRATEGIES))}",
    )  # fmt: skip
    replay.add_argument(
        "--budget", type=float, action="append", metavar="B",
        help="label budget; repeat for several (default: 0.1)",
    )  # fmt: skip
    for key in REPLAY_SETTINGS:
        _add_option(replay, BY_KEY[key], REPLAY_HELP.get(key))
    replay.add_argument(
        "--seeds", type=int, default=1, help="seeds per randomised strategy (default: 1)"
    )
    replay.add_argument(
        "--delay", type=int, default=0, help="records before a label arrives (default: 0)"
    )
    replay.add_argument(
        "--max-records", type=int, default=0, help="read at most N records per file (0: all)"
    )
    replay.add_argument(
        "--partitions", type=int, default=1, metavar="P",
        help="deal the records round-robin to P partitions, each with its own strategy, "
        "budget cap and pending requests, as the Kafka daemon keeps one a partition "
        "(default: 1)",
    )  # fmt: skip
    replay.add_argument(
        "--partition-models", choices=["shared", "own"], default="shared",
        help="with --partitions: one model learning every partition's labels (shared, the "
        "daemon's), or a model a partition learning its own labels only (own) "
        "(default: shared)",
    )  # fmt: skip
    replay.add_argument(
        "--partition-by", default="round-robin", metavar="HOW",
        help="with --partitions: round-robin, hash (a hash of each record's position, as "
        "Kafka spreads unique keys) or a column's name (a hash of its value, as a key) "
        "(default: round-robin)",
    )  # fmt: skip
    replay.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    _add_progress(replay)

    replay.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log on stderr; INFO shows each drift (default: WARNING)",
    )  # fmt: skip

    report = sub.add_parser(
        "report", help="an HTML page with plots from replay --json results",
        description="Draw the results of `streamal replay --json` as one self-contained HTML "
        "page: learning curves, label efficiency, budget spent, threshold and drifts.",
    )  # fmt: skip
    report.add_argument("results", metavar="RESULTS.json", help="written by replay --json")
    report.add_argument("--out", default="report.html", help="page to write (default: %(default)s)")
    report.add_argument("--title", default="streamal replay report", help="page title")
    strategies = sub.add_parser("strategies", help="list the query strategies with a line on each")
    bench = sub.add_parser(
        "bench", help="the learner's records/s on your model and data, against the bare river loop",
        description="Time the active learner and the bare river loop (predict_proba_one on every "
        "record, learn_one on the records the learner asked about) side by side on your model and "
        "data, in alternating chunks of one run, and print the ratio: what streamal adds (or "
        "saves) before you go to production.", epilog=_BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    bench.add_argument(
        "data", metavar="DATA",
        help="a labelled CSV (.csv or .csv.gz, a 'label' column, as replay reads), or a river "
        "dataset: river:NAME (river.datasets, e.g. river:Phishing) or river:synth.NAME (a "
        "generator, e.g. river:synth.SEA)",
    )  # fmt: skip
    bench.add_argument(
        "--model", default=BY_KEY["learner.model"].default, metavar="NAME|MODULE:FUNCTION",
        help=f"one of {', '.join(MODELS)}, or MODULE:FUNCTION, a function of yours that returns "
        "a new river classifier (default: %(default)s)",
    )  # fmt: skip
    bench.add_argument("--strategy", choices=sorted(STRATEGIES), metavar="NAME",
                       help="query strategy (default: the daemon's)")  # fmt: skip
    bench.add_argument("--budget", type=float, default=0.1, help="label budget (default: 0.1)")
    bench.add_argument("--max-records", type=int, default=100_000,
                       help="records read from DATA (default: %(default)s)")  # fmt: skip
    bench.add_argument("--repeats", type=int, default=3,
                       help="timed runs; the median is printed (default: %(default)s)")  # fmt: skip
    bench.add_argument(
        "--mode", choices=["batch", "each", "both"], default="both",
        help="decide_many on chunks of 500 records, decide record by record, or both "
        "(default: %(default)s)",
    )  # fmt: skip
    _add_progress(bench)
    bench.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log on stderr (default: WARNING)",
    )  # fmt: skip
    for command in (run, replay, report, strategies, bench):
        command.add_argument(
            "--debug", action="store_true",
            help="on an internal error, show the whole traceback instead of one line",
        )  # fmt: skip
    return parser


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )  # fmt: skip


def _settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {opt.key: getattr(args, opt.key) for opt in OPTIONS}
    return load_settings(args.config, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from streamal.allocator import fix_mmap_threshold

    fix_mmap_threshold()  # a long run keeps no high-water mark of its large buffers

    from streamal.checkpoint import resolve_key
    from streamal.drift import make_drift_monitor
    from streamal.endpoint import serve
    from streamal.engine import Engine
    from streamal.learner import ActiveLearner
    from streamal.metrics import Metrics
    from streamal.model import make_model
    from streamal.schema import RecordValidator
    from streamal.simulate import SimulatedAnnotator
    from streamal.sinks import JsonlSink
    from streamal.sources import open_source
    from streamal.strategies import get as get_strategy

    s = _settings_from_args(args)
    seed = s["run.seed"]
    spec = s["source.spec"]

    classes = _classes(s) or None

    def make_learner(partition: int = 0) -> ActiveLearner:
        return ActiveLearner(
            model=make_model(s["learner.model"], clip=s["learner.clip"]),
            strategy=get_strategy(
                s["learner.strategy"], budget=s["learner.budget"], seed=seed + partition
            ),
            utility=s["learner.utility"],
            unsupervised=s["learner.unsupervised"],
            budget_cap=s["learner.budget_cap"],
            drift=make_drift_monitor(s["learner.drift"], seed),
            pending_ttl=s["learner.pending_ttl"],
            max_pending=s["learner.max_pending"],
            exploration=s["learner.exploration"],
            exploration_share=s["learner.exploration_share"],
            late_exploration=s["learner.late_exploration"],
            late_delay=s["learner.late_delay"],
            confidence_drift=s["learner.confidence_drift"],
            second_opinion_below=s["learner.second_opinion_below"],
            background=s["learner.background"],
            drift_boost=s["learner.drift_boost"],
            boost_window=s["learner.boost_window"],
            pacing=pacing_from_settings(s),
            classes=classes,
            validator=RecordValidator(require_all=s["source.require_all_features"]),
            seed=seed + partition,
        )

    learner = make_learner()
    registry = CollectorRegistry()
    metrics = Metrics(registry, learner)
    loop: list[Any] = []  # the engine or app, once made: /readyz asks it
    if s["metrics.port"]:
        try:
            serve(registry, s["metrics.host"], s["metrics.port"],
                  ready=lambda: bool(loop) and loop[0].ready)  # fmt: skip
        except OSError as e:
            raise ConfigError(
                f"metrics.port: cannot listen on {s['metrics.host']}:{s['metrics.port']}: "
                f"{e.strerror} (use --metrics-port 0 to disable)"
            ) from None
        log.info("metrics on http://%s:%d/metrics (and /healthz, /readyz)",
                 s["metrics.host"], s["metrics.port"])  # fmt: skip
    key = None
    if s["checkpoint.key_file"]:
        key_file = Path(s["checkpoint.key_file"])
        if not key_file.exists():
            raise ConfigError(f"checkpoint.key_file: no such file: {key_file}")
        key = key_file.read_bytes().strip()
    app_factory = _find_app(spec)
    if s["labelstudio.url"] and not s["http.enabled"]:
        raise ConfigError("labelstudio.url: Label Studio's annotations come back through the "
                          "labelling API: add --http")  # fmt: skip
    if s["labelstudio.url"] and not s["learner.classes"]:
        raise ConfigError("labelstudio.url: Label Studio needs the classes to offer: "
                          "add --classes A,B,...")  # fmt: skip
    if app_factory is not None and s["source.labels"]:
        raise ConfigError(
            f"source.labels: the {spec} daemon takes its labels from its labels topic"
        )
    if app_factory is not None:
        key_source = describe_key(s)
        key = key or resolve_key(s["checkpoint.path"] or "streamal-out/state")
        s = {**s, "run.key_source": key_source, "run.resume_as_saved": args.resume_as_saved}
        app = app_factory(s, make_learner, key, metrics=metrics)
        loop.append(app)
        people = None
        if s["http.enabled"]:
            from streamal.connectors.kafka.intake import KafkaIntake

            people = _serve_people(s, KafkaIntake(app), lambda: app.view.labels_applied)
        _on_stop_signals(app.stop)
        try:
            stats = app.run()
        finally:
            if people is not None:
                people.close()
        log.info(
            "stopped after %d records and %d labels in %d transactions (%d restarts)",
            stats.records, stats.labels_received, stats.cycles, stats.restarts,
        )  # fmt: skip
        return 0
    params = {"period": s["source.period"]} if spec == "synth:sea_drift" else {}
    source = open_source(spec, seed=seed, **params)
    rotation = {"max_bytes": int(s["output.rotate_mb"] * 2**20), "keep": s["output.keep_files"]}
    requests = JsonlSink(s["output.requests"], **rotation)
    dead = JsonlSink(s["output.dead_letters"], **rotation)
    labels = None
    if s["source.labels"]:
        from streamal.label_file import LabelFile

        labels = LabelFile(s["source.labels"])
    annotator = None
    if s["annotator.enabled"]:
        annotator = SimulatedAnnotator(
            s["annotator.delay"], s["annotator.noise"], seed=seed,
            noises=rates(s["annotator.noises"]) or None,
        )  # fmt: skip
    engine = Engine(
        learner,
        source,
        requests=[requests],
        dead_letters=dead,
        annotator=annotator,
        labels=labels,
        metrics=metrics,
        checkpoint=s["checkpoint.path"] or None,
        checkpoint_key=key,
        checkpoint_every=s["checkpoint.every"],
        checkpoint_seconds=s["checkpoint.seconds"],
        summary_every=s["output.summary_every"],
        settings=learner_settings(s),
        keep_saved_settings=args.resume_as_saved,
    )

    loop.append(engine)
    people = None
    if s["http.enabled"]:
        from streamal.intake import EngineIntake

        intake = EngineIntake(engine, s["http.journal"])
        people = _serve_people(s, intake, lambda: engine.learner.labels_applied)
    _on_stop_signals(engine.interrupt)
    log.info(
        "streamal %s: source %s, strategy %s, budget %.1f%%, requests -> %s",
        __version__, spec, s["learner.strategy"], 100 * s["learner.budget"], s["output.requests"],
    )  # fmt: skip
    try:
        stats = engine.run(max_records=s["run.max_records"])
    finally:
        if people is not None:
            people.close()
        requests.close()
        dead.close()
    learner = engine.learner
    log.info(
        "stopped after %d records: %d label requests, %d labels applied, %d dead letters",
        stats.records, learner.n_queries, learner.labels_applied,
        sum(stats.dead_letters.values()),
    )  # fmt: skip
    return 0


class _People:
    """What serves the people answering requests: the labelling API, and the Label
    Studio bridge when there is one; closed in the reverse order."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], None]] = []

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def _serve_people(s: Mapping[str, Any], intake: Any, model_version: Callable[[], Any]) -> _People:
    """The labelling API over ``intake``, with the Label Studio bridge if asked for."""
    try:
        from streamal.http_api import make_app, resolve_token, serve
    except ImportError as e:
        raise ConfigError(
            f"http.enabled: the labelling API needs {e.name}, which is not installed: "
            "pip install 'streamal[http]'"
        ) from None
    host, _, port = s["http.listen"].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"http.listen: expected HOST:PORT, got {s['http.listen']!r}")
    people = _People()
    if hasattr(intake, "close"):
        people.closers.append(intake.close)
    token, where = resolve_token(s["http.token_file"])
    hooks = []
    bridge = None
    if s["labelstudio.url"]:
        bridge = _labelstudio(s, intake, model_version)
        hooks.append(bridge)
    try:
        server = serve(make_app(intake, token, rate=s["http.rate"], hooks=hooks), host, int(port))
    except OSError as e:
        raise ConfigError(f"http.listen: cannot listen on {s['http.listen']}: {e}") from None
    people.closers.append(lambda: setattr(server, "should_exit", True))
    log.info("labelling API on http://%s/requests (token in %s)", s["http.listen"], where)
    if bridge is not None:
        bridge.start()
        people.closers.append(bridge.close)
    # the loop holds the interpreter for 5 ms at a time by default; a label's reply passes
    # through the server's thread, the journal's and the loop's, each waiting its turn
    sys.setswitchinterval(0.0005)
    return people


def _classes(s: Mapping[str, Any]) -> list[str]:
    return [c.strip() for c in s["learner.classes"].split(",") if c.strip()]


def _labelstudio(s: Mapping[str, Any], intake: Any, model_version: Callable[[], Any]) -> Any:
    """The Label Studio bridge, its project set up (or one line saying why not)."""
    import os

    from streamal.connectors.labelstudio.bridge import (
        WEBHOOK_PATH,
        LabelStudioBridge,
        LabelStudioClient,
        LabelStudioError,
    )
    from streamal.http_api import resolve_token

    token = os.environ.get("STREAMAL_LABEL_STUDIO_TOKEN", "").strip()
    if not token:
        if not s["labelstudio.token_file"]:
            raise ConfigError("labelstudio.token_file: Label Studio needs a personal access "
                              "token: --labelstudio-token-file FILE or "
                              "$STREAMAL_LABEL_STUDIO_TOKEN")  # fmt: skip
        path = Path(s["labelstudio.token_file"])
        if not path.exists():
            raise ConfigError(f"labelstudio.token_file: no such file: {path}")
        token = path.read_text().strip()
    secret, _ = resolve_token(s["labelstudio.secret_file"], env="STREAMAL_LABEL_STUDIO_SECRET")
    webhook = s["labelstudio.webhook_url"] or f"http://{s['http.listen']}{WEBHOOK_PATH}"
    classes = _classes(s)
    bridge = LabelStudioBridge(
        LabelStudioClient(s["labelstudio.url"], token), intake, classes, secret, webhook,
        project=s["labelstudio.project"], model_version=model_version,
    )  # fmt: skip
    try:
        bridge.connect()
    except LabelStudioError as e:
        raise ConfigError(f"labelstudio.url: {e}") from None
    return bridge


def describe_key(s: Mapping[str, Any]) -> str:
    """Where the key that signs the state comes from, for a message that names it."""
    if s["checkpoint.key_file"]:
        return f"the key file {Path(s['checkpoint.key_file']).resolve()}"
    import os

    if os.environ.get("STREAMAL_CHECKPOINT_KEY"):
        return "$STREAMAL_CHECKPOINT_KEY"
    path = Path(f"{s['checkpoint.path'] or 'streamal-out/state'}.key").resolve()
    return f"the key file {path}"


def _on_stop_signals(stop: Any) -> None:
    def _stop(signum: int, frame: Any) -> None:
        log.info("%s received: finishing the work in flight and stopping", signal.strsignal(signum))
        stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def _find_app(spec: str) -> Any:
    """The app a connector registered for this source name (``streamal.apps``), if any."""
    from importlib.metadata import entry_points

    name = spec.split(":", 1)[0]
    for ep in entry_points(group="streamal.apps"):
        if ep.name == name:
            try:
                return ep.load()
            except ImportError as e:  # an extra not installed
                raise ConfigError(
                    f"source.spec: {name!r} needs {e.name or 'a package'}, which is not "
                    f"installed: pip install 'streamal[{name}]'"
                ) from None
    return None


def pacing_from_settings(s: Mapping[str, Any]) -> list[Any]:
    """The pacing guards the settings ask for (none by default)."""
    from streamal.pacing import CostBudget, LabelRate

    guards: list[Any] = []
    if s["learner.labels_per_hour"] or s["learner.labels_per_day"]:
        if not s["learner.labels_per_hour"]:
            raise ConfigError("learner.labels_per_day: needs learner.labels_per_hour as well")
        guards.append(
            LabelRate(
                s["learner.labels_per_hour"], s["learner.burst"] or None,
                s["learner.labels_per_day"] or None,
            )
        )  # fmt: skip
    if s["learner.cost_per_record"]:
        if not s["learner.cost_feature"]:
            raise ConfigError("learner.cost_per_record: needs learner.cost_feature as well")
        guards.append(CostBudget(s["learner.cost_per_record"], s["learner.cost_feature"]))
    return guards


def cmd_replay(args: argparse.Namespace) -> int:
    from streamal.evaluation import (
        Progress,
        format_efficiency,
        format_table,
        replay,
        runs_needed,
    )

    budgets = args.budget or [0.1]
    for budget in budgets:
        check("learner.budget", budget, name="--budget")
    # checked as `run` checks them, the message naming the flag
    settings = {key: check(key, getattr(args, key), name=BY_KEY[key].flag)
                for key in REPLAY_SETTINGS}  # fmt: skip
    options = {key.split(".")[1]: value for key, value in settings.items()}
    noises = rates(options.pop("noises"))
    if args.seeds < 1:
        raise ConfigError(f"--seeds: must be at least 1, got {args.seeds}")
    if args.delay < 0:
        raise ConfigError(f"--delay: must be >= 0, got {args.delay}")
    if args.partitions < 1:
        raise ConfigError(f"--partitions: must be at least 1, got {args.partitions}")
    if args.partitions > 1 and args.partition_models == "shared" and options.get("background"):
        raise ConfigError("--background: a background model swaps one partition's model, "
                          "not with --partition-models shared")  # fmt: skip
    strategies = args.strategy or [BY_KEY["learner.strategy"].default]
    results: list[dict[str, Any]] = []
    try:
        for path in args.paths:
            xs, ys, skipped = _read_labelled(path, args.max_records or None)
            if skipped:
                log.warning("%s: skipped %d malformed rows", path, skipped)
            total = len(ys) * runs_needed(
                strategies, args.seeds, options["exploration"], options["drift_boost"],
                any(noises), args.delay, options["late_exploration"], options["exploration_share"],
            )  # fmt: skip
            every_label: dict = {}  # learning on every label does not depend on the budget
            for budget in budgets:
                progress = None
                if args.progress is not False:
                    progress = Progress(total, force=bool(args.progress))
                result = replay(
                    xs, ys, strategies, budget=budget, seeds=args.seeds, delay=args.delay,
                    noises=noises, partitions=args.partitions,
                    shared_model=args.partition_models == "shared",
                    partition_by=args.partition_by, progress=progress,
                    every_label=every_label, **options,
                )  # fmt: skip
                result["dataset"] = Path(path).name
                result["skipped_rows"] = skipped
                results.append(result)
                # each table as it is done, also into a pipe: the work may be stopped
                print(format_table(result, title=f"== {Path(path).name}") + "\n", flush=True)
    except KeyboardInterrupt:
        # what is done is kept: the tables printed, and the JSON of those results
        if args.json and results:
            _write_results(args.json, results, partial=True)
        kept = f"; {len(results)} finished result(s) kept in {args.json}" if (
            args.json and results) else ""  # fmt: skip
        print(f"\nstreamal: interrupted{kept}", file=sys.stderr)
        return 130
    if len(results) > 1:
        print(format_efficiency(results))
        print()
    if args.json:
        _write_results(args.json, results)
        print(f"results written to {args.json}")
    return 0


def _write_results(path: str, results: list[dict[str, Any]], partial: bool = False) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"results": results}
    if partial:
        body["partial"] = True
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2, default=str))
    tmp.replace(out)


def cmd_report(args: argparse.Namespace) -> int:
    from streamal.report import build_report

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "streamal report needs matplotlib, which is not installed: "
            "pip install 'streamal[report]'"
        ) from None

    path = Path(args.results)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        results = json.loads(path.read_text())["results"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ConfigError(f"{path}: not a results file of streamal replay --json") from None
    try:
        page = build_report(results, title=args.title)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ConfigError(
            f"{path}: not a complete results file of streamal replay --json ({what})"
        ) from None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(page)
    print(f"report written to {args.out} ({len(results)} result(s))")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from streamal.evaluation import Progress
    from streamal.speed import compare_with_river

    check("learner.budget", args.budget, name="--budget")
    if args.repeats < 1:
        raise ConfigError(f"--repeats: must be at least 1, got {args.repeats}")
    if args.max_records < 1:
        raise ConfigError(f"--max-records: must be at least 1, got {args.max_records}")
    xs, ys, name = _bench_data(args.data, args.max_records)
    classes = list(dict.fromkeys(ys))
    make_model, model_name = _bench_model(args.model, len(classes))
    modes = {"batch": [True], "each": [False], "both": [True, False]}[args.mode]
    progress = None
    if args.progress is not False:
        progress = Progress(len(xs) * (args.repeats + 1) * len(modes), force=bool(args.progress))
    print(f"{name}: {len(xs):,} records, {len(classes)} classes; model {model_name}; "
          f"budget {args.budget:g}", flush=True)  # fmt: skip
    for batch in modes:
        result = compare_with_river(
            xs, ys, make_model, budget=args.budget, strategy=args.strategy, batch=batch,
            repeats=args.repeats, on_progress=progress.advance if progress else None,
        )  # fmt: skip
        ratios = result.ratios()
        how = "decide_many" if batch else "decide"
        print(f"{how + ':':<13} learner {result.rate('learner'):>9,.0f} records/s, bare river "
              f"loop {result.rate('bare'):>9,.0f} records/s: {result.ratio():.2f} of its speed "
              f"(runs {min(ratios):.2f}-{max(ratios):.2f}; {result.labels:,} labels learned by "
              "both)", flush=True)  # fmt: skip
    return 0


def _bench_data(spec: str, limit: int) -> tuple[list, list, str]:
    """Features and labels from a CSV or a river dataset, and a name for them."""
    import itertools

    if spec.startswith("river:"):
        from river import datasets
        from river.datasets import synth

        name = spec[len("river:") :]
        where, attr = (synth, name[6:]) if name.startswith("synth.") else (datasets, name)
        cls = getattr(where, attr, None)
        if not isinstance(cls, type):
            known = sorted(n for n in getattr(where, "__all__", []) if n[0].isupper())
            raise ConfigError(f"{spec}: no such river dataset; river offers {', '.join(known)}")
        try:
            rows = list(itertools.islice(cls(), limit))
        except OSError as e:  # a dataset river downloads, without the network
            raise ConfigError(f"{spec}: could not read it ({e})") from None
        return [dict(x) for x, _ in rows], [y for _, y in rows], spec
    xs, ys, _ = _read_labelled(spec, limit)
    return xs, ys, Path(spec).name


def _read_labelled(path: str, limit: int | None) -> tuple[list, list, int]:
    """``read_labelled``, with a file that holds no labelled record as a user's mistake."""
    from streamal.sources import read_labelled

    xs, ys, skipped = read_labelled(path, limit=limit)
    if not ys:
        raise ConfigError(f"{path}: no labelled records (is there a 'label' column?)")
    return xs, ys, skipped


def _bench_model(spec: str, n_classes: int) -> tuple[Callable[[], Any], str]:
    """A function that builds the model afresh, and its name."""
    import importlib

    if spec in MODELS:
        from streamal.model import make_model

        return (lambda: make_model(spec, n_classes)), spec
    module, _, function = spec.partition(":")
    if not function:
        raise ConfigError(f"--model: {spec!r} is neither one of {', '.join(MODELS)} "
                          "nor MODULE:FUNCTION")  # fmt: skip
    sys.path.insert(0, os.getcwd())  # a module of the user's, beside them
    try:
        make = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"--model: cannot load {spec} ({e})") from None
    finally:
        sys.path.pop(0)
    model = make()
    if not all(callable(getattr(model, m, None)) for m in ("predict_proba_one", "learn_one")):
        raise ConfigError(f"--model: {spec}() returned {type(model).__name__}, not a river "
                          "classifier (predict_proba_one and learn_one)")  # fmt: skip
    return make, spec


def cmd_strategies(args: argparse.Namespace) -> int:
    for name, cls in sorted(STRATEGIES.items()):
        first = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<38} {first}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user's mistake is one line and status 2, our own failure
    one line and status 1 (the traceback with ``--debug``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # the Kafka client logs every connection at INFO, matplotlib that it built its font
    # cache on a machine's first report: their warnings are what matter here
    for chatty in ("kafka", "matplotlib"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    commands = {
        "run": cmd_run, "replay": cmd_replay, "report": cmd_report, "strategies": cmd_strategies,
        "bench": cmd_bench,
    }  # fmt: skip
    from streamal.checkpoint import CheckpointError

    try:
        return commands[args.command](args)
    except BrokenPipeError:
        # the reader of our output went away (`| head`): nothing more to say to it
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("streamal: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, ValueError, CheckpointError) as e:
        print(f"streamal: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"streamal: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except Exception as e:
        if args.debug:
            raise
        print(
            f"streamal: internal error: {type(e).__name__}: {_one_line(e)} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 500 else text[:497] + "..."


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
