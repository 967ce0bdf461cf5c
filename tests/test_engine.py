"""Engine: bad input goes to the dead letters and the loop goes on; files in and out."""

import gzip
import json

from prometheus_client import CollectorRegistry

from streamal import ActiveLearner, Record
from streamal.engine import Engine
from streamal.metrics import Metrics
from streamal.records import BadInput, Label
from streamal.schema import RecordValidator
from streamal.simulate import SimulatedAnnotator
from streamal.sinks import CallableSink, JsonlSink
from streamal.sources import CsvSource, IterableSource, JsonlSource, open_source


def test_malformed_records_go_to_dead_letters_and_the_loop_goes_on(tmp_path):
    lines = []
    for i in range(300):
        record = {"id": f"r{i}", "features": {"a": i % 7, "b": "x"}, "label": i % 2}
        lines.append(json.dumps(record))
    lines[10] = "{not json"
    lines[20] = json.dumps({"id": "r20", "features": {"a": "high", "b": "x"}})
    lines[30] = json.dumps({"id": "r30", "features": {"b": "x"}})
    lines[40] = '{"id": "r40", "features": {"a": NaN, "b": "x"}}'
    lines[50] = json.dumps([1, 2, 3])
    lines[60] = json.dumps({"id": "r60", "features": {}})
    lines[70] = json.dumps({"id": "r70", "features": {"a": 1, "b": "x"}, "ts": "yesterday"})
    # finite, but its square is not: it would turn the scaler's variance to NaN for good
    lines[80] = json.dumps({"id": "r80", "features": {"a": 1e300, "b": "x"}, "label": 1})
    lines[90] = '{"id": "r90", "features": {"a": 1%s, "b": "x"}}' % ("0" * 400)
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt") as f:
        f.write("\n".join(lines) + "\n")
    dead = JsonlSink(tmp_path / "dead.jsonl")
    registry = CollectorRegistry()
    learner = ActiveLearner(validator=RecordValidator())  # every feature required, as in `run`
    engine = Engine(
        learner, JsonlSource(src), dead_letters=dead, metrics=Metrics(registry, learner),
        annotator=SimulatedAnnotator(delay=5, noise=0.0),
    )  # fmt: skip
    stats = engine.run()
    dead.close()
    rows = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = [r["reason"] for r in rows]
    assert stats.records == 300
    assert learner.n_records == 291
    assert len(rows) == 9
    assert any("malformed JSON" in r for r in reasons)
    assert "feature 'a' must be a number, got 'high'" in reasons
    assert "missing feature 'a'" in reasons
    assert "feature 'a' is NaN or infinite" in reasons
    assert "a record must be a JSON object" in reasons
    assert "record has no features" in reasons
    assert any("ts must be a finite number" in r for r in reasons)
    assert "feature 'a' is too large to learn from (beyond 1e100): 1e+300" in reasons
    assert any("too large to learn from" in r and "10000" in r for r in reasons)
    assert registry.get_sample_value("streamal_dead_letters_total", {"kind": "record"}) == 9
    assert registry.get_sample_value("streamal_records_total") == 291
    # the model still gives numbers
    probabilities = learner.decide({"a": 3, "b": "x"}).probabilities
    assert probabilities and all(0.0 <= p <= 1.0 for p in probabilities.values())


def test_rejected_labels_are_dead_lettered_with_their_reason():
    class Labels:
        def __init__(self):
            self.sent = False

        def poll(self, now):
            if now == 50 and not self.sent:
                self.sent = True
                return [Label("q-nope", 1), BadInput("label must be JSON", b"\xff")]
            return []

    dead = []
    engine = Engine(
        ActiveLearner(), IterableSource([{"x": float(i)} for i in range(100)]),
        labels=Labels(), dead_letters=CallableSink(dead.append),
    )  # fmt: skip
    engine.run()
    assert [d["kind"] for d in dead] == ["label", "label"]
    assert dead[0]["reason"] == "label for unknown request 'q-nope'"
    assert engine.learner.labels_rejected["unknown"] == 1
    assert engine.stats.bad_labels["malformed"] == 1


def test_csv_source_reads_gzip_numbers_categories_and_labels(tmp_path, dataset):
    records = list(CsvSource(dataset("elec2.csv.gz")))
    assert len(records) == 45_312
    first = records[0]
    assert first.label in {"UP", "DOWN"} and isinstance(first.features["nswprice"], float)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n1,2\n3,zz,y\n")
    got = list(CsvSource(bad))
    assert isinstance(got[1], BadInput) and "2 fields" in got[1].reason
    assert got[2].features == {"a": 3.0, "b": "zz"}


def test_open_source_explains_what_it_accepts():
    import pytest

    with pytest.raises(ValueError, match="synth:NAME"):
        open_source("ftp://example")
    with pytest.raises(ValueError, match="choose sea_drift"):
        open_source("synth:Nope")
    with pytest.raises(FileNotFoundError):
        list(open_source("missing.csv"))


def test_requests_carry_what_an_annotator_needs():
    requests = []
    engine = Engine(
        ActiveLearner(),
        IterableSource(Record(str(i), {"x": float(i % 5)}, key=f"k{i}") for i in range(200)),
        requests=[CallableSink(requests.append)],
    )
    engine.run()
    r = requests[0]
    assert set(r) >= {
        "request_id", "record_id", "key", "features", "utility", "confidence", "prediction",
        "probabilities", "query_probability", "strategy", "ts",
    }  # fmt: skip
    assert r["key"] == f"k{r['record_id']}"
    json.dumps(requests)
