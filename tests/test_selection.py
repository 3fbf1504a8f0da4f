import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.evaluation import selection as sel

BARS = 78  # 5-minute bars in a session
PPY = BARS * 252


def make_sweep(
    root: Path,
    configs: dict[str, float],
    seeds: int = 3,
    windows: int = 4,
    sessions: int = 2,
    seed: int = 0,
    noise: float = 0.001,
) -> list[dict]:
    """A sweep folder as `wf sweep` leaves it: members with summary.json and <window>/equity.csv, and sweep.json.

    ``configs`` maps a config name to its true per-bar edge over buy-and-hold's market exposure;
    each member's net return is 0.3 × the market + its edge + its own noise.
    """
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-02", periods=windows * sessions)
    stamps = [
        pd.DatetimeIndex(
            [
                pd.Timestamp(f"{d.date()} 09:30", tz="America/New_York") + pd.Timedelta(minutes=5 * k)
                for k in range(BARS)
            ]
        )
        for d in days
    ]
    market = rng.normal(0.00002, noise, (windows * sessions, BARS))
    rows = []
    for cfg, edge in configs.items():
        for s in range(seeds):
            name = f"{cfg}_s{s}"
            folder = root / name
            wins = []
            for w in range(windows):
                wid = f"w{w + 1:02d}"
                idx = slice(w * sessions, (w + 1) * sessions)
                ts = pd.DatetimeIndex(np.concatenate(stamps[idx]))
                mk = market[idx].ravel()
                net = 0.3 * mk + edge + rng.normal(0, noise, len(mk))
                (folder / wid).mkdir(parents=True, exist_ok=True)
                pd.DataFrame(
                    {
                        "timestamp": [t.isoformat() for t in ts],
                        "net_return": net,
                        "buy_and_hold_return": mk,
                        "equity": 1e5 * np.cumprod(1 + net),
                    }
                ).to_csv(folder / wid / "equity.csv", index=False)
                sharpe = net.mean() / net.std(ddof=1) * math.sqrt(PPY)
                wins.append({"id": wid, "status": "completed", "evaluation": {"sharpe": sharpe}})
            (folder / "summary.json").write_text(json.dumps({"status": "completed", "windows": wins}))
            rows.append(
                {
                    "name": name,
                    "path": str(folder),
                    "status": "completed",
                    "seed": s,
                    "config_path": f"configs/{cfg}.json",
                    "oos_sharpe": float(np.mean([w["evaluation"]["sharpe"] for w in wins])),
                }
            )
    (root / "sweep.json").write_text(json.dumps({"schema_version": 1, "members": rows}))
    return rows


def strict_dumps(doc) -> str:
    return json.dumps(doc, allow_nan=False)


def test_loader_aligns_members_and_counts_dropped_bars(tmp_path):
    rows = make_sweep(tmp_path, {"a": 0.0, "b": 0.0}, seeds=1, windows=2)
    eq = tmp_path / "b_s0" / "w02" / "equity.csv"
    frame = pd.read_csv(eq)
    frame.iloc[10:].to_csv(eq, index=False)  # b lost the first 10 bars of w02
    data = sel.load_member_returns([r["path"] for r in rows] + [str(tmp_path / "gone")])
    assert list(data.returns.columns) == ["a_s0", "b_s0"]
    assert len(data.returns) == 2 * 2 * BARS - 10 and data.dropped_bars == 10
    assert data.bars == {"a_s0": 312, "b_s0": 302}
    assert "gone" in data.skipped and "not found" in data.skipped["gone"]
    assert data.returns.index.is_monotonic_increasing and str(data.returns.index.tz) == "UTC"
    assert data.window.value_counts().to_dict() == {"w01": 156, "w02": 146}
    assert data.window_sharpes.shape == (2, 2) and list(data.window_sharpes.index) == ["w01", "w02"]
    assert data.buy_and_hold.index.equals(data.returns.index)
    w01 = pd.read_csv(tmp_path / "a_s0" / "w01" / "equity.csv")
    np.testing.assert_array_equal(data.buy_and_hold.to_numpy()[:156], w01["buy_and_hold_return"].to_numpy())
    assert data.warnings == []


def test_loader_reads_only_completed_windows_and_scores_a_flat_window_zero(tmp_path):
    rows = make_sweep(tmp_path, {"a": 0.0}, seeds=1, windows=3)
    path = tmp_path / "a_s0" / "summary.json"
    summary = json.loads(path.read_text())
    summary["windows"][1]["status"] = "failed"
    summary["windows"][2]["evaluation"]["sharpe"] = None  # undefined: no variance
    path.write_text(json.dumps(summary))
    data = sel.load_member_returns({"a": rows[0]["path"]})
    assert sorted(data.window.unique()) == ["w01", "w03"]
    assert data.window_sharpes.loc["w03", "a"] == 0.0 and "w02" not in data.window_sharpes.index
    (tmp_path / "multi").mkdir()
    (tmp_path / "multi" / "summary.json").write_text(json.dumps({"kind": "multi_seed", "windows": []}))
    assert "pass its s<seed>/ folders" in sel.load_member_returns([tmp_path / "multi"]).skipped["multi"]


def test_a_real_edge_is_distinguishable_and_noise_is_not(tmp_path):
    rows = make_sweep(tmp_path, {"edge": 0.0004, "noise_a": 0.0, "noise_b": 0.0}, seeds=3, windows=4)
    doc = sel.selection_from_rows(rows, seed=0, reps=500, n_boot=1000)
    strict_dumps(doc)
    assert doc["status"] == "ok" and doc["best_config"] == "edge"
    verdicts = {c["name"]: c["verdict"] for c in doc["configs"]}
    assert verdicts == {"edge": sel.SKILL, "noise_a": sel.LUCK, "noise_b": sel.LUCK}
    assert doc["verdict"] == sel.SKILL and doc["verdict_reasons"] == []
    pbo = doc["pbo"]
    assert pbo["status"] == "ok" and pbo["n_trials"] == 3 and pbo["n_partitions"] == 16 and pbo["pbo"] < 0.05
    assert sum(pbo["logits"]["counts"]) == pbo["n_combinations"] == 12_870
    assert len(pbo["degradation"]["in_sample"]) == sel.MAX_PAIRS_SHOWN
    assert pbo["chosen_counts"]["edge"] > 12_000
    for base in ("buy_and_hold", "flat"):
        snoop = doc["data_snooping"][base]
        assert snoop["spa_pvalue"] < 0.01 and set(snoop["stepm_superior"]) == {"edge_s0", "edge_s1", "edge_s2"}
    iqm = {c["name"]: c["iqm"] for c in doc["configs"]}
    assert iqm["edge"]["ci_low"] > iqm["noise_a"]["ci_high"] and iqm["edge"]["n_scores"] == 12
    poi = doc["probability_of_improvement"]
    assert poi["configs"] == ["edge", "noise_a", "noise_b"] and poi["p"][0][1] > 0.9 and poi["ci_low"][0][1] > 0.5
    assert doc["alignment"] == {
        "n_bars": 624,
        "dropped_bars": 0,
        "bars_per_member": {r["name"]: 624 for r in rows},
        "skipped": {},
    }


def test_pure_noise_is_not_distinguishable_from_luck(tmp_path):
    rows = make_sweep(tmp_path, {f"c{k}": 0.0 for k in range(4)}, seeds=2, windows=4, seed=3)
    doc = sel.selection_from_rows(rows, reps=300, n_boot=500)
    assert doc["verdict"] == sel.LUCK and doc["verdict_reasons"]
    assert all(c["verdict"] == sel.LUCK for c in doc["configs"])


def test_the_best_configs_verdict_follows_pbo_and_spa():
    one = ["m_s0"]
    ok = {"status": "ok", "spa_pvalue": 0.01, "stepm_superior": one}
    good_pbo = {"status": "ok", "pbo": 0.2}
    assert sel._verdict("m", one, True, 3, good_pbo, {"b": ok, "f": ok}) == (sel.SKILL, [])
    verdict, why = sel._verdict("m", one, True, 3, {"status": "ok", "pbo": 0.6}, {"b": ok})
    assert verdict == sel.LUCK and "PBO 0.60 > 0.5" in why[0]
    verdict, why = sel._verdict("m", one, True, 3, good_pbo, {"b": {**ok, "spa_pvalue": 0.2}})
    assert verdict == sel.LUCK and why == ["SPA p = 0.200 > 0.05 against b"]
    refused = {"status": "refused", "reason": "too short"}
    assert sel._verdict("m", one, True, 3, refused, {"b": ok})[0] == sel.UNDETERMINED
    assert sel._verdict("m", one, True, 1, refused, {"b": ok})[0] == sel.SKILL  # one config: nothing was chosen
    two = ["m_s0", "m_s1"]  # one of two seeds superior is not a majority
    assert sel._verdict("m", two, False, 3, good_pbo, {"b": ok})[0] == sel.LUCK


def test_thin_sweeps_get_reasons_not_exceptions(tmp_path):
    rows = make_sweep(tmp_path, {"only": 0.0}, seeds=1, windows=1, sessions=1)
    doc = sel.selection_from_rows(rows, reps=100, n_boot=100)
    strict_dumps(doc)
    assert doc["status"] == "ok" and doc["verdict"] == sel.UNDETERMINED
    assert "at least 2 configs" in doc["pbo"]["reason"]
    assert "at least 100 bars" in doc["data_snooping"]["flat"]["reason"]
    assert doc["configs"][0]["iqm"]["reason"].startswith("one seed per window")
    assert "at least 2 configs" in doc["probability_of_improvement"]["reason"]

    failed = [{**rows[0], "status": "failed"}]
    doc = sel.selection_from_rows(failed)
    assert doc["status"] == "refused" and doc["reason"] == "no member with out-of-sample returns"
    assert any("status failed; left out" in w for w in doc["warnings"])


def test_short_sweeps_lower_the_partitions_then_refuse(tmp_path):
    rows = make_sweep(tmp_path, {"a": 0.0, "b": 0.0}, seeds=1, windows=1, sessions=3)  # 234 bars
    doc = sel.selection_from_rows(rows, reps=100, n_boot=100)
    assert doc["pbo"]["n_partitions"] == 10 and doc["pbo"]["bars_per_block"] == 23
    rows = make_sweep(tmp_path / "tiny", {"a": 0.0, "b": 0.0}, seeds=1, windows=1, sessions=2)  # 156 bars
    doc = sel.selection_from_rows(rows, reps=100, n_boot=100)
    assert doc["pbo"]["status"] == "refused" and "at least 20" in doc["pbo"]["reason"]


def test_selection_from_rows_never_raises(tmp_path, monkeypatch):
    rows = make_sweep(tmp_path, {"a": 0.0, "b": 0.0}, seeds=1, windows=2)

    def boom(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(sel, "selection_statistics", boom)
    with pytest.warns(RuntimeWarning, match="selection statistics failed"):
        doc = sel.selection_from_rows(rows)
    assert doc == {"schema_version": 1, "status": "failed", "reason": "RuntimeError: bug"}


def test_selection_statistics_direct_inputs_and_determinism():
    rng = np.random.default_rng(9)
    idx = pd.date_range("2019-01-02 14:30", periods=400, freq="5min", tz="UTC")
    returns = pd.DataFrame(rng.normal(0, 0.001, (400, 4)), index=idx, columns=["a_s0", "a_s1", "b_s0", "b_s1"])
    members = [{"name": n, "config": n[0], "seed": int(n[-1])} for n in returns.columns]
    members.append({"name": "ghost", "config": "c", "seed": 0})
    bh = pd.Series(rng.normal(0, 0.001, 400), index=idx)
    ws = pd.DataFrame(rng.normal(0, 1, (4, 4)), index=["w1", "w2", "w3", "w4"], columns=returns.columns)
    one = sel.selection_statistics(members, returns, {"buy_and_hold": bh}, ws, seed=4, reps=200, n_boot=300)
    two = sel.selection_statistics(members, returns, {"buy_and_hold": bh}, ws, seed=4, reps=200, n_boot=300)
    assert strict_dumps(one) == strict_dumps(two)
    assert one["warnings"] == ["ghost: no aligned returns; left out"]
    assert [c["name"] for c in one["configs"]] == ["a", "b"] and set(one["data_snooping"]) == {"buy_and_hold", "flat"}
    no_bh = sel.selection_statistics(members, returns, {}, None, reps=100, n_boot=100)
    assert no_bh["data_snooping"]["buy_and_hold"]["reason"] == "no buy-and-hold returns were given"
    assert no_bh["configs"][0]["iqm"]["reason"] == "no window Sharpe ratios were given"
