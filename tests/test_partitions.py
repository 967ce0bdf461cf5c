"""The replay bench dealing records to partitions, as the Kafka daemon keeps them."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from river.datasets import synth

from streamal.evaluation import run_strategy


def _stream(n, seed=3):
    data = [({str(k): v for k, v in x.items()}, y)
            for x, y in synth.Hyperplane(seed=seed, n_features=4).take(n)]  # fmt: skip
    return [x for x, _ in data], [y for _, y in data]


@settings(max_examples=25, deadline=None)
@given(partitions=st.integers(1, 8), budget=st.sampled_from([0.02, 0.05, 0.2]),
       strategy=st.sampled_from(["random_sampling", "per_class_quantile_filter"]),
       shared=st.booleans(), delay=st.sampled_from([0, 50]))  # fmt: skip
def test_the_budget_holds_per_partition_and_so_overall(partitions, budget, strategy, shared, delay):
    xs, ys = _stream(1500)
    result = run_strategy(xs, ys, strategy, budget=budget, seed=1, partitions=partitions,
                          shared_model=shared, delay=delay)  # fmt: skip
    # each partition's cap admits ceil(b * its records): at most ceil(b * n) + P in all
    assert result.labels_used <= math.ceil(budget * len(ys)) + partitions


def test_a_shared_model_learns_what_every_partition_pays_for():
    xs, ys = _stream(6000)
    one = run_strategy(xs, ys, "per_class_quantile_filter", budget=0.05, seed=1)
    shared = run_strategy(xs, ys, "per_class_quantile_filter", budget=0.05, seed=1, partitions=6)
    own = run_strategy(xs, ys, "per_class_quantile_filter", budget=0.05, seed=1, partitions=6,
                       shared_model=False)  # fmt: skip
    # six models each learning a sixth of the labels lose what one model keeps
    assert own.accuracy < shared.accuracy - 0.01
    assert abs(shared.accuracy - one.accuracy) < 0.02
    for run in (shared, own):
        assert run.labels_used <= 0.05 + 6 / len(ys)


def test_replay_deals_records_to_partitions_from_the_command_line(tmp_path):
    import json

    from tests.conftest import DATASETS, streamal

    args = ("replay", DATASETS / "elec2.csv.gz", "--max-records", "3000", "--budget", "0.1",
            "--partitions", "3", "--json", "out.json", "--no-progress")  # fmt: skip
    shared = streamal(*args, cwd=tmp_path).stdout
    assert "3 partitions, one model shared" in shared
    result = json.loads((tmp_path / "out.json").read_text())["results"][0]
    assert result["partitions"] == 3 and result["partition_models"] == "shared"
    own = streamal(*args, "--partition-models", "own", cwd=tmp_path).stdout
    assert "3 partitions, a model each" in own
    refused = streamal("replay", DATASETS / "elec2.csv.gz", "--partitions", "0", cwd=tmp_path,
                       check=False)  # fmt: skip
    assert refused.returncode == 2 and "--partitions: must be at least 1" in refused.stderr
    by_column = streamal(*args, "--partition-by", "day", cwd=tmp_path).stdout
    assert "3 partitions, one model shared" in by_column
    refused = streamal(*args, "--partition-by", "nope", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "partition by 'nope': no such feature" in refused.stderr


def test_records_with_one_key_go_to_one_partition():
    from streamal.evaluation import deal

    xs = [{"k": f"user-{i % 7}", "x": float(i)} for i in range(700)]
    dealt = deal(xs, 4, "k")
    owner = {}
    for x, p in zip(xs, dealt, strict=True):
        assert owner.setdefault(x["k"], p) == p
    assert len(set(dealt)) > 1
    assert sorted(set(deal(xs, 4, "hash"))) == [0, 1, 2, 3]
