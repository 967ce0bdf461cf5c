"""streamal bench: the learner against the bare river loop, on the user's model and data."""

import re
import statistics

import pytest
from river.datasets import synth

from streamal.model import make_model
from streamal.speed import compare_with_river
from tests.conftest import ROOT, streamal

LINE = re.compile(
    r"^(decide_many|decide): +learner +([\d,]+) records/s, bare river loop +([\d,]+) records/s: "
    r"(\d+\.\d\d) of its speed \(runs (\d+\.\d\d)-(\d+\.\d\d); ([\d,]+) labels learned by both\)$"
)


def test_both_loops_learn_the_same_labels_and_the_ratio_is_theirs():
    data = list(synth.SEA(seed=3).take(3000))
    xs, ys = [x for x, _ in data], [y for _, y in data]
    result = compare_with_river(xs, ys, make_model, budget=0.05, repeats=2, batch=False)
    assert len(result.learner) == len(result.bare) == 2
    assert 100 <= result.labels <= 0.05 * 3000 + 1
    assert result.ratios() == [b / a for a, b in zip(result.learner, result.bare, strict=True)]
    assert result.rate("learner") == 3000 / statistics.median(result.learner)
    with pytest.raises(ValueError, match="repeats"):
        compare_with_river(xs, ys, make_model, repeats=0)


def test_bench_on_a_csv_and_on_a_river_generator(tmp_path):
    out = streamal("bench", str(ROOT / "benchmarks/datasets/elec2.csv.gz"), "--max-records",
                   "4000", "--repeats", "1", cwd=tmp_path).stdout.splitlines()  # fmt: skip
    assert out[0] == ("elec2.csv.gz: 4,000 records, 2 classes; model binned_logistic_regression; "
                      "budget 0.1")  # fmt: skip
    found = [LINE.match(line) for line in out[1:]]
    assert [m.group(1) for m in found] == ["decide_many", "decide"]
    for m in found:
        assert float(m.group(4)) > 0 and 0 < int(m.group(7).replace(",", "")) <= 401
    out = streamal("bench", "river:synth.SEA", "--max-records", "2000", "--repeats", "1",
                   "--mode", "each", "--model", "hoeffding_tree", cwd=tmp_path).stdout  # fmt: skip
    assert out.startswith("river:synth.SEA: 2,000 records, 2 classes; model hoeffding_tree")
    assert [LINE.match(line).group(1) for line in out.splitlines()[1:]] == ["decide"]


def test_bench_on_a_model_of_the_users_own(tmp_path):
    (tmp_path / "mymodels.py").write_text(
        "from river import naive_bayes\n\ndef make():\n    return naive_bayes.GaussianNB()\n"
    )
    out = streamal("bench", "river:Phishing", "--model", "mymodels:make", "--repeats", "1",
                   "--mode", "batch", cwd=tmp_path).stdout.splitlines()  # fmt: skip
    assert out[0] == "river:Phishing: 1,250 records, 2 classes; model mymodels:make; budget 0.1"
    assert LINE.match(out[1]).group(1) == "decide_many"


@pytest.mark.parametrize(
    "args,message",
    [
        (["river:Nope"], "river:Nope: no such river dataset; river offers"),
        (["river:Phishing", "--model", "nothing"], "--model: 'nothing' is neither one of"),
        (["river:Phishing", "--model", "nomodule:make"], "--model: cannot load nomodule:make"),
        (["river:Phishing", "--model", "collections:OrderedDict"], "not a river classifier"),
        (["river:Phishing", "--repeats", "0"], "--repeats: must be at least 1"),
        (["missing.csv"], "missing.csv"),
    ],
)
def test_bench_mistakes_are_one_line(tmp_path, args, message):
    proc = streamal("bench", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamal: error: ") and message in lines[0]
