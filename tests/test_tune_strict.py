"""`wf tune --strict` (issue 23): the config tested on outer window k is chosen by a study that read only bars before
k's test start. Perturbing w01's test bars leaves w01's study (every trial value, every validation return, the chosen
config) bit-identical; negative control: the pooled search reads those bars (reported per window, warned, and its
trial value changes). Canary: an inner window whose look-back reaches an earlier test span is excluded by
construction from that window's study (reported in pooled mode)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from backend.config.models import DataConfig
from backend.data.loader import load_bars
from backend.studies.tune.split import seen_test_bars
from backend.studies.tune.strict import strict_plan
from tests.test_tune import inputs, load, tune  # noqa: F401 - the shared fixture and helpers
from tests.test_tune_lookback import _inner, _setup

W01_TEST = ("2019-01-14", "2019-01-16")  # TINY_WINDOWS: w01 tests on 2019-01-14 and 2019-01-15
W02_TEST = ("2019-01-28", "2019-01-30")  # w02 on 2019-01-28 and 2019-01-29


@pytest.fixture(scope="module")
def bars(tmp_path_factory) -> dict[str, Path]:
    """The 15-minute sample as a bar file, and copies whose w01 (w02) test bars, only those, are changed."""
    d = tmp_path_factory.mktemp("strict-bars")
    frame = load_bars(DataConfig(interval="15m")).frame.loc["2018-12-01":"2019-01-31"].reset_index(names="timestamp")
    clean = d / "clean.parquet"
    frame.to_parquet(clean)
    tz, rng = "America/New_York", np.random.default_rng(3)

    def changed(name: str, span: tuple[str, str]) -> Path:
        f = frame.copy()
        inside = (f["timestamp"] >= pd.Timestamp(span[0], tz=tz)) & (f["timestamp"] < pd.Timestamp(span[1], tz=tz))
        k = rng.uniform(0.98, 1.02, int(inside.sum()))
        for col in ("open", "high", "low", "close"):
            f.loc[inside, col] = f.loc[inside, col].to_numpy() * k
        f.loc[inside, "volume"] = f.loc[inside, "volume"].to_numpy() * 3
        f.to_parquet(d / f"{name}.parquet")
        return d / f"{name}.parquet"

    return {"clean": clean, "changed": changed("w01_test_changed", W01_TEST), "w02": changed("w02", W02_TEST)}


def run(inputs, out: Path, data: Path, *extra: object):  # noqa: F811 - inputs is the fixture
    args = ["--config", inputs["config"], "--windows", inputs["two"], "--space", inputs["space"], "--output-dir", out]
    res = tune(*args, "--data", data, "--trials", 1, "--pruner", "none", "--timesteps", 100, "--quiet", *extra)
    assert res.exit_code == 0, res.output
    return res


def trials(out: Path, name: str) -> list[tuple]:
    study = load(out, name)
    return [(t.state, t.value, t.params, t.user_attrs["validation_returns"]) for t in study.trials]


@pytest.fixture(scope="module")
def strict_runs(inputs, bars, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("strict")
    clean = run(inputs, d / "clean", bars["clean"], "--strict", "--no-report")
    changed = run(inputs, d / "changed", bars["changed"], "--strict", "--no-final")
    run(inputs, d / "w02", bars["w02"], "--strict", "--no-final")
    return d, clean, changed


def test_strict_summary_names_each_windows_choice_and_last_bar_read(strict_runs):
    d, clean, _ = strict_runs
    doc = json.loads((d / "clean" / "tune_summary.json").read_text())
    assert doc["mode"] == "strict" and doc["status"] == "completed"
    by_id = {e["id"]: e for e in doc["windows"]}
    assert by_id["w01"]["trials_on"] == ["w01"] and by_id["w02"]["trials_on"] == ["w01", "w02"]
    for e in doc["windows"]:
        assert e["chosen"]["trial"] == 0 and e["reads_only_before_test"] is True
        assert pd.Timestamp(e["last_bar_read"]) < pd.Timestamp(e["test_start"])
        assert (d / "clean" / e["final"]["path"] / "summary.json").exists() and e["final"]["exit_code"] == 0
    assert by_id["w01"]["last_bar_read"] == "2019-01-11T15:45:00-05:00"  # w01's train end, before its test
    assert "strict w01: trial 0 chosen by tiny--space--w01" in clean.output


def test_perturbing_w01s_test_bars_leaves_w01s_study_bit_identical(strict_runs):
    d, _, _ = strict_runs
    assert trials(d / "clean", "tiny--space--w01") == trials(d / "changed", "tiny--space--w01")
    a = json.loads((d / "clean" / "tune_summary.json").read_text())["windows"][0]
    b = json.loads((d / "changed" / "tune_summary.json").read_text())["windows"][0]
    assert a["trial_values"] == b["trial_values"]  # (the config hashes differ only by data.path, the bar file)
    assert (a["chosen"]["trial"], a["chosen"]["params"]) == (b["chosen"]["trial"], b["chosen"]["params"])
    # control: the change did reach the study of w02, whose trials may read w01's test bars (before w02's test)
    assert trials(d / "clean", "tiny--space--w02") != trials(d / "changed", "tiny--space--w02")


def test_negative_control_the_pooled_search_reads_w01s_test_bars(inputs, bars, tmp_path):  # noqa: F811
    clean = run(inputs, tmp_path / "clean", bars["clean"], "--no-final")
    changed = run(inputs, tmp_path / "changed", bars["changed"], "--no-final")
    assert trials(tmp_path / "clean", "tiny--space") != trials(tmp_path / "changed", "tiny--space")
    for res, out in ((clean, tmp_path / "clean"), (changed, tmp_path / "changed")):
        doc = json.loads((out / "tune_summary.json").read_text())
        assert doc["mode"] == "pooled" and list(doc["validation"]["test_bars_seen_by_trials"]) == ["w01"]
        assert "warning: trials read test bars of w01" in res.output


def test_canary_a_lookback_reaching_an_earlier_test_span_is_excluded_by_construction():
    s = SimpleNamespace(**vars(_setup(32, [])), embargo=0)
    assert seen_test_bars(s, _inner()) == {"w01": 31}  # pooled: reported (and warned by wf tune)
    plan = strict_plan(s, _inner())
    assert [w.id for w in plan[0].inner] == ["w01"]  # inner w02 reads w01's test span: not in w01's study
    assert [w.id for w in plan[1].inner] == ["w01", "w02"]  # ... but may serve w02, tested after those bars
    assert all(p.last_read < p.outer.test_start for p in plan)
    assert plan[0].last_read == 199 and plan[1].first_read == 0


def test_dry_run_strict_shows_each_windows_study(inputs, tmp_path):  # noqa: F811
    args = ["--config", inputs["config"], "--windows", inputs["two"], "--space", inputs["space"]]
    res = tune(*args, "--output-dir", tmp_path / "o", "--trials", 1, "--dry-run", "--strict")
    assert res.exit_code == 0, res.output
    assert "last bar read" in res.output and "2019-01-25T15:45:00-05:00" in res.output
    assert not (tmp_path / "o" / "study.db").exists()


def test_perturbing_the_last_windows_test_bars_leaves_every_study_bit_identical(strict_runs):
    d, _, _ = strict_runs
    for name in ("tiny--space--w01", "tiny--space--w02"):
        assert trials(d / "clean", name) == trials(d / "w02", name)
    a = json.loads((d / "clean" / "tune_summary.json").read_text())["windows"]
    b = json.loads((d / "w02" / "tune_summary.json").read_text())["windows"]
    assert [(e["chosen"]["trial"], e["chosen"]["params"]) for e in a] == [
        (e["chosen"]["trial"], e["chosen"]["params"]) for e in b
    ]
