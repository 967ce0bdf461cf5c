"""Ordinary mistakes in input and restarts: refused with a reason, never learned, no traceback."""

import base64
import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from streamal import ActiveLearner, InvalidRecord, Label, RecordValidator
from streamal.engine import Engine
from streamal.simulate import SimulatedAnnotator
from streamal.sinks import CallableSink, JsonlSink
from streamal.sources import CsvSource, IterableSource, JsonlSource, SourceError
from tests.conftest import ROOT, streamal

# -- envelopes -------------------------------------------------------------------------


def test_a_flat_record_keeps_its_envelope_out_of_the_features(tmp_path):
    src = tmp_path / "flat.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"e{i}",
                    "x": float(i % 5),
                    "ts": 1000.0 + i,
                    "key": "k",
                    "label": "UP" if i % 5 > 2 else "DOWN",
                }
            )
            + "\n"
            for i in range(400)
        )  # fmt: skip
    )
    first = next(iter(JsonlSource(src)))
    assert first.features == {"x": 0.0}
    assert (first.id, first.ts, first.key, first.label) == ("e0", 1000.0, "k", "DOWN")
    learner = ActiveLearner(validator=RecordValidator())
    requests = []
    engine = Engine(learner, JsonlSource(src), requests=[CallableSink(requests.append)],
                    annotator=SimulatedAnnotator(delay=3, noise=0.0))  # fmt: skip
    engine.run()
    # the simulated annotator got the labels back: before, "label" was a feature and None came
    assert learner.labels_applied > 10
    assert set(learner.label_counts) == {"UP", "DOWN"}
    assert all(set(r["features"]) == {"x"} for r in requests)


def test_a_csv_header_names_the_envelope_too(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text("id,ts,x,key,label\na7,5.5,1.0,k1,yes\n")
    (record,) = list(CsvSource(src))
    assert (record.id, record.ts, record.key, record.label, record.features) == (
        "a7", 5.5, "k1", "yes", {"x": 1.0},
    )  # fmt: skip
    assert record.where == f"{src}:2"


def test_a_stray_first_record_does_not_fix_the_feature_set(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [{"id": "oops", "ts": 5}] + [{"id": f"e{i}", "x": float(i)} for i in range(50)]
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dead = []
    learner = ActiveLearner(validator=RecordValidator())
    Engine(learner, JsonlSource(src), dead_letters=CallableSink(dead.append)).run()
    assert [d["reason"] for d in dead] == ["record has no features (only its envelope: id, ts)"]
    assert learner.n_records == 50 and learner.validator.names == {"x"}


def test_envelope_names_inside_features_are_refused():
    learner = ActiveLearner()
    with pytest.raises(InvalidRecord, match="'label' is part of the record's envelope"):
        learner.decide({"x": 1.0, "label": "UP"})
    assert learner.n_records == 0


# -- the library's one validation path -------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e300, None, [1.0], {"a": 1}])
def test_the_library_refuses_a_bad_value_and_stays_finite(bad):
    learner = ActiveLearner(budget=1.0)
    for i in range(30):
        d = learner.decide({"x": float(i % 3), "y": 1.0})
        learner.learn(d.request_id, i % 3 == 0)
    before = learner.n_records
    with pytest.raises(InvalidRecord):
        learner.decide({"x": bad, "y": 1.0})
    with pytest.raises(InvalidRecord):
        learner.learn({"x": bad, "y": 1.0}, True)
    batch = learner.decide_many([{"x": 1.0, "y": 1.0}, {"x": bad, "y": 1.0}])
    assert [i for i, _ in batch.failed] == [1] and isinstance(batch.failed[0][1], InvalidRecord)
    assert learner.n_records == before + 1  # a refused record is not counted, as with decide
    probabilities = learner.decide({"x": 2.0, "y": 1.0}).probabilities
    assert probabilities and all(math.isfinite(p) for p in probabilities.values())


def test_a_string_where_the_first_record_had_a_number_is_refused():
    learner = ActiveLearner()
    learner.decide({"x": 1.0, "proto": "tcp"})
    with pytest.raises(InvalidRecord, match="feature 'x' must be a number, got 'high'"):
        learner.decide({"x": "high", "proto": "udp"})
    assert issubclass(InvalidRecord, ValueError)


# -- labels and classes ----------------------------------------------------------------


def test_a_label_outside_the_known_classes_is_refused_not_a_new_class():
    learner = ActiveLearner(classes=["spam", "ham"], budget=1.0)
    asked = [learner.decide({"x": float(i)}) for i in range(10)]
    assert learner.learn(asked[0].request_id, "spam") == "applied"
    assert learner.learn(asked[1].request_id, "spma") == "invalid_label"
    assert learner.model.upgrades == 0 and learner.model.classes == ["spam", "ham"]
    assert "not one of the classes ['spam', 'ham']" in learner.why_refused(
        "q-r2", "spma", "invalid_label"
    )
    # the request stays open for a corrected label
    assert learner.learn(asked[1].request_id, "ham") == "applied"
    assert learner.learn(asked[2].request_id, float("nan")) == "invalid_label"
    assert learner.learn(asked[3].request_id, None) == "invalid_label"
    learner.add_class("phishing")
    assert learner.learn(asked[4].request_id, "phishing") == "applied"
    assert learner.labels_rejected["invalid_label"] == 3


def test_a_label_from_a_form_reaches_the_class_of_the_same_name():
    learner = ActiveLearner(classes=[0, 1], budget=1.0)
    d = learner.decide({"x": 1.0})
    assert learner.learn(d.request_id, "1") == "applied"
    assert set(learner.label_counts) == {1}


def test_a_null_label_is_dead_lettered_as_missing():
    class Labels:
        def poll(self, now):
            return [Label("q-3", None)] if now == 20 else []

    dead = []
    source = IterableSource([{"x": float(i)} for i in range(30)])
    engine = Engine(ActiveLearner(budget=1.0), source, labels=Labels(),
                    dead_letters=CallableSink(dead.append))  # fmt: skip
    engine.run()
    assert dead[0]["reason"] == "label is missing (null) (request 'q-3')"


# -- files: encodings, gzip, long lines, where -----------------------------------------


def test_invalid_utf8_is_a_dead_letter_with_its_bytes(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"x": 1.0}\n{"x": "caf\xe9"}\n{"x": 2.0}\n')
    items = list(JsonlSource(src))
    bad = items[1]
    assert bad.reason == "line is not valid UTF-8" and bad.where == f"{src}:2"
    letter = bad.to_dead_letter()
    assert base64.b64decode(letter["raw_base64"]) == b'{"x": "caf\xe9"}'
    assert "raw" not in letter
    assert [r.features for r in (items[0], items[2])] == [{"x": 1.0}, {"x": 2.0}]


def test_dead_letters_are_strict_json_and_say_where(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"x": 1.0, "y": "a"}\n{"x": NaN, "y": "a"}\n{"x": 1.0, "y": "\\ud800"}\n'
        b'{"x": 1.0, "y": "caf\xe9"}\n'
    )
    dead_path = tmp_path / "dead.jsonl"
    dead = JsonlSink(dead_path)
    Engine(ActiveLearner(), JsonlSource(src), dead_letters=dead).run()
    dead.close()
    raw = dead_path.read_bytes()
    raw.decode("utf-8")  # strict: raises on anything but UTF-8
    rows = [json.loads(line, parse_constant=_no_constants) for line in raw.splitlines()]
    assert [r["where"] for r in rows] == [f"{src}:2", f"{src}:3", f"{src}:4"]
    assert rows[0]["reason"] == "feature 'x' is NaN or infinite"
    assert rows[1]["reason"] == "feature 'y' is not valid text"
    assert "raw_base64" in rows[2]["data"]


def _no_constants(name):
    raise ValueError(f"not strict JSON: {name}")


def test_a_truncated_gzip_is_one_line_naming_file_and_line(tmp_path):
    src = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(b"".join(b'{"x": %d.0}\n' % i for i in range(20000)))
    src.write_bytes(data[: len(data) // 2])
    proc = streamal("run", "--source", src, "--no-annotator", "--metrics-port", "0",
                    "--checkpoint", tmp_path / "state.ckpt", cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"streamal: error: {src}:") and "ends in the middle" in line
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "state.ckpt").exists()  # what was decided is saved


def test_a_dot_gz_that_is_not_gzip_is_one_line(tmp_path):
    src = tmp_path / "plain.jsonl.gz"
    src.write_text('{"x": 1.0}\n')
    proc = streamal("run", "--source", src, "--metrics-port", "0", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"streamal: error: {src}: not a gzip file, though its name ends in .gz"
    )


def test_an_overlong_line_is_a_dead_letter_and_the_next_is_read(tmp_path, monkeypatch):
    import streamal.sources as sources

    monkeypatch.setattr(sources, "MAX_LINE", 100)
    src = tmp_path / "long.jsonl"
    src.write_text('{"x": 1.0}\n{"x": "' + "a" * 1000 + '"}\n{"x": 2.0}\n')
    items = list(JsonlSource(src))
    assert items[1].reason == "line longer than 100 characters"
    assert items[2].features == {"x": 2.0} and items[2].where == f"{src}:3"


def test_deep_nesting_is_a_dead_letter(tmp_path):
    src = tmp_path / "deep.jsonl"
    src.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n" + '{"x": 1.0}\n')
    items = list(JsonlSource(src))
    assert items[0].reason == "JSON nested too deeply"
    assert items[1].features == {"x": 1.0}


# -- outputs: new runs, rotation -------------------------------------------------------


def test_a_second_run_never_appends_duplicates(tmp_path):
    args = ("run", "--max-records", "3000", "--metrics-port", "0", "--summary-every", "0")
    streamal(*args, cwd=tmp_path)
    streamal(*args, cwd=tmp_path)
    out = tmp_path / "streamal-out"
    current = [json.loads(x)["request_id"] for x in (out / "requests.jsonl").read_text().split()]
    earlier = [json.loads(x)["request_id"] for x in (out / "requests.jsonl.1").read_text().split()]
    assert len(current) == len(set(current)) > 100
    assert current == earlier  # the same seed: the same requests, each in its own file


def test_outputs_rotate_by_size_and_keep_a_bounded_number(tmp_path):
    streamal("run", "--max-records", "60000", "--metrics-port", "0", "--summary-every", "0",
             "--rotate-mb", "0.2", "--keep-files", "2", cwd=tmp_path)  # fmt: skip
    out = tmp_path / "streamal-out"
    files = sorted(p.name for p in out.iterdir() if p.name.startswith("requests"))
    assert files == ["requests.jsonl", "requests.jsonl.1", "requests.jsonl.2"]
    assert all((out / f).stat().st_size < 0.2 * 2**20 + 2000 for f in files)
    ids = [json.loads(x)["request_id"] for f in files for x in (out / f).read_text().split()]
    assert len(ids) == len(set(ids))


def test_rotation_with_a_checkpoint_resumes_without_duplicates(tmp_path):
    common = (
        "run",
        "--metrics-port",
        "0",
        "--summary-every",
        "0",
        "--rotate-mb",
        "0.1",
        "--checkpoint",
        "state.ckpt",
        "--checkpoint-every",
        "2000",
        "--keep-files",
        "50",
    )
    streamal(*common, "--max-records", "20000", cwd=tmp_path)
    streamal(*common, "--max-records", "40000", cwd=tmp_path)
    once = tmp_path / "once"
    once.mkdir()
    streamal(*common, "--max-records", "40000", cwd=once)

    def ids(root):
        out = root / "streamal-out"
        names = sorted(
            (p.name for p in out.iterdir() if p.name.startswith("requests")),
            key=lambda n: -int(n.rsplit(".", 1)[1]) if n[-1].isdigit() else 0,
        )
        return [json.loads(x)["request_id"] for n in names for x in (out / n).read_text().split()]

    assert ids(tmp_path) == ids(once)


# -- resuming with other settings ------------------------------------------------------


def test_resuming_with_other_settings_is_refused_naming_each(tmp_path):
    common = ("run", "--metrics-port", "0", "--summary-every", "0", "--checkpoint", "s.ckpt")
    streamal(*common, "--max-records", "2000", cwd=tmp_path)
    proc = streamal(*common, "--max-records", "4000", "--budget", "0.2",
                    "--strategy", "split", cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("streamal: error: s.ckpt was saved with other settings")
    assert "--budget 0.2 (saved: 0.1)" in line and "--strategy 'split'" in line
    assert "--resume-as-saved" in line
    kept = streamal(*common, "--max-records", "4000", "--budget", "0.2", "--resume-as-saved",
                    cwd=tmp_path)  # fmt: skip
    assert "ignored: --budget 0.2 (kept 0.1)" in kept.stderr


# -- the command line: no tracebacks ---------------------------------------------------


def test_a_closed_pipe_ends_quietly(tmp_path):
    cmd = (f"{sys.executable} -m streamal run --requests - --metrics-port 0 "
           "--max-records 200000 | head -1")  # fmt: skip
    proc = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert json.loads(proc.stdout)["request_id"]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_report_without_matplotlib_or_with_a_broken_file_is_one_line(tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"results": [{"budget": 0.1}]}))
    proc = streamal("report", results, cwd=tmp_path, check=False,
                    env={"PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"})  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "streamal: error: streamal report needs matplotlib, which is not installed: "
        "pip install 'streamal[report]'"
    )
    # a fresh matplotlib configuration, as on a machine's first report: building the
    # font cache must not add lines of its own
    proc = streamal("report", results, cwd=tmp_path, check=False,
                    env={"MPLCONFIGDIR": str(tmp_path / "mpl")})  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"streamal: error: {results}: not a complete results file")


def test_ctrl_c_in_replay_is_one_line_and_keeps_the_finished_results(tmp_path):
    data = tmp_path / "s.csv"
    rows = ["a,b,label"] + [f"{i % 7},{i % 3},{int(i % 7 > 3)}" for i in range(40_000)]
    data.write_text("\n".join(rows) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", "replay", data, "--budget", "0.1", "--budget", "0.2",
         "--budget", "0.3", "--seeds", "20", "--json", "out.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as at a terminal: a suite started in the background (`cmd &`) ignores SIGINT,
        # and a Python child keeps ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        out = proc.stdout.readline()  # the first table's title: one budget done
        if out.startswith("=="):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("streamal: interrupted; 1 finished result")
    assert "Traceback" not in err
    kept = json.loads((tmp_path / "out.json").read_text())
    assert kept["partial"] is True and [r["budget"] for r in kept["results"]] == [0.1]


def test_an_internal_error_is_one_line_and_status_1_unless_debug(monkeypatch, capsys):
    from streamal import cli

    def broken(args):
        raise RuntimeError("something of ours")

    monkeypatch.setattr(cli, "cmd_strategies", broken)
    assert cli.main(["strategies"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "streamal: internal error: RuntimeError: something of ours "
        "(run again with --debug for the traceback)"
    )
    with pytest.raises(RuntimeError):
        cli.main(["strategies", "--debug"])


# -- signals ---------------------------------------------------------------------------


def test_sigterm_stops_an_idle_stdin_run_within_two_seconds(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", "--source", "-", "--no-annotator",
         "--metrics-port", "0", "--checkpoint", "s.ckpt", "--checkpoint-seconds", "3600"],
        cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for i in range(50):
        proc.stdin.write(json.dumps({"id": f"e{i}", "x": float(i)}) + "\n")
    proc.stdin.flush()
    time.sleep(3)  # the records are read; now stdin is idle, and open
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert time.monotonic() - started < 2.0
    assert proc.returncode == 0, proc.stderr.read()
    from streamal import checkpoint

    state = checkpoint.load(tmp_path / "s.ckpt", checkpoint.resolve_key(tmp_path / "s.ckpt"))
    assert state["stats"].records == 50
    proc.stdin.close()
    proc.stderr.close()


def test_source_errors_are_value_errors():
    assert issubclass(SourceError, ValueError)


def test_replay_learns_on_every_label_once_per_file_whatever_the_budgets(monkeypatch):
    from river.datasets import synth

    from streamal import evaluation

    calls = []
    real = evaluation.run_all_labels
    monkeypatch.setattr(
        evaluation, "run_all_labels", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    data = [({str(k): v for k, v in x.items()}, y) for x, y in synth.SEA(seed=2).take(500)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    cache: dict = {}
    first = evaluation.replay(xs, ys, ["variable_uncertainty"], budget=0.05, every_label=cache)
    second = evaluation.replay(xs, ys, ["variable_uncertainty"], budget=0.1, every_label=cache)
    assert len(calls) == 1
    assert first["summary"][-1] == {
        **second["summary"][-1],
        "efficiency": first["summary"][-1]["efficiency"],
    }


def test_a_record_nested_deeper_than_the_encoder_goes_is_still_dead_lettered(tmp_path):
    nested: list = []
    for _ in range(5000):  # deeper than json.dumps can recurse
        nested = [nested]
    dead_path = tmp_path / "dead.jsonl"
    dead = JsonlSink(dead_path)
    Engine(ActiveLearner(), IterableSource([{"x": nested}]), dead_letters=dead).run()
    dead.close()
    (letter,) = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert letter["reason"] == "feature 'x' has unsupported type list"
    assert letter["where"] == "<iterable>:0"


def test_stdin_with_bytes_that_are_not_records_runs_to_the_end(tmp_path):
    data = b'\xff\xfe garbage\n{"x": 1.0}\n[1, 2]\n{"x": 2.0, "label": "a"}\n' + b"{" * 5000 + b"\n"
    proc = subprocess.run(
        [sys.executable, "-m", "streamal", "run", "--source", "-", "--metrics-port", "0"],
        input=data, cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    dead = [json.loads(line) for line in
            (tmp_path / "streamal-out/dead-letters.jsonl").read_text().splitlines()]  # fmt: skip
    assert [d["where"] for d in dead] == ["<stdin>:1", "<stdin>:3", "<stdin>:5"]
    assert base64.b64decode(dead[0]["data"]["raw_base64"]) == b"\xff\xfe garbage"
