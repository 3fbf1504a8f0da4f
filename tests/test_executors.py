"""One window is the unit of work: parallel windows are bit-identical to sequential ones, on a local pool and on Ray
(including a two-node cluster whose tasks share no folder with the driver)."""

import json
import zipfile

import pytest

from tests.conftest import TINY_CONFIG
from tests.helpers import strict_json, wf

FOUR = [  # four equal windows: the scaling benchmark's shape, and enough to keep two workers busy
    {"id": f"w{k + 1:02d}", "train_start": a, "train_end": b, "test_start": c, "test_end": d}
    for k, (a, b, c, d) in enumerate(
        [
            ("2019-01-02", "2019-01-09", "2019-01-10", "2019-01-11"),
            ("2019-01-14", "2019-01-22", "2019-01-23", "2019-01-24"),
            ("2019-01-25", "2019-02-01", "2019-02-04", "2019-02-05"),
            ("2019-02-06", "2019-02-13", "2019-02-14", "2019-02-15"),
        ]
    )
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ex")
    (tmp / "c.json").write_text(json.dumps(TINY_CONFIG))
    (tmp / "w.json").write_text(json.dumps(FOUR))
    return tmp


def run(files, out, *extra):
    args = ["run", "--config", files / "c.json", "--windows", files / "w.json", "--output-dir", out, "--quiet"]
    return wf(*args, "--no-report", *extra)


@pytest.fixture(scope="module")
def sequential(files):
    res = run(files, files / "seq")
    assert res.exit_code == 0, res.output
    return files / "seq"


def weights(folder, wid):
    with zipfile.ZipFile(folder / wid / "model.zip") as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith(".pth")}


def same_results(a, b):
    sa, sb = strict_json(a / "summary.json"), strict_json(b / "summary.json")
    for key in ("aggregate", "statistics", "config_hash", "data_hash", "windows_hash"):
        assert sa[key] == sb[key], key
    for wa, wb in zip(sa["windows"], sb["windows"], strict=True):
        for key in ("evaluation", "baselines", "cost_sensitivity", "diagnostics"):
            assert wa[key] == wb[key], (wa["id"], key)
        assert weights(a, wa["id"]) == weights(b, wb["id"])  # network weights and optimiser state, bit for bit
        assert (a / wa["id"] / "equity.csv").read_bytes() == (b / wb["id"] / "equity.csv").read_bytes()
        assert (a / wa["id"] / "trades.csv").read_bytes() == (b / wb["id"] / "trades.csv").read_bytes()


def test_two_workers_are_bit_identical_to_one(files, sequential):
    res = run(files, files / "par", "--workers", "2")
    assert res.exit_code == 0, res.output
    same_results(sequential, files / "par")
    assert strict_json(files / "par" / "summary.json")["executor"] == {"kind": "local", "workers": 2}


def test_seed_changes_results_negative_control(files, sequential):
    res = run(files, files / "seed1", "--workers", "2", "--seed", "1")
    assert res.exit_code == 0
    a = strict_json(sequential / "summary.json")["windows"][0]["evaluation"]
    b = strict_json(files / "seed1" / "summary.json")["windows"][0]["evaluation"]
    assert a != b


def test_the_aggregate_is_the_in_memory_series_and_equals_the_files(sequential):
    """The stitched aggregate comes from memory; recomputed from the (lossless) equity.csv files it is identical."""
    from backend.config.models import load_config
    from backend.evaluation.aggregate import stitched
    from backend.evaluation.replay import read_series

    summary = strict_json(sequential / "summary.json")
    cfg = load_config(sequential / "config.resolved.json").config
    series = []
    for w in summary["windows"]:
        frame = read_series(sequential / w["id"] / "equity.csv")
        series.append({c: frame[c].to_numpy() for c in frame.columns})
    from backend.core.jsonio import sanitize

    agg, stats = (sanitize(x) for x in stitched(series, summary["annualisation"]["bars_per_year"], cfg))
    assert agg == summary["aggregate"] and stats == summary["statistics"]
    assert agg["n_bars"] == sum(w["test_bars"] for w in summary["windows"])


def test_ray_gives_identical_results(files, sequential):
    pytest.importorskip("ray")
    import ray

    ray.shutdown()
    try:
        res = run(files, files / "ray", "--executor", "ray", "--workers", "2")
    finally:
        ray.shutdown()
    assert res.exit_code == 0, res.output
    same_results(sequential, files / "ray")


def test_two_node_ray_cluster_without_a_shared_folder(files, sequential, tmp_path, monkeypatch):
    """Each node's tasks work in their own scratch root; the driver alone writes the run folder."""
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    from backend.run import driver

    scratch = [tmp_path / "node-a", tmp_path / "node-b"]
    for folder in scratch:
        folder.mkdir()
    ray.shutdown()
    cluster = Cluster()
    seen = []
    real = driver.RunDriver.on_result

    def record(self, result):
        seen.append(result.worker)
        assert not result.worker or result.worker["scratch"] is not None  # a remote task never got a root
        return real(self, result)

    monkeypatch.setattr(driver.RunDriver, "on_result", record)
    try:
        cluster.add_node(num_cpus=1, env_vars={"WF_SCRATCH_DIR": str(scratch[0])})
        cluster.add_node(num_cpus=1, env_vars={"WF_SCRATCH_DIR": str(scratch[1])})
        cluster.wait_for_nodes()
        out = tmp_path / "out"
        res = run(files, out, "--executor", "ray", "--ray-address", cluster.address, "--workers", "2")
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert res.exit_code == 0, res.output
    same_results(sequential, out)
    roots = {str(next(p for p in scratch if w["scratch"].startswith(str(p)))) for w in seen}
    assert roots == {str(p) for p in scratch}  # both nodes ran windows, each in its own scratch root
    assert all(not w["scratch"].startswith(str(out)) for w in seen)
    for wid in ("w01", "w02", "w03", "w04"):
        for name in ("model.zip", "obs_stats.npz", "metadata.json", "evaluation.json", "equity.csv", "trades.csv"):
            assert (out / wid / name).exists(), (wid, name)
        assert list((out / "tensorboard" / wid).glob("events.out.tfevents.*"))
    assert not any(list(p.iterdir()) for p in scratch)  # scratch folders are cleaned up


def test_warm_start_chains_run_in_order_on_a_pool(files, tmp_path):
    res = run(files, tmp_path / "warm", "--workers", "2", "--set", "training.warm_start=true")
    assert res.exit_code == 0, res.output
    order = [line.split("[")[2].split("]")[0] for line in res.output.splitlines() if "Training [" in line]
    assert order == ["w01", "w02", "w03", "w04"]
    for prev, wid in (("w01", "w02"), ("w02", "w03"), ("w03", "w04")):
        assert strict_json(tmp_path / "warm" / wid / "metadata.json")["training"]["warm_start_from"] == prev


def test_seeds_run_as_tasks_on_one_pool(files, tmp_path):
    res = run(files, tmp_path / "seeds", "--workers", "2", "--seeds", "2")
    assert res.exit_code == 0, res.output
    top = strict_json(tmp_path / "seeds" / "summary.json")
    assert top["kind"] == "multi_seed" and top["seeds"] == [0, 1]
    assert strict_json(tmp_path / "seeds" / "s0" / "summary.json")["seed"] == 0
