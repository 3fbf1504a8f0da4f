"""Per-config results with uncertainty: the sweep table, sweep.json / sweep.csv, `wf compare` (table, CSV,
the long per-window export), `wf ls` and `wf diff`, on a real tiny sweep, a multi-seed run and a single run."""

from __future__ import annotations

import io
import json
import math
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from backend.cli.inspect import compare_command, diff_command, ls_command
from backend.studies import compare
from tests.conftest import TINY_CONFIG, TINY_WINDOWS
from tests.helpers import strict_json, wf


def invoke(command, *args):
    res = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """runs/sweep (alpha, beta_lower_learning_rate × seeds 0, 1; 2 windows), runs/seeds (alpha × 2 seeds,
    1 window) and runs/single (alpha, 1 window, 300 steps)."""
    root = tmp_path_factory.mktemp("lab")
    cfg = root / "cfgs"
    cfg.mkdir()
    (cfg / "alpha.json").write_text(json.dumps(TINY_CONFIG))
    beta = json.loads(json.dumps(TINY_CONFIG))
    beta["sac"]["learning_rate"] = 1e-4
    (cfg / "beta_lower_learning_rate_for_a_long_name.json").write_text(json.dumps(beta))
    (root / "w2.json").write_text(json.dumps(TINY_WINDOWS))
    (root / "w1.json").write_text(json.dumps(TINY_WINDOWS[:1]))
    runs = root / "runs"
    common = ("--workers", "2", "--no-report", "--quiet")
    sweep = wf(
        "sweep",
        "--configs",
        cfg / "alpha.json",
        cfg / "beta_lower_learning_rate_for_a_long_name.json",
        "--seeds",
        "2",
        "--windows",
        root / "w2.json",
        "--output-dir",
        runs / "sweep",
        *common,
    )
    assert sweep.exit_code == 0, sweep.output
    seeds = wf(
        "run", "--config", cfg / "alpha.json", "--windows", root / "w1.json", "--seeds", "2",
        "--output-dir", runs / "seeds", *common,
    )  # fmt: skip
    assert seeds.exit_code == 0, seeds.output
    single = wf(
        "run", "--config", cfg / "alpha.json", "--windows", root / "w1.json", "--timesteps", "300",
        "--output-dir", runs / "single", "--no-report", "--quiet",
    )  # fmt: skip
    assert single.exit_code == 0, single.output
    return {"root": root, "runs": runs, "sweep_output": sweep.output}


BETA = "beta_lower_learning_rate_for_a_long_name"


def test_sweep_rows_carry_per_config_uncertainty_and_the_config_diff(lab):
    doc = strict_json(lab["runs"] / "sweep" / "sweep.json")
    rows = {r["name"]: r for r in doc["members"]}
    assert set(rows) == {"alpha_s0", "alpha_s1", f"{BETA}_s0", f"{BETA}_s1"}
    for cfg in ("alpha", BETA):
        a, b = rows[f"{cfg}_s0"], rows[f"{cfg}_s1"]
        sharpes = [a["oos_sharpe"], b["oos_sharpe"]]
        mean, sd = sum(sharpes) / 2, abs(sharpes[0] - sharpes[1]) / math.sqrt(2)
        half = stats.t.ppf(0.975, 1) * sd / math.sqrt(2)
        for r in (a, b):
            assert r["config"] == cfg and r["config_seeds"] == 2 and r["source"] == str(lab["runs"] / "sweep")
            assert r["config_sharpe_mean"] == pytest.approx(mean) and r["config_sharpe_sd"] == pytest.approx(sd)
            assert r["config_ci_method"] == "t over seeds"
            assert r["config_sharpe_ci_low"] == pytest.approx(mean - half)
            assert r["config_sharpe_ci_high"] == pytest.approx(mean + half)
            assert r["steps"] == 200 and r["windows"] == 2 and r["algorithm"] == "sac"
            assert r["collapsed_windows"] is not None and r["dsr_n_trials"] == 4
    assert rows["alpha_s0"]["config_diff"] == "(base)"
    assert rows[f"{BETA}_s1"]["config_diff"] == "sac.learning_rate=0.0001"  # the seed is not a difference
    sel = {c["name"]: c for c in doc["selection"]["configs"]}
    assert rows["alpha_s0"]["config_verdict"] == sel["alpha"]["verdict"]
    assert rows["alpha_s0"]["config_iqm"] == sel["alpha"]["iqm"]["value"]
    assert sum(r["config_best"] for r in rows.values()) == 2  # both seeds of the best config
    assert doc["comparability"] == []
    csv = pd.read_csv(lab["runs"] / "sweep" / "sweep.csv")
    assert len(csv) == 4 and {"config_sharpe_mean", "config_diff", "collapsed_windows", "dsr_n_trials"} <= set(csv)
    assert csv.groupby("config").oos_sharpe.mean().to_dict() == pytest.approx(
        csv.groupby("config").config_sharpe_mean.first().to_dict()
    )


def test_the_sweep_prints_configs_with_mean_sd_ci_and_diff_and_full_names(lab):
    out = lab["sweep_output"]
    table = out[out.index("Configs") :]
    assert "Sharpe mean ± sd" in table and "95% CI" in table and "changes from base" in table
    beta_line = next(line for line in table.splitlines() if line.startswith(BETA + " "))
    assert " ± " in beta_line and "[" in beta_line and beta_line.rstrip().endswith("sac.learning_rate=0.0001")
    assert f"{BETA}_s1" in table  # the member's full name, seed suffix included
    assert "DSR(N=4)" in table
    assert "selection: best config" in out


def test_compare_groups_seeds_flags_incomparable_rows_and_names_sources(lab):
    runs = lab["runs"]
    out = invoke(compare_command, runs / "sweep", runs / "seeds", runs / "single")
    configs = out[: out.index("Members")]
    assert "#1" in configs and "#2" in configs and "#3" in configs
    assert f"sources: #1 {runs / 'sweep'}  #2 {runs / 'seeds'}  #3 {runs / 'single'}" in out
    seed_rows = [line for line in out.splitlines() if line.startswith("seeds/s")]
    assert len(seed_rows) == 2  # a multi-seed run is one row per seed ...
    alpha_seeds = next(line for line in configs.splitlines() if line.startswith("alpha ") and "#2" in line)
    assert "2/2" in alpha_seeds and " ± " in alpha_seeds  # ... grouped into one config with mean ± sd
    single = next(line for line in configs.splitlines() if "#3" in line)
    assert "] b" in single and "training.total_timesteps=300" in single  # one seed: the run's bootstrap CI
    assert "warning: rows are not comparable — windows differ (windows hash)" in out
    assert "warning: rows are not comparable — training steps per window differ: 200" in out
    assert "300 (single)" in out
    assert "warning: rows are not comparable — window counts differ" in out


def test_compare_csv_json_and_the_long_export(lab):
    runs = lab["runs"]
    rows = json.loads(invoke(compare_command, runs / "sweep", runs / "seeds", "--json"))
    assert len(rows) == 6 and {r["source"] for r in rows} == {str(runs / "sweep"), str(runs / "seeds")}
    flat = pd.read_csv(io.StringIO(invoke(compare_command, runs / "sweep", "--csv")))
    assert len(flat) == 4 and list(flat["oos_sharpe"]) == sorted(flat["oos_sharpe"], reverse=True)
    text = invoke(compare_command, runs / "sweep", runs / "seeds", "--long", "--csv")
    long = pd.read_csv(io.StringIO(text))
    assert len(long) == 4 * 2 + 2 * 1  # member × seed × window
    assert not long.duplicated(["source", "member", "window"]).any()
    metrics = strict_json(runs / "sweep" / "alpha_s1" / "summary.json")["windows"][1]["evaluation"]
    assert set(metrics) <= set(long.columns)
    hit = long[(long.member == "alpha_s1") & (long.window == "w02")].iloc[0]
    assert hit["sharpe"] == metrics["sharpe"] and hit["n_trades"] == metrics["n_trades"]  # exact (round trip)
    assert hit["config"] == "alpha" and hit["seed"] == 1 and hit["steps"] == 200
    for col in ("buy_and_hold_sharpe", "beats_momentum", "cost_2x_total_return", "collapsed", "action_std"):
        assert col in long.columns
    assert long.groupby("config").sharpe.count().to_dict() == {"alpha": 6, BETA: 4}
    as_json = json.loads(invoke(compare_command, runs / "sweep", "--long", "--json"))
    assert len(as_json) == 8 and as_json[0]["window"] == "w01"


def test_collapsed_members_are_flagged_everywhere(lab, tmp_path):
    run = tmp_path / "collapsed"
    shutil.copytree(lab["runs"] / "single", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["windows"][0]["diagnostics"]["warnings"] = ["policy collapsed: zero trades on the test span"]
    (run / "summary.json").write_text(json.dumps(summary))
    row = compare.member_row(run / "summary.json")
    assert (
        row["collapsed_windows"] == 1
        and row["collapse_warnings"] == "w01: policy collapsed: zero trades on the test span"
    )
    out = invoke(compare_command, run)
    assert "1/1 COLLAPSED" in out and "COLLAPSED in 1/1 windows" in out and "warning: policy collapsed" in out
    long = pd.read_csv(io.StringIO(invoke(compare_command, run, "--long", "--csv")))
    assert bool(long.loc[0, "collapsed"]) and "zero trades" in long.loc[0, "diagnostics_warnings"]
    assert "COLLAPSED windows: 1" in invoke(ls_command, tmp_path)


def test_ls_lists_runs_seeds_and_sweeps(lab):
    runs = lab["runs"]
    out = invoke(ls_command, runs)
    lines = {line.split()[1]: line for line in out.splitlines()[2:]}
    assert set(lines) == {"seeds", "single", "sweep"}  # a sweep's members and a run's seeds are not listed apart
    assert lines["sweep"].startswith("sweep") and "4/4 completed" in lines["sweep"] and "2 configs" in lines["sweep"]
    assert lines["seeds"].startswith("seeds") and "0,1" in lines["seeds"] and " ± " in lines["seeds"]
    assert lines["single"].startswith("run") and " 300 " in lines["single"]
    entries = json.loads(invoke(ls_command, runs, "--json"))
    assert {e["kind"] for e in entries} == {"run", "seeds", "sweep"}


def test_diff_shows_config_keys_and_hashes(lab):
    runs = lab["runs"]
    out = invoke(diff_command, runs / "sweep" / "alpha_s0", runs / "sweep" / f"{BETA}_s1")
    assert "config: 2 key(s) differ" in out
    assert "sac.learning_rate  A 0.0003  →  B 0.0001" in out and "training.seed" in out
    assert "windows hash: same" in out and "data hash: same" in out
    out = invoke(diff_command, runs / "sweep" / "alpha_s0", runs / "single")
    assert "training.total_timesteps  A 200  →  B 300" in out
    assert "windows hash: A " in out and "windows: A has 2, B has 1" in out and "w02: A train" in out


def test_config_columns_from_plain_rows():
    rows = [
        {"name": "a_s0", "status": "completed", "oos_sharpe": 1.0, "oos_total_return": 0.01, "seed": 0},
        {"name": "a_s1", "status": "completed", "oos_sharpe": 3.0, "oos_total_return": 0.03, "seed": 1},
        {"name": "a_s2", "status": "failed", "seed": 2},
        {"name": "b_s0", "status": "completed", "oos_sharpe": 2.0, "sharpe_ci_low": -1.0, "sharpe_ci_high": 5.0},
    ]
    compare.add_config_columns(rows)
    a, b = rows[0], rows[3]
    assert (
        a["config_seeds"] == 2
        and a["config_sharpe_mean"] == 2.0
        and a["config_sharpe_sd"] == pytest.approx(math.sqrt(2))
    )
    assert a["config_sharpe_ci_high"] - 2.0 == pytest.approx(stats.t.ppf(0.975, 1) * 1.0)
    assert rows[2]["config_sharpe_mean"] == 2.0  # a failed seed's row carries its config's columns too
    assert (b["config_sharpe_ci_low"], b["config_ci_method"]) == (-1.0, "bootstrap over bars")
    assert set(compare.CONFIG_COLUMNS) <= set(a) and a["source_index"] == 1 and a["config_diff"] == "(base)"
    table = compare.format_table(rows)
    assert "note: one seed per config" not in table
    assert "a_s2" in table and compare.comparability(rows) == []


def test_config_diff_text():
    base = {"sac": {"learning_rate": 3e-4, "net_arch": [8]}, "env": {"reward": "pnl"}, "training": {"seed": 0}}
    other = {"sac": {"learning_rate": 1e-4, "net_arch": [8, 8]}, "env": {"reward": "dsr"}, "training": {"seed": 1}}
    text = compare.diff_text(compare.config_diff(base, other))
    assert text == 'sac.learning_rate=0.0001, sac.net_arch=[8, 8], env.reward="dsr"'
    assert compare.config_diff(base, {**base, "extra": {"x": 1}}) == {"extra.x": (compare._ABSENT, 1)}


def test_dsr_n_is_shown_per_row_when_sweeps_of_different_sizes_are_compared():
    rows = [
        {"name": "a_s0", "source": "big", "status": "completed", "oos_sharpe": 1.0, "dsr": 0.4, "dsr_n_trials": 10},
        {"name": "b_s0", "source": "small", "status": "completed", "oos_sharpe": 1.0, "dsr": 0.6, "dsr_n_trials": 2},
    ]
    table = compare.format_table(rows)
    assert "DSR (N)" in table and "0.40 (10)" in table and "0.60 (2)" in table and "not on one scale" in table
    rows[1]["dsr_n_trials"] = 10
    assert "DSR(N=10)" in compare.format_table(rows)


def test_every_sweep_csv_column_is_documented_and_every_documented_column_exists(lab):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sweeps.md").read_text()
    section = doc.split("### Results: sweep.json, sweep.csv and wf compare")[1].split("\n## ")[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([^`]+)`", line.split(" | ")[0])
    }
    columns = set(pd.read_csv(lab["runs"] / "sweep" / "sweep.csv").columns)
    assert columns - documented == set(), "sweep.csv columns missing from docs/sweeps.md"
    assert documented - columns == set(), "docs/sweeps.md lists columns sweep.csv does not have"
