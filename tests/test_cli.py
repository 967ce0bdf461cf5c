"""The command line as a user meets it: help, the default run, config files, replay."""

import json
import time

import pytest

from streamal.config import OPTIONS
from tests.conftest import streamal


def test_help_explains_every_option(tmp_path):
    top = streamal("--help", cwd=tmp_path).stdout
    assert "run" in top and "replay" in top
    run_help = streamal("run", "--help", cwd=tmp_path).stdout
    for opt in OPTIONS:
        assert opt.flag in run_help, opt.flag
        assert f"[{opt.key}]" in run_help
    replay_help = streamal("replay", "--help", cwd=tmp_path).stdout
    for flag in ("--budget", "--strategy", "--seeds", "--json", "--delay"):
        assert flag in replay_help


def test_default_run_smoke(tmp_path):
    proc = streamal("run", "--max-records", "20000", "--metrics-port", "0",
                    "--summary-every", "5000", cwd=tmp_path)  # fmt: skip
    requests = (tmp_path / "streamal-out/requests.jsonl").read_text().splitlines()
    assert 1000 < len(requests) <= 2001
    summaries = [line for line in proc.stderr.splitlines() if line.startswith("records=")]
    assert len(summaries) == 4
    assert "records=20000" in summaries[-1]
    # the simulated annotator answers 200 records late: half the budget explores
    assert "late-explore=50%" in summaries[-1]
    first = json.loads(requests[0])
    assert first["strategy"] == "per_class_quantile_filter"
    assert (tmp_path / "streamal-out/dead-letters.jsonl").read_text() == ""


def test_run_paces_requests_per_hour_and_per_cost(tmp_path):
    started = time.time()
    streamal("run", "--max-records", "20000", "--metrics-port", "0", "--summary-every", "0",
             "--labels-per-hour", "3600", "--burst", "5", cwd=tmp_path)  # fmt: skip
    elapsed = time.time() - started
    requests = (tmp_path / "streamal-out/requests.jsonl").read_text().splitlines()
    assert 5 <= len(requests) <= 5 + elapsed + 1  # one a second after the burst
    proc = streamal("run", "--max-records", "10", "--labels-per-day", "5", cwd=tmp_path,
                    check=False)  # fmt: skip
    assert proc.returncode == 2 and "learner.labels_per_day" in proc.stderr


def test_run_with_a_noisy_annotator_team_tells_them_apart(tmp_path):
    proc = streamal("run", "--max-records", "30000", "--metrics-port", "0", "--summary-every",
                    "30000", "--annotator-noises", "0.0,0.4", cwd=tmp_path)  # fmt: skip
    line = next(x for x in proc.stderr.splitlines() if x.startswith("records=30000"))
    team = dict(part.split("~") for part in line.split("annotators: ")[1].split())
    assert float(team["a1"]) > float(team["a2"]) + 0.1
    proc = streamal("run", "--annotator-noises", "0.1,x", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "annotator.noises" in proc.stderr


def test_run_asks_a_second_annotator_when_the_first_is_unreliable(tmp_path):
    streamal("run", "--max-records", "20000", "--metrics-port", "0", "--summary-every", "0",
             "--annotator-noises", "0.0,0.45", "--second-opinion-below", "0.7",
             "--annotator-delay", "50", cwd=tmp_path)  # fmt: skip
    lines = (tmp_path / "streamal-out/requests.jsonl").read_text().splitlines()
    again = [json.loads(x) for x in lines if '"second_opinion"' in x]
    assert len(again) > 20
    doubted = [r["exclude_annotator"] for r in again]
    assert doubted.count("a2") > 0.95 * len(doubted)  # the sloppy one, bar early noise
    first = {json.loads(x)["request_id"] for x in lines if '"second_opinion"' not in x}
    assert {r["request_id"] for r in again} <= first
    dead = (tmp_path / "streamal-out/dead-letters.jsonl").read_text()
    assert "held" not in dead


def test_config_file_sets_values_and_flags_win(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[learner]\nbudget = 0.05\nstrategy = "split"\n[output]\nrequests = "out/r.jsonl"\n'
    )
    streamal("run", "--config", "c.toml", "--max-records", "10000", "--metrics-port", "0",
             cwd=tmp_path)  # fmt: skip
    lines = (tmp_path / "out/r.jsonl").read_text().splitlines()
    assert 300 < len(lines) <= 501
    assert json.loads(lines[0])["strategy"] == "split"
    streamal("run", "--config", "c.toml", "--max-records", "10000", "--metrics-port", "0",
             "--requests", "out/r2.jsonl", "--budget", "0.2", cwd=tmp_path)  # fmt: skip
    assert len((tmp_path / "out/r2.jsonl").read_text().splitlines()) > 1000


def test_bad_config_is_one_line_naming_the_key(tmp_path):
    cases = {
        "[learner]\nbudget = 1.5\n": "learner.budget: must be in (0, 1]",
        "[learner]\nbugdet = 0.1\n": "learner.bugdet: unknown key",
        '[learner]\nstrategy = "magic"\n': "learner.strategy: must be one of",
        "[metrics]\nport = 99999\n": "metrics.port: must be a port number",
        '[annotator]\nnoise = "lots"\n': "annotator.noise: must be float",
        "not toml at all = = =\n": "not valid TOML",
    }
    for text, message in cases.items():
        (tmp_path / "bad.toml").write_text(text)
        proc = streamal("run", "--config", "bad.toml", "--max-records", "10", cwd=tmp_path,
                        check=False)  # fmt: skip
        assert proc.returncode == 2, text
        errors = [line for line in proc.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and message in errors[0], proc.stderr


def test_replay_prints_the_table_and_writes_json(tmp_path, dataset):
    proc = streamal("replay", dataset("usenet2.csv.gz"), dataset("chess.csv.gz"),
                    "--budget", "0.2", "--strategy", "variable_uncertainty",
                    "--strategy", "split", "--seeds", "3", "--json", "res.json",
                    "--exploration-share", "0", cwd=tmp_path)  # fmt: skip
    assert "usenet2.csv.gz" in proc.stdout and "all_labels" in proc.stdout
    results = json.loads((tmp_path / "res.json").read_text())["results"]
    assert [r["dataset"] for r in results] == ["usenet2.csv.gz", "chess.csv.gz"]
    for r in results:
        rows = {row["strategy"]: row for row in r["summary"]}
        assert set(rows) == {"variable_uncertainty", "split", "random_sampling", "all_labels"}
        assert rows["split"]["runs"] == 3 and rows["variable_uncertainty"]["runs"] == 1
        assert rows["all_labels"]["labels_used"] == 1.0
        for name in ("variable_uncertainty", "split", "random_sampling"):
            assert rows[name]["labels_used"] <= 0.2 + 1 / r["records"] + 1e-9
            assert 0.3 < rows[name]["accuracy"] < 1.0


def test_replay_over_files_and_budgets_prints_label_efficiency(tmp_path, dataset):
    proc = streamal("replay", dataset("usenet2.csv.gz"), dataset("luxembourg.csv.gz"),
                    "--budget", "0.05", "--budget", "0.1", "--exploration", "0.01",
                    "--strategy", "balanced_incremental_quantile_filter", "--json", "res.json",
                    cwd=tmp_path)  # fmt: skip
    assert "label efficiency" in proc.stdout and "mean where defined" in proc.stdout
    results = json.loads((tmp_path / "res.json").read_text())["results"]
    assert [(r["dataset"], r["budget"]) for r in results] == [
        ("usenet2.csv.gz", 0.05), ("usenet2.csv.gz", 0.1),
        ("luxembourg.csv.gz", 0.05), ("luxembourg.csv.gz", 0.1),
    ]  # fmt: skip
    for r in results:
        rows = {row["strategy"]: row for row in r["summary"]}
        acc = {name: row["accuracy"] for name, row in rows.items()}
        gap = acc["all_labels"] - acc["random_sampling"]
        eff = rows["balanced_incremental_quantile_filter"]["efficiency"]
        assert eff == pytest.approx(
            (acc["balanced_incremental_quantile_filter"] - acc["random_sampling"]) / gap
        )
        est = rows["balanced_incremental_quantile_filter"]["estimated_accuracy"]
        assert 0.0 <= est <= 1.0  # its accuracy is tested on a longer stream
        assert rows["balanced_incremental_quantile_filter"]["labels_used"] <= r["budget"] + 0.002


def test_report_draws_the_replay_results_on_one_offline_page(tmp_path, dataset):
    streamal("replay", dataset("usenet1.csv.gz"), "--budget", "0.05", "--budget", "0.2",
             "--strategy", "variable_uncertainty", "--json", "res.json", cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "res.json").read_text())["results"]
    trace = results[0]["runs"][0]["trace"]
    assert trace["position"][-1] == 1500 and 200 <= len(trace["accuracy"]) <= 250
    assert trace["labels"] == sorted(trace["labels"])
    proc = streamal("report", "res.json", "--out", "out/report.html", cwd=tmp_path)
    assert "2 result(s)" in proc.stdout
    page = (tmp_path / "out/report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 3  # efficiency + one per result
    assert page.count("<table>") == 2 and "usenet1.csv.gz" in page
    assert "http" not in page  # nothing to fetch: it opens offline
    (tmp_path / "bad.json").write_text("{}")
    proc = streamal("report", "bad.json", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "not a results file" in proc.stderr


def test_replay_errors_are_clear(tmp_path):
    proc = streamal("replay", "nope.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no such file: nope.csv" in proc.stderr
    proc = streamal("replay", "x.csv", "--budget", "0", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "--budget" in proc.stderr


def test_strategies_lists_every_strategy(tmp_path):
    out = streamal("strategies", cwd=tmp_path).stdout
    for name in ("variable_uncertainty", "split", "balanced_incremental_quantile_filter"):
        assert name in out


def test_replay_lets_the_scaler_learn_from_every_record(tmp_path, dataset):
    def quantile_filter_and_every_label(*flags):
        streamal("replay", dataset("luxembourg.csv.gz"), "--budget", "0.05", *flags,
                 "--json", "res.json", cwd=tmp_path)  # fmt: skip
        (result,) = json.loads((tmp_path / "res.json").read_text())["results"]
        rows = {row["strategy"]: row["accuracy"] for row in result["summary"]}
        return result["unsupervised"], rows["per_class_quantile_filter"], rows

    setting, labelled, rows_labelled = quantile_filter_and_every_label()
    assert setting == "labelled"
    setting, everything, rows_all = quantile_filter_and_every_label("--unsupervised", "all")
    assert setting == "all"
    # the setting reaches every learner: the strategy's and random sampling's runs change
    assert everything != labelled
    assert rows_all["random_sampling"] != rows_labelled["random_sampling"]


def test_replay_clip_reaches_every_learner_and_bad_values_are_clear(tmp_path, dataset):
    def accuracies(*flags):
        streamal("replay", dataset("usenet2.csv.gz"), "--budget", "0.1", *flags,
                 "--model", "logistic_regression", "--json", "res.json", cwd=tmp_path)  # fmt: skip
        (result,) = json.loads((tmp_path / "res.json").read_text())["results"]
        return result["clip"], {row["strategy"]: row["accuracy"] for row in result["summary"]}

    clip, bounded = accuracies()
    assert clip == 3.0
    clip, unbounded = accuracies("--clip", "0")
    assert clip == 0.0
    # usenet2's rare 0/1 words scale far past 3: every learner sees other values
    for name in ("per_class_quantile_filter", "random_sampling", "all_labels"):
        assert bounded[name] != unbounded[name], name
    proc = streamal("replay", dataset("usenet2.csv.gz"), "--clip", "-1", cwd=tmp_path,
                    check=False)  # fmt: skip
    assert proc.returncode == 2 and "--clip: must be >= 0" in proc.stderr
    (tmp_path / "bad.toml").write_text("[learner]\nclip = -2.0\n")
    proc = streamal("run", "--config", "bad.toml", "--max-records", "10", cwd=tmp_path,
                    check=False)  # fmt: skip
    assert proc.returncode == 2 and "learner.clip: must be >= 0" in proc.stderr


def test_replay_takes_the_learner_settings_of_run_with_its_checks(tmp_path, dataset):
    streamal("replay", dataset("chess.csv.gz"), "--drift", "none", "--utility", "margin",
             "--drift-boost", "2", "--boost-window", "50", "--json", "res.json",
             cwd=tmp_path)  # fmt: skip
    (result,) = json.loads((tmp_path / "res.json").read_text())["results"]
    assert (result["drift"], result["utility"]) == ("none", "margin")
    assert (result["drift_boost"], result["boost_window"]) == (2.0, 50)
    bad = [
        ("--late-delay", "0", "must be positive"),
        ("--drift-boost", "0.5", "must be >= 1"),
        ("--annotator-noises", "0.2,x", "must be rates in [0, 1]"),
    ]
    for flag, value, problem in bad:
        proc = streamal("replay", dataset("chess.csv.gz"), flag, value, cwd=tmp_path, check=False)
        assert proc.returncode == 2 and f"{flag}: {problem}" in proc.stderr, proc.stderr
