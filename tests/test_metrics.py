"""Metrics and trade accounting, on arrays recorded by the real env (simulate.run_policy)."""

import math

import numpy as np
import pytest

from backend.config.models import CostConfig, EnvConfig
from backend.core.calendars import annualisation
from backend.envs.intraday_env import IntradayTradingEnv
from backend.evaluation import metrics
from backend.evaluation.simulate import run_policy
from backend.features.builtin import MarketArrays

PPY_5M = annualisation("XNYS", "5m")["bars_per_year"]
C = 1e-3  # 10 bps per unit traded, both sides, in the scripted scenarios
CLOSES = [100.0, 101.0, 99.0, 102.0, 103.0, 101.0, 100.0, 104.0]  # one 5m session, bars at 0, 5, …, 35 minutes


def synthetic_market(
    sessions: list[list[float]], bar_minutes: float = 5.0, session_minutes: float | None = None
) -> MarketArrays:
    """Closes of sessions with bars at 0, bar_minutes, … after the open, one trading day apart.

    ``session_minutes`` defaults to the bars' total width (a shorter one makes the last bar partial).
    """
    close = np.concatenate([np.asarray(s, dtype=np.float64) for s in sessions])
    lengths = np.array([len(s) for s in sessions])
    within = np.concatenate([np.arange(k) for k in lengths]).astype(np.float64) * bar_minutes
    sid = np.repeat(np.arange(len(sessions)), lengths)
    ts = (sid * 86_400 + within * 60).astype(np.int64) * 1_000_000_000
    length = lengths * bar_minutes if session_minutes is None else np.full(len(sessions), session_minutes)
    return MarketArrays(
        timestamps=ts,
        open=close.copy(),
        high=close * 1.001,
        low=close * 0.999,
        close=close,
        volume=np.full(len(close), 1000.0),
        session_id=sid.astype(np.int64),
        minutes_from_open=within,
        session_minutes=np.repeat(length, lengths).astype(np.float64),
        bar_minutes=bar_minutes,
    )


def scripted(targets: dict[int, float]):
    """Target position per global bar (flat elsewhere); exact in float32 for the values used."""

    def policy(obs, env):
        return env.action_for_target(targets.get(env.current_bar, 0.0))

    return policy


def replay(sessions, targets, costs=None, **env):
    market = synthetic_market(sessions)
    costs = costs or CostConfig(commission_bps=C * 1e4, slippage_buy_bps=0.0, slippage_sell_bps=0.0)
    cfg = EnvConfig(lookback=1, costs=costs, **env)
    features = np.zeros((len(market), 1), np.float32)
    e = IntradayTradingEnv(market, features, (0, len(market)), cfg, "sequential")
    return run_policy(e, scripted(targets), market.session_id)


def assert_compounds(traj):
    """prod(1 + trade returns) == 1 + total return, and flat time is exactly flat."""
    got = np.prod([1.0 + t.net_return for t in traj.trades()])
    assert got == pytest.approx(1.0 + metrics.total_return(traj.returns), rel=1e-13, abs=1e-15)
    flat = (traj.positions == 0.0) & (traj.held == 0.0)
    assert np.all(traj.returns[1:][flat[:-1]] == 0.0) and traj.returns[0] == 0.0


def shape(trades):
    return [(t.entry_bar, t.exit_bar, t.side, t.bars_held, t.entry_position, t.exit_reason) for t in trades]


def test_mid_session_exit_owns_its_exit_cost():
    traj = replay([CLOSES], {1: 1.0, 2: 1.0})  # long at the close of bar 1, flat again at bar 3
    (t,) = traj.trades()
    assert shape([t]) == [(1, 3, 1, 2, 1.0, "exit")]
    # buy 1 at 101 (cost C), ride 101 → 102, sell 1 at 102 (cost C)
    assert t.net_return == pytest.approx((1 - C) ** 2 * 102 / 101 - 1, rel=1e-12)
    assert traj.positions[3] == 0.0 and traj.held[3] == 1.0 and traj.returns[4] == pytest.approx(-C)
    assert_compounds(traj)


def test_entry_bar_does_not_take_the_previous_step():
    traj = replay([CLOSES], {0: 0.0, 2: 1.0})  # flat step 0 → 1 must not belong to the trade
    (t,) = traj.trades()
    assert (t.entry_bar, t.exit_bar) == (2, 3)
    assert t.net_return == pytest.approx((1 - C) ** 2 * 102 / 99 - 1, rel=1e-12)
    assert_compounds(traj)


def test_flip_splits_its_cost_by_the_size_each_leg_trades():
    # long 1 at 101, flip to short 1 at 102 (trades 2: 1 closes, 1 opens), flat at 103
    traj = replay([CLOSES], {1: 1.0, 2: 1.0, 3: -1.0})
    a, b = traj.trades()
    assert shape([a, b]) == [(1, 3, 1, 2, 1.0, "flip"), (3, 4, -1, 1, -1.0, "exit")]
    assert traj.trade_costs[4] == pytest.approx(2 * C)
    assert a.net_return == pytest.approx((1 - C) * 102 / 101 * (1 - C) - 1, rel=1e-12)
    # short leg: the rest of the flip step (its own cost C of the 1 - C left), 102 → 103, then buy back
    held = -1.0 * (103 / 102) / (1 - (103 / 102 - 1))  # the short drifts with the price
    want_b = (1 - 2 * C) / (1 - C) * (1 - (103 / 102 - 1)) * (1 - C * abs(held)) - 1
    assert b.net_return == pytest.approx(want_b, rel=1e-12)
    assert traj.held[4] == pytest.approx(held, rel=1e-14)
    assert_compounds(traj)


def test_flip_cost_split_is_exact_in_bps_with_unequal_legs():
    # long 0.5, flip to short 1 (buy and sell rates differ: the flip sells 1.5)
    costs = CostConfig(commission_bps=2.0, slippage_buy_bps=1.0, slippage_sell_bps=5.0)
    traj = replay([CLOSES], {1: 0.5, 2: 0.5, 3: -1.0, 4: -1.0}, costs=costs, rebalance_threshold=0.5)
    a, b = traj.trades()
    sell = 7e-4
    h = traj.held[3]
    assert traj.trade_costs[4] == pytest.approx(sell * (h + 1.0), rel=1e-12)
    step = 1.0 + traj.returns[4]
    assert (1.0 + a.net_return) == pytest.approx((1 + traj.returns[2]) * (1 + traj.returns[3]) * (1 - sell * h))
    # the opening leg pays sell × 1 of the equity left after the closing leg paid sell × h
    assert (1.0 + b.net_return) == pytest.approx(step / (1 - sell * h) * (1 + traj.returns[5]) * (1 + traj.returns[6]))
    assert_compounds(traj)


def test_forced_exit_flattens_at_the_last_bar_ending_by_the_limit():
    # 20 minutes: the bars starting at 0, 5, 10, 15 end by then → flatten at the close of bar 3
    traj = replay([CLOSES], {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, forced_exit_minutes=20)
    (t,) = traj.trades()
    assert shape([t]) == [(1, 3, 1, 2, 1.0, "flatten")]
    assert t.net_return == pytest.approx((1 - C) ** 2 * 102 / 101 - 1, rel=1e-12)
    assert traj.costs[3] - traj.trade_costs[3] == pytest.approx(C)  # the flatten
    assert not traj.returns[4:].any() and not traj.positions[3:].any()
    assert_compounds(traj)


def test_session_end_flatten_and_two_sessions():
    later = [50.0, 51.0, 49.0, 50.0]
    traj = replay([CLOSES, later], {5: 1.0, 6: 1.0, 8: -1.0, 9: -1.0, 10: -1.0})
    a, b = traj.trades()
    assert shape([a, b]) == [(5, 7, 1, 2, 1.0, "flatten"), (8, 11, -1, 3, -1.0, "flatten")]
    assert a.net_return == pytest.approx((1 - C) ** 2 * 104 / 101 - 1, rel=1e-12)
    assert traj.returns[8] == 0.0  # overnight: nothing held, nothing earned
    assert_compounds(traj)


def test_rebalance_within_a_trade_stays_one_trade():
    # long 1 at 101, halve at 99, keep (the drift stays under the threshold), flat at 103
    traj = replay([CLOSES], {1: 1.0, 2: 0.5, 3: 0.5})
    (t,) = traj.trades()
    assert shape([t]) == [(1, 4, 1, 3, 1.0, "exit")]
    held_at_exit = 51.5 / 101  # 0.5 bought back at 99 drifts with 99 → 102 → 103
    assert traj.held[4] == pytest.approx(held_at_exit, rel=1e-13)
    want = (1 - C) * (1 - 0.5 * C) * (1 - C * held_at_exit) - 1  # the price path nets out exactly
    assert t.net_return == pytest.approx(want, rel=1e-12)
    assert_compounds(traj)


def test_no_trades():
    traj = replay([CLOSES, CLOSES], {})
    assert traj.trades() == [] and not traj.returns.any()
    m = traj.metrics(PPY_5M, 100.0)
    assert m["n_trades"] == 0 and math.isnan(m["win_rate"]) and math.isnan(m["avg_trade_return"])
    assert math.isnan(m["avg_holding_bars"]) and m["total_return"] == 0.0 and m["final_equity"] == 100.0
    assert math.isnan(m["sharpe"]) and m["max_drawdown"] == 0.0 and m["exposure"] == 0.0


def test_trade_statistics_come_from_the_trades():
    traj = replay([CLOSES, [50.0, 51.0, 49.0, 50.0]], {1: 1.0, 2: 1.0, 3: -1.0, 5: 1.0, 6: 1.0, 9: -1.0})
    ts = traj.trades()
    m = traj.metrics(PPY_5M, 1.0)
    rets = np.array([t.net_return for t in ts])
    assert m["n_trades"] == len(ts) == 4
    assert m["win_rate"] == (rets > 0).mean() and m["avg_trade_return"] == pytest.approx(rets.mean())
    assert m["avg_holding_bars"] == np.mean([t.exit_bar - t.entry_bar for t in ts])
    rows = metrics.trade_records(traj)
    assert [r["return"] for r in rows] == list(rets) and [r["bars"] for r in rows] == [t.bars_held for t in ts]
    assert np.prod(1 + rets) == pytest.approx(1 + m["total_return"], rel=1e-13)


def test_compounding_identity_on_the_sample_with_every_kind_of_exit(market_5m):
    """Random targets, flips, rebalances, per-share and minimum fees, forced exits: trades compound exactly."""
    costs = CostConfig(commission_per_share=0.005, commission_min=1.0, commission_max_pct=0.01)
    cfg = EnvConfig(lookback=1, costs=costs, forced_exit_minutes=300, initial_capital=20_000)
    feats = np.zeros((len(market_5m), 1), np.float32)
    env = IntradayTradingEnv(market_5m, feats, (20_000, 22_000), cfg, "sequential")
    rng = np.random.default_rng(3)
    held_on = {"a": np.zeros(1, np.float32)}

    def policy(obs, env):
        if rng.random() < 0.25:
            held_on["a"] = rng.uniform(-1, 1, 1).astype(np.float32) * (rng.random() < 0.8)
        return held_on["a"]

    traj = run_policy(env, policy, market_5m.session_id)
    ts = traj.trades()
    assert {t.exit_reason for t in ts} == {"exit", "flip", "flatten"}
    assert_compounds(traj)
    # every non-zero step return belongs to exactly one trade (a flip step to the opening leg, which
    # hands the closing leg its share of the cost)
    owned = np.zeros(len(traj.returns), int)
    for t in ts:
        stop = t.exit_bar + (t.exit_reason == "exit")  # an exit step is the closing trade's
        owned[t.entry_bar + 1 : stop + 1] += 1
    assert np.all(owned[traj.returns != 0.0] == 1) and owned.max() == 1


def test_misaligned_inputs_are_rejected():
    z = np.zeros(4)
    with pytest.raises(ValueError, match="end inside a trade"):
        metrics.trades(np.array([0, 1.0, 1.0, 1.0]), np.array([0, 0, 1.0, 1.0]), z, z)
    with pytest.raises(ValueError, match="misaligned"):
        metrics.trades(np.array([1.0, 1.0, 0, 0]), np.array([1.0, 1.0, 1.0, 0]), z, z)
    with pytest.raises(ValueError, match="one value per bar"):
        metrics.trades(z, z, z, np.zeros(3))


# ---------------------------------------------------------------------------------------- golden values

SERIES_GOLDEN = {  # unchanged since round 1: these metrics do not depend on the trade accounting
    "total_return": -0.08090537840818046,
    "cagr": -0.26193126483620643,
    "volatility": 0.10909906723312669,
    "sharpe": -2.7293138539468935,
    "sortino": -3.7977395330380057,
    "calmar": -2.488758786986936,
    "max_drawdown": -0.1052457418556495,
    "max_drawdown_bars": 2581,
    "turnover": 10.435714285714285,
    "exposure": 0.7714285714285715,
    "costs_paid": 0.109575,
    "final_equity": 91909.46215918196,
    "n_bars": 5460,
    "n_sessions": 70,
}


def golden_series():
    rng = np.random.default_rng(7)
    n = 78 * 70
    pos = np.repeat(rng.choice([-1.0, 0.0, 0.5, 1.0], n // 6 + 1), 6)[:n]
    r = pos * rng.normal(0.00005, 0.001, n)
    traded = np.abs(np.diff(np.r_[0, pos]))
    costs = traded * 1.5e-4
    return r - costs, pos, costs, traded, np.repeat(np.arange(70), 78)


def test_golden_series_statistics():
    series = dict(zip(("returns", "positions", "costs", "traded", "session_id"), golden_series(), strict=True))
    got = metrics.series_metrics(**series, periods_per_year=PPY_5M, initial_equity=100_000.0)
    assert set(got) == set(SERIES_GOLDEN)
    for key, want in SERIES_GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=1e-8, abs=1e-12), key


REPLAY_GOLDEN = {  # a seeded random policy replayed on the sample by the real env (5m, 70 sessions)
    "total_return": -0.2304535508170562,
    "cagr": -0.6105556397227355,
    "volatility": 0.0674781015271229,
    "sharpe": -13.941339888277147,
    "sortino": -18.340173000906507,
    "calmar": -2.6021461142470024,
    "max_drawdown": -0.23463541742713223,
    "max_drawdown_bars": 5424,
    "n_trades": 560,
    "win_rate": 0.24107142857142858,
    "avg_trade_return": -0.00046679080582491084,
    "avg_holding_bars": 7.878571428571429,
    "turnover": 13.228760440335849,
    "exposure": 0.8080586080586081,
    "costs_paid": 0.27780396924705275,
    "final_equity": 76954.64491829438,
    "n_bars": 5460,
    "n_sessions": 70,
}


def test_golden_replay_statistics(market_5m):
    cfg = EnvConfig(lookback=1, costs=CostConfig(commission_bps=1.0, slippage_buy_bps=2.0, slippage_sell_bps=2.0))
    feats = np.zeros((len(market_5m), 1), np.float32)
    env = IntradayTradingEnv(market_5m, feats, (30_000, 35_460), cfg, "sequential")
    rng = np.random.default_rng(11)
    state = {"a": np.zeros(1, np.float32)}

    def policy(obs, env):
        if rng.random() < 0.2:
            state["a"] = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], 1).astype(np.float32)
        return state["a"]

    got = run_policy(env, policy, market_5m.session_id).metrics(PPY_5M, 100_000.0)
    assert list(got) == list(metrics.METRIC_KEYS)
    for key, want in REPLAY_GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=1e-8, abs=1e-12), key


def test_formulas_against_hand_computation():
    r = np.array([0.01, -0.02, 0.015, 0.0, -0.005])
    ppy = annualisation("XNYS", "5m")["bars_per_year"]
    assert ppy == 78 * 252
    assert metrics.sharpe(r, ppy) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert metrics.sortino(r, ppy) == pytest.approx(r.mean() / downside * math.sqrt(ppy))
    eq = np.cumprod(1 + r)
    assert metrics.max_drawdown(r)[0] == pytest.approx(eq[1] / eq[0] - 1)  # peak after bar 0, trough after bar 1
    assert metrics.max_drawdown(r)[1] == 4  # under water from bar 1 to the end
    assert metrics.total_return(r) == pytest.approx(np.prod(1 + r) - 1)


def test_annualisation_is_an_input():
    traj = replay([CLOSES] * 3, {1: 1.0, 2: 1.0, 9: -1.0, 17: 0.5})
    a = traj.metrics(100.0, 1.0)
    b = traj.metrics(400.0, 1.0)
    assert b["sharpe"] == pytest.approx(2 * a["sharpe"]) and b["volatility"] == pytest.approx(2 * a["volatility"])
    bench = np.linspace(-1e-3, 1e-3, len(traj.returns))
    slow, fast = (metrics.relative_metrics(traj.returns, bench, ppy) for ppy in (100.0, 400.0))
    assert fast["tracking_error"] == pytest.approx(2 * slow["tracking_error"]) and fast["beta"] == slow["beta"]
    with pytest.raises(ValueError, match="periods_per_year"):
        traj.metrics(0.0, 1.0)


def test_edge_cases_one_bar_and_empty():
    arrays = ("returns", "positions", "held", "costs", "trade_costs", "traded")
    one = metrics.compute(**dict.fromkeys(arrays, np.zeros(1)), session_id=np.zeros(1, int), periods_per_year=252.0)
    assert math.isnan(one["sharpe"]) and math.isnan(one["volatility"]) and one["total_return"] == 0.0
    assert math.isnan(one["cagr"])  # too short to annualise
    e = np.array([])
    empty = metrics.compute(**dict.fromkeys(arrays, e), session_id=np.array([], int), periods_per_year=252.0)
    with pytest.raises(TypeError):  # negative control: by position, costs and trade_costs could be swapped
        metrics.compute(e, e, e, e, e, e, np.array([], int), 252.0)  # type: ignore[misc]
    assert empty["n_bars"] == 0 and empty["max_drawdown"] == 0.0 and empty["n_trades"] == 0


def test_json_never_holds_nan(tmp_path):
    import json

    from backend.core.jsonio import write_json

    p = write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), np.float64(1.5)], "c": np.int64(3)})
    assert json.loads(p.read_text(), parse_constant=lambda c: 1 / 0) == {"a": None, "b": [None, 1.5], "c": 3}
