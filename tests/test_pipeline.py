"""Walk-forward runs in-process on tiny configs: artifacts, determinism, replay, resume, interruption."""

import json

import pytest

from backend.training import bundle
from tests.helpers import no_temp_files, strict_json, wf


def run(tiny_config, tiny_windows, out, *extra):
    return wf("run", "--config", tiny_config, "--windows", tiny_windows, "--output-dir", out, "--quiet", *extra)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from tests.conftest import TINY_CONFIG, TINY_WINDOWS

    tmp = tmp_path_factory.mktemp("run")
    cfg, wins = tmp / "tiny.json", tmp / "windows.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    wins.write_text(json.dumps(TINY_WINDOWS))
    res = run(cfg, wins, tmp / "out")
    return res, tmp / "out", cfg, wins


def test_run_writes_the_documented_run_folder(finished_run):
    res, out, _, _ = finished_run
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for marker in (
        "Window Setup",
        "Training [w01]",
        "Evaluation [w01]",
        "Training [w02]",
        "Evaluation [w02]",
        "Summary",
    ):
        assert any(line.startswith("[STAGE ✅] " + marker) for line in lines), marker
    for name in ("summary.json", "config.resolved.json", "windows.resolved.json", "command.txt", "environment.json"):
        assert (out / name).exists(), name
    for wid in ("w01", "w02"):
        for name in (
            "model.zip",
            "obs_stats.npz",
            "vecnormalize.pkl",
            "metadata.json",
            "training_progress.json",
            "evaluation.json",
            "equity.csv",
            "trades.csv",
        ):
            assert (out / wid / name).exists(), f"{wid}/{name}"
        assert list((out / "tensorboard" / wid).glob("events.out.tfevents.*"))
    summary = strict_json(out / "summary.json")
    assert summary["status"] == "completed" and summary["schema_version"] == 1
    assert summary["source"] == "sample" and summary["symbol"] == "SPY" and summary["interval"] == "15m"
    w = summary["windows"][0]
    assert w["status"] == "completed" and w["training"]["timesteps"] == 200 and w["error"] is None
    for key in (
        "total_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "n_trades",
        "turnover",
        "win_rate",
        "exposure",
        "final_equity",
    ):
        assert key in w["evaluation"]
    assert w["evaluation"]["deterministic"] is True
    assert set(w["baselines"]) == {"buy_and_hold", "flat", "random", "momentum"}
    assert w["baselines"]["flat"]["total_return"] == 0.0
    assert set(w["cost_sensitivity"]) == {"0x", "1x", "2x"}
    assert w["cost_sensitivity"]["1x"] == {k: v for k, v in w["evaluation"].items() if k != "deterministic"}
    stats = summary["statistics"]
    assert 0.0 <= stats["psr"] <= 1.0 and stats["n_obs"] == summary["aggregate"]["n_bars"]
    assert stats["sharpe_ci_low"] <= summary["aggregate"]["sharpe"] <= stats["sharpe_ci_high"]
    agg = summary["aggregate"]
    assert agg["n_bars"] == sum(x["test_bars"] for x in summary["windows"]) and agg["windows"] == 2
    meta = strict_json(out / "w01" / "metadata.json")
    assert meta["feature_names"] == ["ret_1", "ret_5", "vol_20", "time_of_day"]
    assert meta["observation_shape"] == [4 * 4 + 3] and meta["interval"] == "15m"
    assert meta["files"]["model.zip"] == bundle.sha256_file(out / "w01" / "model.zip")
    assert summary["windows"][0]["bundle"]["files"] == meta["files"]  # the summary records every bundle's hashes
    assert meta["compatibility"]["algorithm"] == "sac" and meta["compatibility"]["backend"] == "sb3"
    assert meta["data_hash"] == summary["data_hash"] and meta["config_hash"] == summary["config_hash"]
    assert strict_json(out / "w01" / "training_progress.json")["status"] == "completed"
    assert no_temp_files(out)


def test_replay_reproduces_the_summary_exactly(finished_run, tmp_path):
    _, out, _, _ = finished_run
    res = wf("eval", "--model-path", out / "w02" / "model.zip", "--output-dir", tmp_path / "replay", "--quiet")
    assert res.exit_code == 0, res.output
    assert "[STAGE ✅] Evaluation [w02]" in res.output
    replayed = strict_json(tmp_path / "replay" / "evaluation.json")
    summary = strict_json(out / "summary.json")
    assert replayed["evaluation"] == summary["windows"][1]["evaluation"]
    assert replayed["baselines"] == summary["windows"][1]["baselines"]


def test_same_seed_same_metrics(finished_run, tmp_path):
    _, out, cfg, wins = finished_run
    res = run(cfg, wins, tmp_path / "again")
    assert res.exit_code == 0, res.output
    a = strict_json(out / "summary.json")["windows"]
    b = strict_json(tmp_path / "again" / "summary.json")["windows"]
    assert [w["evaluation"] for w in a] == [w["evaluation"] for w in b]
    res = run(cfg, wins, tmp_path / "seed1", "--seed", "1")
    c = strict_json(tmp_path / "seed1" / "summary.json")["windows"]
    assert [w["evaluation"] for w in a] != [w["evaluation"] for w in c]


def test_tampered_bundle_is_never_loaded(finished_run, tmp_path, monkeypatch):
    import shutil

    from backend.training import algorithms

    _, out, _, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    with open(copy / "w01" / "model.zip", "ab") as fh:
        fh.write(b"\0")

    def forbidden(*a, **k):
        raise AssertionError("a tampered bundle was loaded")

    monkeypatch.setattr(algorithms, "load_weights", forbidden)
    res = wf("eval", "--model-path", copy / "w01" / "model.zip", "--quiet")
    assert res.exit_code == 5
    assert "[STAGE ❌] Evaluation" in res.output and "SHA-256" in res.output and "Traceback" not in res.output
    (copy / "w02" / "obs_stats.npz").unlink()
    res = wf("eval", "--model-path", copy / "w02" / "model.zip", "--quiet")
    assert res.exit_code == 5 and "obs_stats.npz" in res.output and "missing" in res.output


def test_bundle_checks_are_not_self_referential(finished_run, tmp_path):
    """Deleting the statistics and their metadata line, or swapping model.zip and editing its hash, is refused."""
    import shutil

    _, out, _, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    meta_path = copy / "w02" / "metadata.json"
    meta = strict_json(meta_path)
    del meta["files"]["obs_stats.npz"]
    (copy / "w02" / "obs_stats.npz").unlink()
    meta_path.write_text(json.dumps(meta))
    res = wf("eval", "--model-path", copy / "w02" / "model.zip", "--quiet")
    assert res.exit_code == 5 and "lists no obs_stats.npz" in res.output and "normalize_obs" in res.output
    # a swapped model.zip with its hash edited into metadata.json: the run's summary still knows the original
    shutil.copy(out / "w02" / "metadata.json", meta_path)
    shutil.copy(out / "w02" / "obs_stats.npz", copy / "w02" / "obs_stats.npz")
    shutil.copy(copy / "w01" / "model.zip", copy / "w02" / "model.zip")
    meta = strict_json(meta_path)
    meta["files"]["model.zip"] = bundle.sha256_file(copy / "w02" / "model.zip")
    meta_path.write_text(json.dumps(meta))
    res = wf("eval", "--model-path", copy / "w02" / "model.zip", "--quiet")
    assert res.exit_code == 5 and "summary.json recorded" in res.output


def test_replay_refuses_time_travel(finished_run, tmp_path):
    _, out, _, _ = finished_run
    res = wf("eval", "--model-path", out / "w02" / "model.zip", "--window", "w01", "--output-dir", tmp_path / "r")
    assert res.exit_code == 5, res.output
    assert "2019-01-16" in res.output and "2019-01-14" in res.output and "w01" in res.output
    assert not (tmp_path / "r").exists()


def test_mismatched_config_names_each_field(finished_run, tmp_path):
    _, out, _, _ = finished_run
    cfg = strict_json(out / "config.resolved.json")
    cfg["env"]["lookback"] = 6
    p = tmp_path / "other.json"
    p.write_text(json.dumps(cfg))
    res = wf("eval", "--model-path", out / "w01" / "model.zip", "--config", p, "--quiet")
    assert res.exit_code == 5
    assert "lookback: bundle 4 vs now 6" in res.output and "observation_shape: bundle [19] vs now [27]" in res.output


def test_existing_folder_needs_resume_or_overwrite(finished_run):
    _, out, cfg, wins = finished_run
    res = run(cfg, wins, out)
    assert res.exit_code == 2 and "--resume" in res.output


def test_interrupt_then_resume(tiny_config, tiny_windows, tmp_path, monkeypatch):
    from backend.training import callbacks, trainer

    real_step = callbacks.ProgressFileCallback._on_step
    state = {"interrupted": False}

    def ctrl_c_inside_learn(self):  # Ctrl-C arrives while SAC.learn runs the second window
        if self.window_id == "w02" and self.n_calls == 60 and not state["interrupted"]:
            state["interrupted"] = True
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(callbacks.ProgressFileCallback, "_on_step", ctrl_c_inside_learn)
    out = tmp_path / "out"
    res = run(tiny_config, tiny_windows, out)
    assert res.exit_code == 130
    assert "[STAGE ❌] Training [w02] — interrupted" in res.output
    summary = strict_json(out / "summary.json")
    assert summary["status"] == "interrupted"
    assert [w["status"] for w in summary["windows"]] == ["completed", "interrupted"]
    assert summary["windows"][0]["evaluation"]["n_bars"] > 0
    assert not (out / "w02" / "metadata.json").exists()  # no bundle claims to be finished
    assert no_temp_files(out)
    w01_model = (out / "w01" / "model.zip").read_bytes()

    real_train = trainer.train_window
    trained = []

    def record(cfg, market, features, window, *a, **k):
        trained.append(window.id)
        return real_train(cfg, market, features, window, *a, **k)

    monkeypatch.setattr(trainer, "train_window", record)
    res = run(tiny_config, tiny_windows, out, "--resume")
    assert res.exit_code == 0, res.output
    assert trained == ["w02"]  # w01 was not retrained
    assert "Training [w01] — skipped" in res.output
    assert (out / "w01" / "model.zip").read_bytes() == w01_model
    assert strict_json(out / "summary.json")["status"] == "completed"


def test_failed_window_is_recorded_and_others_go_on(tiny_config, tiny_windows, tmp_path, monkeypatch):
    from backend.training import trainer

    real = trainer.train_window

    def fail_w01(cfg, market, features, window, *a, **k):
        if window.id == "w01":
            raise RuntimeError("boom")
        return real(cfg, market, features, window, *a, **k)

    monkeypatch.setattr(trainer, "train_window", fail_w01)
    res = run(tiny_config, tiny_windows, tmp_path / "out")
    assert res.exit_code == 1
    assert "[STAGE ❌] Training [w01] — RuntimeError: boom" in res.output
    summary = strict_json(tmp_path / "out" / "summary.json")
    assert summary["status"] == "partial"
    assert summary["windows"][0]["error"]["message"] == "boom"
    assert summary["windows"][1]["status"] == "completed"


def test_no_space_while_saving_exits_6_and_leaves_no_model(tiny_config, tiny_windows, tmp_path, monkeypatch):
    import errno

    from stable_baselines3 import SAC

    def full_disk(self, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SAC, "save", full_disk)
    out = tmp_path / "out"
    res = run(tiny_config, tiny_windows, out)
    assert res.exit_code == 6
    assert "[STAGE ❌] Training [w01] — ArtifactError:" in res.output and "No space left on device" in res.output
    assert "[STAGE ❌] Summary" in res.output and "(status failed)" in res.output
    assert not (out / "w01" / "model.zip").exists() and not (out / "w01" / "metadata.json").exists()
    summary = strict_json(out / "summary.json")
    assert summary["status"] == "failed" and summary["windows"][0]["error"]["type"] == "ArtifactError"
    assert no_temp_files(out)


def test_atomic_write_failure_leaves_previous_file(tmp_path, monkeypatch):
    import os

    from backend.core.errors import ArtifactError
    from backend.core.jsonio import write_json

    target = tmp_path / "s.json"
    write_json(target, {"v": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ArtifactError, match="No space left"):
        write_json(target, {"v": 2})
    assert strict_json(target) == {"v": 1} and no_temp_files(tmp_path)


def test_non_finite_reward_stops_training_with_exit_4(tiny_config, tiny_windows, tmp_path, monkeypatch):
    from backend.envs.intraday_env import IntradayTradingEnv

    real = IntradayTradingEnv.step
    count = {"n": 0}

    def nan_at_30(self, action):
        obs, r, te, tr, info = real(self, action)
        count["n"] += 1
        return obs, (float("nan") if count["n"] == 30 else r), te, tr, info

    monkeypatch.setattr(IntradayTradingEnv, "step", nan_at_30)
    res = run(
        tiny_config,
        tiny_windows,
        tmp_path / "out",
        "--set",
        "training.total_timesteps=60",
        "--set",
        "sac.learning_starts=10",
    )
    # first window fails at step 30, the second trains (the counter has passed 30)
    assert "[STAGE ❌] Training [w01] — TrainingError: non-finite reward at step 30 (check: reward)" in res.output
    assert res.exit_code == 1
    summary = strict_json(tmp_path / "out" / "summary.json")
    assert summary["windows"][0]["status"] == "failed" and summary["windows"][1]["status"] == "completed"


def test_debug_shows_traceback(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"sac": {"gama": 0.9}}')
    quiet = wf("run", "--config", p, "--windows", "tmp/mini_window.json", "--dry-run")
    loud = wf("run", "--config", p, "--windows", "tmp/mini_window.json", "--dry-run", "--debug")
    assert quiet.exit_code == loud.exit_code == 2
    assert "Traceback" not in quiet.output and "Traceback" in loud.output


def test_seeds_report_the_spread(tiny_config, tiny_windows, tmp_path):
    out = tmp_path / "seeds"
    res = run(tiny_config, tiny_windows, out, "--seeds", "3")
    assert res.exit_code == 0, res.output
    assert "[s2] [STAGE ✅] Summary" in res.output and "[STAGE ✅] Seeds — 3 seeds" in res.output
    top = strict_json(out / "summary.json")
    assert top["kind"] == "multi_seed" and top["seeds"] == [0, 1, 2] and top["aggregate"] is None
    per_seed = [strict_json(out / f"s{k}" / "summary.json")["aggregate"]["sharpe"] for k in range(3)]
    sp = top["aggregate_spread"]["sharpe"]
    assert sp["values"] == per_seed and sp["min"] == min(per_seed) and sp["max"] == max(per_seed)
    assert sp["mean"] == pytest.approx(sum(per_seed) / 3) and sp["std"] > 0
    assert set(top["windows"][0]["seed_spread"]["total_return"]) >= {"mean", "std", "min", "max"}
    assert wf("run", "--seeds", "2", "--seed", "1", "--windows", tiny_windows, "--dry-run").exit_code == 2


def test_warm_start_continues_from_the_previous_window(tiny_config, tiny_windows, tmp_path):
    out = tmp_path / "warm"
    res = run(tiny_config, tiny_windows, out, "--set", "training.warm_start=true")
    assert res.exit_code == 0, res.output
    m1 = strict_json(out / "w01" / "metadata.json")
    m2 = strict_json(out / "w02" / "metadata.json")
    assert m1["training"]["warm_start_from"] is None
    assert m2["training"]["warm_start_from"] == "w01"
    assert "warm start: the windows form a chain and train in order (w01 -> w02)" in res.output
    assert "warm start from w01" in res.output
    # normalisation is refitted on each window's own train span
    import numpy as np

    s1 = np.load(out / "w01" / "obs_stats.npz")["feature_mean"]
    s2 = np.load(out / "w02" / "obs_stats.npz")["feature_mean"]
    assert not (s1 == s2).all()


def test_warm_start_follows_time_not_file_order(tiny_config, tmp_path):
    from tests.conftest import TINY_WINDOWS

    reversed_file = tmp_path / "reversed.json"
    reversed_file.write_text(json.dumps(list(reversed(TINY_WINDOWS))))
    out = tmp_path / "warm"
    res = run(tiny_config, reversed_file, out, "--set", "training.warm_start=true")
    assert res.exit_code == 0, res.output
    assert strict_json(out / "w01" / "metadata.json")["training"]["warm_start_from"] is None
    assert strict_json(out / "w02" / "metadata.json")["training"]["warm_start_from"] == "w01"


def test_gates_are_reported_per_window_and_in_aggregate(tiny_config, tiny_windows, tmp_path):
    out = tmp_path / "gated"
    res = run(
        tiny_config,
        tiny_windows,
        out,
        "--set",
        "evaluation.gates.min_trades=1000",
        "--set",
        "evaluation.gates.max_drawdown=0.5",
        "--set",
        "evaluation.gates.beat_buy_and_hold=true",
    )
    assert res.exit_code == 0, res.output
    summary = strict_json(out / "summary.json")
    g = summary["windows"][0]["gates"]
    assert g["checks"]["min_trades"] is False and g["checks"]["max_drawdown"] is True and g["passed"] is False
    assert "beat_buy_and_hold" in g["checks"]
    assert summary["gates"] == {"windows_passed": 0, "windows_checked": 2}


def test_trades_csv_compounds_to_the_equity_curve_with_forced_exits(tiny_config, tiny_windows, tmp_path):
    """Every bar's net return belongs to one trade or to flat time: the trades compound to the equity total."""
    import numpy as np
    import pandas as pd

    out = tmp_path / "forced"
    res = run(tiny_config, tiny_windows, out, "--set", "env.forced_exit_minutes=240", "--set", "env.allow_short=true")
    assert res.exit_code == 0, res.output
    for wid in ("w01", "w02"):
        trades = pd.read_csv(out / wid / "trades.csv", float_precision="round_trip")
        equity = pd.read_csv(out / wid / "equity.csv", float_precision="round_trip")
        assert len(trades) > 0
        total = float(np.prod(1.0 + equity["net_return"].to_numpy()) - 1.0)
        assert float(np.prod(1.0 + trades["return"].to_numpy()) - 1.0) == pytest.approx(total, rel=1e-12, abs=1e-15)
        ev = strict_json(out / "summary.json")["windows"][int(wid[-1]) - 1]["evaluation"]
        assert ev["n_trades"] == len(trades) and ev["win_rate"] == pytest.approx(float((trades["return"] > 0).mean()))
        # flat after 4 hours: no position and no return after 13:30 New York
        stamps = pd.to_datetime(equity["timestamp"], utc=True).dt.tz_convert("America/New_York")
        late = (stamps.dt.hour * 60 + stamps.dt.minute) > 13 * 60 + 30
        assert (equity.loc[late, "position"] == 0).all() and (equity.loc[late, "net_return"] == 0).all()


def test_overlapping_automatic_windows_are_refused(tiny_config):
    res = wf(
        "run",
        "--config",
        tiny_config,
        "--start",
        "2019-01-02",
        "--end",
        "2019-02-28",
        "--train-days",
        "5",
        "--test-days",
        "3",
        "--step-days",
        "1",
        "--dry-run",
    )
    assert res.exit_code == 2 and "--step-days" in res.output and "overlap" in res.output, res.output
