"""wf sweep / wf compare: members in worker processes, failures recorded, resume, lock, Ray."""

import json
import shutil

import pytest

from backend.run.summary import pool_use, task_seconds
from tests.conftest import TINY_CONFIG
from tests.helpers import strict_json, wf


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfgs")
    good = json.loads(json.dumps(TINY_CONFIG))
    (d / "alpha.json").write_text(json.dumps(good))
    good["sac"]["learning_rate"] = 1e-4
    (d / "beta.json").write_text(json.dumps(good))
    typo = json.loads(json.dumps(TINY_CONFIG))
    typo["sac"]["learning_rat"] = 0.1
    (d / "typo.json").write_text(json.dumps(typo))
    return d


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "w.json"
    p.write_text(
        json.dumps(
            [
                {
                    "train_start": "2019-01-02",
                    "train_end": "2019-01-11",
                    "test_start": "2019-01-14",
                    "test_end": "2019-01-15",
                }
            ]
        )
    )
    return p


def sweep(configs, windows, out, *extra):
    return wf(
        "sweep",
        "--configs",
        str(configs / "*.json"),
        "--windows",
        windows,
        "--workers",
        "2",
        "--output-dir",
        out,
        "--no-report",
        "--quiet",
        *extra,
    )


@pytest.fixture(scope="module")
def first_sweep(configs, windows, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    return sweep(configs, windows, out), out


def test_sweep_records_failures_and_goes_on(first_sweep):
    res, out = first_sweep
    assert res.exit_code == 1, res.output
    assert "[typo_s0] [STAGE ❌] Window Setup — InputError:" in res.output
    assert "[alpha_s0] [STAGE ✅] Summary" in res.output and "[beta_s0] [STAGE ✅] Summary" in res.output
    doc = strict_json(out / "sweep.json")
    rows = {r["name"]: r for r in doc["members"]}
    assert set(rows) == {"alpha_s0", "beta_s0", "typo_s0"}
    assert doc["n_trials"] == 2 and doc["n_members"] == 3  # trials = members with an out-of-sample Sharpe
    assert 0.0 <= rows["alpha_s0"]["dsr"] <= 1.0 and rows["alpha_s0"]["dsr_n_trials"] == 2
    assert rows["alpha_s0"]["dsr"] <= rows["alpha_s0"]["psr"] + 1e-12
    assert rows["typo_s0"]["dsr"] is None
    assert "DSR(N=2)" in res.output
    assert rows["alpha_s0"]["status"] == rows["beta_s0"]["status"] == "completed"
    assert rows["typo_s0"]["status"] == "failed" and "sac.learning_rat" in rows["typo_s0"]["error"]
    assert rows["alpha_s0"]["config_hash"] != rows["beta_s0"]["config_hash"]
    assert rows["alpha_s0"]["oos_sharpe"] == strict_json(out / "alpha_s0" / "summary.json")["aggregate"]["sharpe"]
    csv_lines = (out / "sweep.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("name,")
    table = res.output[res.output.index("member") :]
    assert table.index("alpha_s0") < table.index("typo_s0")  # failed rows sort last
    assert not (out / ".sweep.lock").exists()
    # the pool's use: busy = the members' window-task seconds, idle share printed on the Sweep line
    pool = doc["pool"]
    busy = sum(task_seconds(strict_json(out / m / "summary.json")) for m in ("alpha_s0", "beta_s0"))
    assert pool["workers"] == 2 and pool["busy_seconds"] == round(busy, 1) > 0
    assert pool["idle_share"] == pytest.approx(max(0.0, 1 - busy / (2 * pool["wall_seconds"])), abs=0.01)
    assert f"pool of 2 idle {pool['idle_share']:.0%} of " in res.output
    assert "[alpha_s0] [STAGE ✅] Training [w01] — " in res.output and " steps/s on sb3" in res.output


def test_pool_use_arithmetic():
    assert pool_use(90.0, 60.0, 2) == {"workers": 2, "wall_seconds": 60.0, "busy_seconds": 90.0, "idle_share": 0.25}
    assert pool_use(130.0, 60.0, 2)["idle_share"] == 0.0  # clock skew between tasks and the driver: never negative
    assert pool_use(0.0, 0.0, 2)["idle_share"] == 0.0


def test_resume_skips_finished_members_and_retries_failed(first_sweep, configs, windows):
    _, out = first_sweep
    before = {n: (out / n / "summary.json").read_bytes() for n in ("alpha_s0", "beta_s0")}
    res = sweep(configs, windows, out, "--resume")
    assert res.exit_code == 1
    assert "[alpha_s0] [STAGE ✅] Sweep member — completed earlier" in res.output
    assert "[typo_s0] [STAGE ❌] Window Setup" in res.output  # tried again
    assert {n: (out / n / "summary.json").read_bytes() for n in before} == before
    assert len(strict_json(out / "sweep.json")["members"]) == 3


def test_a_second_sweep_on_the_same_folder_is_refused(first_sweep, configs, windows):
    from tests.helpers import hold_lock

    _, out = first_sweep
    with hold_lock(out, "sweep") as holder:  # a live process holds the folder
        res = sweep(configs, windows, out, "--resume")
        assert res.exit_code == 2 and f"another sweep (pid {holder.pid}" in res.output
    # the holder was killed (-9): its OS lock died with it and the next sweep takes the folder over
    res = sweep(configs, windows, out, "--resume")
    assert res.exit_code == 1 and "another sweep" not in res.output


def test_existing_members_need_resume_or_overwrite(first_sweep, configs, windows):
    _, out = first_sweep
    res = sweep(configs, windows, out)
    assert res.exit_code == 2 and "--resume" in res.output


def test_compare_table_sort_and_json(first_sweep, tmp_path):
    _, out = first_sweep
    res = wf("compare", out, "--json")
    assert res.exit_code == 0
    rows = json.loads(res.output)
    assert [r["name"] for r in rows][-1] == "typo_s0"
    res = wf("compare", out / "alpha_s0", out / "beta_s0", "--sort", "name")
    assert res.exit_code == 0 and res.output.index("alpha_s0") < res.output.index("beta_s0")
    assert wf("compare", out, "--sort", "bogus").exit_code == 2
    assert wf("compare", tmp_path).exit_code == 2


def test_seed_list_names_members(configs, windows, tmp_path):
    one = tmp_path / "cfg"
    one.mkdir()
    shutil.copy(configs / "alpha.json", one / "alpha.json")
    res = wf(
        "sweep",
        "--configs",
        one / "alpha.json",
        "--seed-list",
        "3,4",
        "--windows",
        windows,
        "--workers",
        "2",
        "--output-dir",
        tmp_path / "out",
        "--no-report",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    rows = strict_json(tmp_path / "out" / "sweep.json")["members"]
    assert sorted((r["name"], r["seed"]) for r in rows) == [("alpha_s3", 3), ("alpha_s4", 4)]
    assert rows[0]["oos_sharpe"] != rows[1]["oos_sharpe"]


def test_the_sweep_pool_gets_the_members_torch_threads(windows, tmp_path, monkeypatch):
    """As in `wf run`, the executor's worker thread limits come from training.torch_threads (one pool serves every
    member: the largest)."""
    from backend.run import executors

    made = []

    def recording(kind, workers, *, ray_address=None, threads=1):
        made.append((kind, workers, threads))
        raise executors.ExecutorError("recorded, not started")  # no training in this test

    monkeypatch.setattr(executors, "make_executor", recording)
    folder = tmp_path / "cfgs"
    folder.mkdir()
    for name, threads in (("one", 1), ("three", 3)):
        cfg = json.loads(json.dumps(TINY_CONFIG))
        cfg["training"]["torch_threads"] = threads
        (folder / f"{name}.json").write_text(json.dumps(cfg))
    res = sweep(folder, windows, tmp_path / "out")
    assert res.exit_code == 2 and "recorded, not started" in res.output, res.output
    assert made == [("local", 2, 3)]


def test_ray_executor_without_ray_exits_2(configs, windows, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    res = wf(
        "sweep",
        "--configs",
        configs / "alpha.json",
        "--windows",
        windows,
        "--executor",
        "ray",
        "--output-dir",
        tmp_path / "o",
        "--quiet",
    )
    assert res.exit_code == 2 and "pip install" in res.output


def test_ray_executor_gives_the_same_table(first_sweep, configs, windows, tmp_path):
    pytest.importorskip("ray")
    _, local = first_sweep
    res = sweep(configs, windows, tmp_path / "ray", "--executor", "ray")
    assert res.exit_code == 1, res.output
    by_ray = {r["name"]: r for r in strict_json(tmp_path / "ray" / "sweep.json")["members"]}
    by_local = {r["name"]: r for r in strict_json(local / "sweep.json")["members"]}
    for name in ("alpha_s0", "beta_s0"):
        for key in ("oos_sharpe", "oos_total_return", "oos_n_trades", "config_hash"):
            assert by_ray[name][key] == by_local[name][key], (name, key)
    assert by_ray["typo_s0"]["status"] == "failed"


def test_sigterm_stops_a_sweep_cleanly(configs, windows, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "sweep",
            "--configs",
            str(configs / "alpha.json"),
            str(configs / "beta.json"),
            "--windows",
            str(windows),
            "--timesteps",
            "200000",
            "--workers",
            "1",
            "--output-dir",
            str(out),
            "--quiet",
            "--no-report",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while not list(out.glob("*/w01/training_progress.json")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    rows = {r["name"]: r for r in strict_json(out / "sweep.json")["members"]}
    assert rows["alpha_s0"]["status"] == "interrupted" and rows["beta_s0"]["status"] == "interrupted"
    assert strict_json(out / "alpha_s0" / "summary.json")["status"] == "interrupted"
    assert not (out / ".sweep.lock").exists()


def test_sweep_resume_never_reuses_results_of_edited_windows(first_sweep, configs, windows, tmp_path):
    _, out = first_sweep
    moved = json.loads(windows.read_text())
    moved[0].update(train_start="2019-04-01", train_end="2019-04-10", test_start="2019-04-11", test_end="2019-04-12")
    edited = tmp_path / "moved.json"
    edited.write_text(json.dumps(moved))
    before = (out / "alpha_s0" / "summary.json").read_bytes()
    res = sweep(configs, edited, out, "--resume")
    assert res.exit_code == 1
    assert "[alpha_s0] [STAGE ❌] Run Folder — FolderError: --resume" in res.output
    assert "window w01 moved" in res.output
    rows = {r["name"]: r for r in strict_json(out / "sweep.json")["members"]}
    assert rows["alpha_s0"]["status"] == "failed" and "moved" in rows["alpha_s0"]["error"]
    assert (out / "alpha_s0" / "summary.json").read_bytes() == before
    res = sweep(configs, windows, out, "--resume")  # the original windows resume as before
    assert res.exit_code == 1 and "[alpha_s0] [STAGE ✅] Sweep member — completed earlier" in res.output
