"""wf tune: space validation, nested validation windows, a tiny study end to end, resume, pruning,
Ctrl-C, and proof that trials never read the test spans."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from backend.cli.tune import tune_command
from backend.config.models import DataConfig, validate
from backend.data.loader import load_bars
from backend.run.options import SetupOptions
from backend.run.window_setup import setup
from backend.studies.tune.study import seen_test_bars, validation_windows
from tests.conftest import TINY_CONFIG, TINY_WINDOWS
from tests.helpers import strict_json

SPACE = {
    "sac.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "sac.gamma": {"type": "categorical", "choices": [0.9, 0.99]},
    "sac.net_arch": {"type": "categorical", "choices": [[8], [8, 8]]},
}


def tune(*args: object):
    env = {"WF_TUNE_STORAGE": None}  # the default storage in the output folder, whatever the shell says
    return CliRunner().invoke(tune_command, [str(a) for a in args], catch_exceptions=False, env=env)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tune-inputs")
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["training"]["tensorboard"] = False
    paths = {
        "config": d / "tiny.json",
        "one": d / "one_window.json",
        "two": d / "two_windows.json",
        "space": d / "space.json",
    }
    paths["config"].write_text(json.dumps(cfg))
    paths["one"].write_text(json.dumps(TINY_WINDOWS[:1]))
    paths["two"].write_text(json.dumps(TINY_WINDOWS))
    paths["space"].write_text(json.dumps(SPACE))
    return paths


def base_args(inputs: dict[str, Path], out: Path, windows: str = "one", space: Path | None = None) -> list[object]:
    return [
        "--config",
        inputs["config"],
        "--windows",
        inputs[windows],
        "--space",
        space or inputs["space"],
        "--output-dir",
        out,
        "--quiet",
        "--no-report",
    ]


def load(out: Path, name: str = "tiny--space") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


# ------------------------------------------------------------------------------------------ the space file

BAD_SPACES = [
    ({"sac.learnig_rate": {"type": "float", "low": 1e-4, "high": 1e-3}}, "did you mean 'sac.learning_rate'"),
    ({"sac": {"type": "float", "low": 1e-4, "high": 1e-3}}, "'sac' is a config section"),
    ({"data.interval": {"type": "categorical", "choices": ["5m", "15m"]}}, "'data.interval': data settings"),
    ({"sac.gamma": {"type": "uniform", "low": 0.9, "high": 0.99}}, "'sac.gamma': unknown type"),
    ({"sac.gamma": {"type": "float", "low": 0.99, "high": 0.9}}, "'sac.gamma': low (0.99) must be below high"),
    ({"sac.gamma": {"type": "float", "low": 0.9, "high": 0.9}}, "'sac.gamma': low (0.9) must be below high"),
    ({"sac.tau": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "'sac.tau': a log scale needs low > 0"),
    ({"sac.batch_size": {"type": "int", "low": 64, "high": 250, "step": 64}}, "'sac.batch_size': step 64 does not"),
    ({"sac.tau": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.3}}, "'sac.tau': step 0.3 does not divide"),
    ({"sac.gamma": {"type": "categorical", "choices": []}}, "'sac.gamma': 'choices' must be a non-empty list"),
    ({"sac.gamma": {"type": "float", "low": 0.9, "high": 0.99, "lg": True}}, "did you mean 'log'"),
    ({"sac.batch_size": {"type": "int", "low": 32.5, "high": 64}}, "'sac.batch_size': 'low' must be an integer"),
    ({"sac.gamma": {"type": "float", "low": 0.9, "high": 1.5}}, "'sac.gamma': high 1.5 is rejected by the config"),
    ({"env.reward": {"type": "categorical", "choices": ["pnl", "sharpe"]}}, "'env.reward': choice \"sharpe\""),
    (
        {"sac.batch_size": {"type": "float", "low": 32, "high": 64}},
        "low 32.0 is rejected by the config: 'sac.batch_size' = 32.0",
    ),
    ({"sac.learning_starts": {"type": "int", "low": 10, "high": 500}}, "'sac.learning_starts': high 500"),
    ({"env.features": {"type": "categorical", "choices": [["ret_1"], ["ret_1", "ret_7"]]}}, "'ret_7'; did you mean"),
    ([], "expected a non-empty JSON object"),
]


@pytest.mark.parametrize(("space", "named"), BAD_SPACES, ids=[str(i) for i in range(len(BAD_SPACES))])
def test_bad_space_exits_2_naming_the_key(inputs, tmp_path, space, named):
    path = tmp_path / "bad_space.json"
    path.write_text(json.dumps(space))
    out = tmp_path / "out"
    res = tune(*base_args(inputs, out, space=path), "--trials", 1)
    assert res.exit_code == 2, res.output
    assert named in res.output
    assert not (out / "study.db").exists()  # nothing ran, no study was created


def test_example_space_is_valid(inputs, tmp_path):
    example = Path(__file__).resolve().parents[1] / "configs" / "tune_space_example.json"
    res = tune(*base_args(inputs, tmp_path / "out", space=example), "--trials", 1, "--dry-run")
    assert res.exit_code == 0, res.output


def test_bad_storage_and_objective_exit_2(inputs, tmp_path):
    res = tune(*base_args(inputs, tmp_path / "a"), "--trials", 1, "--storage", "nosuchdialect://x/y")
    assert res.exit_code == 2 and "--storage nosuchdialect://x/y: cannot open" in res.output
    res = tune(*base_args(inputs, tmp_path / "b"), "--trials", 1, "--objective", "shrape")
    assert res.exit_code == 2 and "use one of sharpe" in res.output


# ------------------------------------------------------------------------------------------ validation windows


def test_validation_windows_stay_inside_the_train_span(inputs, tmp_path):
    gapped = [{**TINY_WINDOWS[0], "train_end": "2019-01-10"}, {**TINY_WINDOWS[1], "train_end": "2019-01-24"}]
    doc = {"embargo_bars": 3, "windows": gapped}  # train spans end a session before the test spans
    path = tmp_path / "embargo.json"
    path.write_text(json.dumps(doc))
    s = setup(SetupOptions(config=str(inputs["config"]), windows=str(path)))
    for days in (None, 2):
        for outer, inner in zip(s.windows, validation_windows(s, days), strict=True):
            sid = s.market.session_id
            v = days or max(1, outer.train_sessions // 5)
            assert inner.test_sessions == v == len(np.unique(sid[inner.test_start : inner.test_end]))
            assert outer.train_start == inner.train_start < inner.train_end
            assert inner.test_start - inner.train_end == 3  # the window's embargo
            assert inner.test_end == outer.train_end <= outer.test_start  # never a test bar
            assert sid[inner.test_start] != sid[inner.test_start - 1]  # validation starts at a session
            assert inner.train_sessions == len(np.unique(sid[inner.train_start : inner.train_end]))


def test_rolling_windows_score_every_validation_bar_once(inputs, tmp_path):
    for step, sessions in ((2, [2] * 8), (1, [2] + [1] * 17)):  # a fifth of 10 sessions = 2; 1 = the step
        opts = SetupOptions(
            config=str(inputs["config"]), train_days=10, test_days=step, start="2019-01-02", end="2019-01-31"
        )
        s = setup(opts)
        inner = validation_windows(s, None)
        assert [w.test_sessions for w in inner] == sessions[: len(inner)]
        assert all(a.test_end <= b.test_start for a, b in itertools.pairwise(inner))
        assert all(w.test_end == o.train_end for w, o in zip(inner, s.windows, strict=True))
        assert seen_test_bars(s, inner)  # later train spans cover earlier test spans: reported, not hidden
    args = ["--config", inputs["config"], "--space", inputs["space"], "--output-dir", tmp_path / "o", "--trials", 1]
    rolling = ["--train-days", 10, "--test-days", 1, "--start", "2019-01-02", "--end", "2019-01-31"]
    res = tune(*args, *rolling, "--dry-run")  # the default shortens overlapping validation spans
    assert res.exit_code == 0, res.output
    assert "test bars of w01 (26 bars)" in res.output
    res = tune(*args, *rolling, "--dry-run", "--validation-days", 2)
    assert res.exit_code == 2 and "validation sessions of w01 and w02 overlap" in res.output


def test_a_train_span_too_short_to_split_exits_3(inputs, tmp_path):
    res = tune(*base_args(inputs, tmp_path / "out"), "--trials", 1, "--validation-days", 8)
    assert res.exit_code == 3, res.output
    assert "window w01: its train span holds 8 session(s)" in res.output
    assert "--validation-days 7 or less" in res.output


def test_dry_run_shows_the_split_and_creates_no_study(inputs, tmp_path):
    res = tune(*base_args(inputs, tmp_path / "out", windows="two"), "--trials", 1, "--dry-run")
    assert res.exit_code == 0, res.output
    assert "test (final run only)" in res.output and "2019-01-11 -> 2019-01-11" in res.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ a study end to end


@pytest.fixture(scope="module")
def study(inputs, tmp_path_factory):
    """3 trials with the final run, then resumed to 5: (out, output of both runs, trials after the first)."""
    out = tmp_path_factory.mktemp("tune") / "study"
    first = tune(*base_args(inputs, out), "--trials", 3)
    after_three = [(t.number, t.state, t.value, t.params) for t in load(out).trials]
    refused = tune(*base_args(inputs, out), "--trials", 5)
    second = tune(*base_args(inputs, out), "--trials", 5, "--resume")
    return out, first, refused, second, after_three


def test_three_trials_then_the_final_run(study):
    out, first, _, _, after_three = study
    assert first.exit_code == 0, first.output
    assert len(after_three) == 3 and all(t[1] == optuna.trial.TrialState.COMPLETE for t in after_three)
    assert "[STAGE ✅] Search — 3 trial(s) tried: 3 completed" in first.output
    assert "DSR" in first.output and "with N = 3 trials" in first.output
    for n in range(3):
        assert (out / "trials" / str(n) / "w01" / "model.zip").exists()
        assert strict_json(out / "trials" / str(n) / "summary.json")["tune_trial"]["number"] == n


def test_an_existing_study_needs_resume(study):
    _, _, refused, _, _ = study
    assert refused.exit_code == 2
    assert "already holds 3 trial(s); pass --resume" in refused.output


def test_resume_to_five_is_readable_with_load_study(study):
    out, _, _, second, after_three = study
    assert second.exit_code == 0, second.output
    trials = load(out).trials
    assert len(trials) == 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [(t.number, t.state, t.value, t.params) for t in trials[:3]] == after_three  # untouched
    for t in trials:
        assert Path(t.user_attrs["run_dir"]).is_dir()
        assert validate(json.loads(Path(t.user_attrs["config"]).read_text())).sac.gamma in (0.9, 0.99)
        assert t.user_attrs["validation_bars"] == 26  # one validation session of 15-minute bars
    summary = strict_json(out / "tune_summary.json")
    assert summary["status"] == "completed"
    assert summary["trials"]["tried"] == 5 and len(summary["trial_list"]) == 5
    assert summary["deflated_sharpe"]["n_trials"] == 5


def test_the_final_run_holds_the_chosen_configs_test_evaluation_and_dsr(study):
    out, _, _, _, _ = study
    best = load(out).best_trial
    best_config = strict_json(out / "best_config.json")
    assert best_config == strict_json(out / "final" / "config.resolved.json")
    assert best_config["sac"]["learning_rate"] == best.params["sac.learning_rate"]
    final = strict_json(out / "final" / "summary.json")
    assert final["status"] == "completed" and final["config_hash"] == best.user_attrs["config_hash"]
    w = final["windows"][0]
    assert (w["test_start"][:10], w["test_end"][:10]) == ("2019-01-14", "2019-01-15")  # the outer test span
    assert w["evaluation"]["n_bars"] == 52 and (out / "final" / "w01" / "equity.csv").exists()
    tuned = final["tune"]
    assert tuned["trial"] == best.number and tuned["n_trials"] == 5
    dsr = tuned["deflated_sharpe"]
    assert dsr["n_trials"] == 5 and dsr["n_obs"] == 52 and dsr["n_variance_trials"] == 5
    assert 0.0 <= dsr["dsr"] <= 1.0
    assert tuned["pbo"]["status"] == "refused"  # 26 validation bars cannot fill 8 blocks of 20


def test_another_study_in_the_same_folder_is_refused(inputs, study):
    out = study[0]
    res = tune(*base_args(inputs, out), "--trials", 5, "--resume", "--study", "other")
    assert res.exit_code == 2 and "holds the trials of study 'tiny--space'" in res.output


# ------------------------------------------------------------------------------------------ pruning and Ctrl-C


def test_the_median_pruner_stops_a_hopeless_trial(inputs, tmp_path):
    space = tmp_path / "costs.json"
    space.write_text(json.dumps({"env.costs.commission_bps": {"type": "categorical", "choices": [0.0, 2000.0]}}))
    out = tmp_path / "out"
    out.mkdir()
    storage = f"sqlite:///{out / 'study.db'}"
    seeded = optuna.create_study(study_name="costs", storage=storage, direction="maximize")
    seeded.enqueue_trial({"env.costs.commission_bps": 0.0})  # a sane trial first,
    seeded.enqueue_trial({"env.costs.commission_bps": 2000.0})  # then 20 % per trade, long only
    args = base_args(inputs, out, windows="two", space=space)
    res = tune(*args, "--study", "costs", "--trials", 2, "--objective", "total_return", "--pruner-startup-trials", 1,
               "--set", "env.allow_short=false", "--no-final")  # fmt: skip
    assert res.exit_code == 0, res.output
    good, bad = load(out, "costs").trials
    assert good.state == optuna.trial.TrialState.COMPLETE and len(good.intermediate_values) == 2
    assert bad.state == optuna.trial.TrialState.PRUNED and list(bad.intermediate_values) == [0]
    summary = strict_json(out / "trials" / "1" / "summary.json")
    assert summary["status"] == "pruned"
    assert [w["status"] for w in summary["windows"]] == ["completed", "pruned"]
    assert not (out / "trials" / "1" / "w02" / "model.zip").exists()  # the second window never trained
    assert strict_json(out / "tune_summary.json")["trials"] == {
        "tried": 2, "completed": 1, "pruned": 1, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0
    }  # fmt: skip


def test_ctrl_c_keeps_finished_trials_and_resumes(inputs, tmp_path, monkeypatch):
    from backend.training import callbacks

    real_step = callbacks.ProgressFileCallback._on_step
    calls = {"n": 0}

    def ctrl_c_in_the_second_trial(self):
        if self.n_calls == 60:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(callbacks.ProgressFileCallback, "_on_step", ctrl_c_in_the_second_trial)
    out = tmp_path / "out"
    res = tune(*base_args(inputs, out), "--trials", 2, "--no-final")
    assert res.exit_code == 130, res.output
    assert "rerun with --resume" in res.output
    first = load(out).trials
    assert [t.state for t in first] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert first[1].user_attrs["interrupted"] is True
    assert strict_json(out / "tune_summary.json")["status"] == "interrupted"
    res = tune(*base_args(inputs, out), "--trials", 2, "--no-final", "--resume")
    assert res.exit_code == 0, res.output
    trials = load(out).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]  # the interrupted one is not counted
    assert trials[0].value == first[0].value
    assert strict_json(out / "tune_summary.json")["trials"]["interrupted"] == 1


# ------------------------------------------------------------------------------------------ the test spans


@pytest.fixture(scope="module")
def bar_files(tmp_path_factory) -> dict[str, Path]:
    """The 15-minute sample as a bar file, and copies whose future bars (from a span's start on) are changed."""
    d = tmp_path_factory.mktemp("bars")
    frame = load_bars(DataConfig(interval="15m")).frame.loc["2018-12-01":"2019-01-31"].reset_index(names="timestamp")
    rng = np.random.default_rng(7)

    def write(name: str, start: str | None) -> Path:
        f = frame.copy()
        if start is not None:
            late = (f["timestamp"] >= pd.Timestamp(start, tz="America/New_York")).to_numpy()
            k = rng.uniform(0.98, 1.02, late.sum())
            for col in ("open", "high", "low", "close"):
                f.loc[late, col] = f.loc[late, col].to_numpy() * k
            f.loc[late, "volume"] = f.loc[late, "volume"].to_numpy() * 3
        path = d / f"{name}.parquet"
        f.to_parquet(path)
        return path

    return {
        "clean": write("clean", None),
        "test_changed": write("test_changed", "2019-01-14"),  # the test span of w01 and everything after
        "validation_changed": write("validation_changed", "2019-01-11"),  # w01's validation session on
    }


def _values(inputs, tmp_path, data: Path, name: str, trials: int):
    out = tmp_path / name
    res = tune(*base_args(inputs, out), "--data", data, "--trials", trials, "--no-final", "--pruner", "none")
    assert res.exit_code == 0, res.output
    study = load(out)
    return [(t.state, t.value, t.params, t.user_attrs["validation_returns"]) for t in study.trials], study


def test_trial_values_do_not_change_when_only_the_test_span_changes(inputs, tmp_path, bar_files):
    clean, a = _values(inputs, tmp_path, bar_files["clean"], "clean", 2)
    changed, b = _values(inputs, tmp_path, bar_files["test_changed"], "test_changed", 2)
    assert a.user_attrs["wf_tune"]["data_hash"] != b.user_attrs["wf_tune"]["data_hash"]  # the bars did change
    assert clean == changed  # bit for bit: states, values, sampled params, every validation bar's return
    control, _ = _values(inputs, tmp_path, bar_files["validation_changed"], "validation_changed", 1)
    assert control[0][1] != clean[0][1]  # negative control: changing validation bars does change the score
