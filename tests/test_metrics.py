import math

import numpy as np
import pytest

from backend.evaluation import metrics

GOLDEN = {
    "total_return": -0.08090537840818046,
    "cagr": -0.26193126483620643,
    "volatility": 0.10909906723312669,
    "sharpe": -2.7293138539468935,
    "sortino": -3.7977395330380057,
    "calmar": -2.488758786986936,
    "max_drawdown": -0.1052457418556495,
    "max_drawdown_bars": 2581,
    "n_trades": 389,
    "win_rate": 0.4241645244215938,
    "avg_trade_return": -0.00036804793194549255,
    "avg_holding_bars": 10.827763496143959,
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


def test_golden_statistics():
    got = metrics.compute(*golden_series(), "5m", 100_000.0)
    assert set(got) == set(metrics.METRIC_KEYS)
    for key, want in GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=1e-8, abs=1e-12), key


def test_formulas_against_hand_computation():
    r = np.array([0.01, -0.02, 0.015, 0.0, -0.005])
    ppy = metrics.bars_per_year("5m")
    assert ppy == 78 * 252
    assert metrics.sharpe(r, ppy) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert metrics.sortino(r, ppy) == pytest.approx(r.mean() / downside * math.sqrt(ppy))
    eq = np.cumprod(1 + r)
    assert metrics.max_drawdown(r)[0] == pytest.approx(eq[1] / eq[0] - 1)  # peak after bar 0, trough after bar 1
    assert metrics.max_drawdown(r)[1] == 4  # under water from bar 1 to the end
    assert metrics.total_return(r) == pytest.approx(np.prod(1 + r) - 1)


def test_trades_are_round_trips_including_exit_bar():
    pos = np.array([0, 1, 1, 0, -1, 1, 0.0])
    r = np.array([0, 0.01, 0.02, -0.01, 0.0, 0.03, 0.01])
    t = metrics.trades(pos, r)
    assert [(k, j) for k, j, _ in t] == [(1, 2), (4, 4), (5, 5)]
    assert t[0][2] == pytest.approx(1.01 * 1.02 * 0.99 - 1)


def test_edge_cases_no_trades_flat_equity_one_bar():
    z = np.zeros(78)
    m = metrics.compute(z, z, z, z, np.zeros(78, int), "5m")
    assert m["n_trades"] == 0 and math.isnan(m["win_rate"]) and math.isnan(m["avg_trade_return"])
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"]) and m["max_drawdown"] == 0.0
    assert m["total_return"] == 0.0 and m["exposure"] == 0.0 and m["turnover"] == 0.0
    one = metrics.compute(np.array([0.01]), np.array([1.0]), np.zeros(1), np.ones(1), np.zeros(1, int), "1m")
    assert math.isnan(one["sharpe"]) and math.isnan(one["volatility"]) and one["total_return"] == pytest.approx(0.01)
    assert math.isnan(one["cagr"])  # too short to annualise
    empty = metrics.compute(np.array([]), np.array([]), np.array([]), np.array([]), np.array([], int), "5m")
    assert empty["n_bars"] == 0 and empty["max_drawdown"] == 0.0


def test_unknown_interval():
    with pytest.raises(ValueError, match="no annualisation"):
        metrics.bars_per_year("7m")


def test_json_never_holds_nan(tmp_path):
    import json

    from backend.jsonio import write_json

    p = write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), np.float64(1.5)], "c": np.int64(3)})
    assert json.loads(p.read_text(), parse_constant=lambda c: 1 / 0) == {"a": None, "b": [None, 1.5], "c": 3}
