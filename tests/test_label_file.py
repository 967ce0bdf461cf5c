"""Labels from a file that grows: followed like tail -F, its position saved with the checkpoint."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamal import ActiveLearner
from streamal.engine import Engine
from streamal.label_file import LabelFile
from streamal.records import BadInput, Label
from streamal.sinks import CallableSink
from streamal.sources import IterableSource
from tests.conftest import streamal


def _write(path, *objs, mode="a"):
    with open(path, mode) as f:
        for obj in objs:
            f.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")


def _ids(items):
    return [i.request_id if isinstance(i, Label) else i.reason for i in items]


def test_it_follows_truncation_and_rotation_and_resumes_where_it_was(tmp_path):
    path = tmp_path / "labels.jsonl"
    labels = LabelFile(path, every=0)
    _write(path, {"request_id": "q-1", "label": "a"}, {"request_id": "q-2", "label": "b"})
    assert _ids(labels.poll()) == ["q-1", "q-2"]
    _write(path, {"request_id": "q-3", "label": "a"})
    os.replace(path, tmp_path / "labels.jsonl.1")  # rotated, with a line not yet read
    _write(path, {"request_id": "q-4", "label": "a"})
    assert _ids(labels.poll()) == ["q-3", "q-4"]
    _write(path, {"request_id": "q-5", "label": "a"}, mode="w")  # truncated, written anew
    assert _ids(labels.poll()) == ["q-5"]
    saved = labels.position()
    _write(path, {"request_id": "q-6", "label": "a"})
    os.replace(path, tmp_path / "labels.jsonl.2")  # rotated while the daemon was down
    _write(path, {"request_id": "q-7", "label": "a"})
    again = LabelFile(path, every=0)
    again.seek(saved)
    assert _ids(again.poll()) == ["q-6", "q-7"]


def test_bad_lines_are_refused_with_their_reason_and_place(tmp_path):
    path = tmp_path / "labels.jsonl"
    _write(path, "{not json", '{"label": "a"}', '{"request_id": "q-1", "label": null}', "[1]")
    with open(path, "ab") as f:
        f.write(b'{"request_id": "q-2", "label": "caf\xe9"}\n')
    items = LabelFile(path, every=0).poll()
    assert all(isinstance(i, BadInput) for i in items)
    assert [i.where for i in items] == [f"{path}:{n}" for n in range(1, 6)]
    assert _ids(items)[1:4] == ["label has no request_id", "label for 'q-1' is null",
                                "a label must be a JSON object"]  # fmt: skip


label_objects = st.dictionaries(
    st.sampled_from(["request_id", "label", "annotator", "x"]),
    st.one_of(st.none(), st.text(max_size=4), st.integers()),
)
lines = st.one_of(st.binary(max_size=60), label_objects.map(lambda o: json.dumps(o).encode()))


@settings(
    max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(data=st.lists(lines, max_size=12))
def test_any_label_lines_are_taken_or_refused_never_a_crash(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("lines") / "labels.jsonl"
    path.write_bytes(b"\n".join(d.replace(b"\n", b" ") for d in data) + b"\n")
    items = LabelFile(path, every=0).poll()
    assert len(items) == sum(1 for d in data if d.replace(b"\n", b" ").strip())
    for item in items:
        assert isinstance(item, Label) or (isinstance(item, BadInput) and item.reason)


def test_the_engine_learns_each_label_of_the_file_once_across_a_restart(tmp_path):
    path = tmp_path / "labels.jsonl"
    checkpoint = tmp_path / "state.ckpt"
    records = [{"x": float(i % 10), "y": float(i % 3)} for i in range(4000)]

    def answer(request):  # a person answering each request as it comes
        x = request["features"]["x"]
        _write(path, {"request_id": request["request_id"], "label": "hi" if x > 4 else "lo"})

    def run(n):
        engine = Engine(ActiveLearner(budget=0.1), IterableSource(records),
                        requests=[CallableSink(answer)], labels=LabelFile(path, every=0),
                        checkpoint=checkpoint, checkpoint_every=250)  # fmt: skip
        engine.run(max_records=n)
        return engine

    run(2000)
    engine = run(4000)  # a new process: resumes, reads on from the saved position
    lines = len(path.read_text().splitlines())
    learner = engine.learner
    assert learner.labels_applied >= lines - 1  # the last request's label came after the end
    assert sum(learner.labels_rejected.values()) == 0
    assert engine.stats.labels_received == lines


def test_run_follows_a_label_file(tmp_path):
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"id": f"e{i}", "x": float(i % 7)}) + "\n"
                               for i in range(3000)))  # fmt: skip
    common = (
        "run",
        "--source",
        records,
        "--no-annotator",
        "--metrics-port",
        "0",
        "--checkpoint",
        "s.ckpt",
        "--checkpoint-every",  # a label for a request never made waits this long
        "500",
        "--labels",
        "labels.jsonl",
        "--budget",
        "0.05",
    )
    streamal(*common, "--max-records", "1500", cwd=tmp_path)
    requests = [json.loads(x) for x in (tmp_path / "streamal-out/requests.jsonl").open()]
    _write(tmp_path / "labels.jsonl",
           *[{"request_id": r["request_id"], "label": r["features"]["x"] > 3} for r in requests],
           '{"request_id": "q-nope", "label": true}')  # fmt: skip
    streamal(*common, cwd=tmp_path)
    dead = [json.loads(x) for x in (tmp_path / "streamal-out/dead-letters.jsonl").open()]
    assert [d["reason"] for d in dead] == ["label for unknown request 'q-nope'"]
    from streamal import checkpoint

    state = checkpoint.load(tmp_path / "s.ckpt", checkpoint.resolve_key(tmp_path / "s.ckpt"))
    learner = state["learner"]
    assert learner["labels_applied"] == len(requests)
    assert state["stats"].labels_received == len(requests) + 1


def test_after_a_crash_labels_read_again_wait_for_their_requests(tmp_path):
    """The checkpoint at 1500, a crash at 1700: the labels written meanwhile are read again
    before their requests are made again, and each is still learned exactly once."""
    import shutil

    path = tmp_path / "labels.jsonl"
    checkpoint = tmp_path / "state.ckpt"
    records = [{"x": float(i % 10), "y": float(i % 3)} for i in range(4000)]
    answered: set[str] = set()
    snapshot = tmp_path / "at-1500.ckpt"

    def answer(request):  # a person answers each request once, as it comes
        if request["request_id"] not in answered:
            answered.add(request["request_id"])
            label = "hi" if request["features"]["x"] > 4 else "lo"
            _write(path, {"request_id": request["request_id"], "label": label})

    def engine():
        return Engine(ActiveLearner(budget=0.1), IterableSource(records),
                      requests=[CallableSink(answer)], labels=LabelFile(path, every=0),
                      checkpoint=checkpoint, checkpoint_every=250)  # fmt: skip

    first = engine()
    first.run(max_records=1500)
    shutil.copy(checkpoint, snapshot)
    first.run(max_records=1700)  # then the process dies before its next checkpoint
    shutil.copy(snapshot, checkpoint)
    second = engine()
    second.run(max_records=4000)
    learner = second.learner
    lines = len(path.read_text().splitlines())
    assert lines == len(answered) > 300
    assert dict(learner.labels_rejected) == {}
    assert lines - 1 <= learner.labels_applied <= lines
