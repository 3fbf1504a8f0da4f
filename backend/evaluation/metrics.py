"""Performance metrics of a per-bar return series: pure NumPy, one annualisation table.

Inputs are per-bar arrays over the evaluated span, one value per bar:

* ``returns[k]``: net return realised at the close of bar k (after costs); the first bar of
  every session is 0 (flat overnight) unless an opening trade paid costs there.
* ``positions[k]``: the position held from the close of bar k to the close of bar k+1,
  as a fraction of equity.
* ``costs[k]``: costs charged in ``returns[k]``, as a fraction of equity.
* ``traded[k]``: |change of position| traded at the close of bar k-1/k (fraction of equity).
* ``session_id[k]``: the session of bar k.

Annualisation uses the number of bars in a trading year for the interval
(:data:`BARS_PER_SESSION` × :data:`SESSIONS_PER_YEAR`), the one place this lives.

Edge cases: fewer than 2 returns → Sharpe/Sortino/volatility ``nan``; zero standard
deviation → Sharpe ``nan`` (undefined, written as null); no downside returns → Sortino
``nan``; no trades → win rate, average trade and holding time ``nan``; CAGR and Calmar are
``nan`` for spans shorter than :data:`MIN_SESSIONS_FOR_CAGR` sessions (annualising a few
days of returns gives meaningless numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SESSIONS_PER_YEAR = 252
# regular-session bars (09:30-16:00 = 390 minutes), the last partial bar counted
BARS_PER_SESSION = {"1m": 390, "2m": 195, "5m": 78, "15m": 26, "30m": 13, "1h": 7, "60m": 7, "90m": 5}
MIN_SESSIONS_FOR_CAGR = 63

METRIC_KEYS = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_bars",
    "n_trades",
    "win_rate",
    "avg_trade_return",
    "avg_holding_bars",
    "turnover",
    "exposure",
    "costs_paid",
    "final_equity",
    "n_bars",
    "n_sessions",
)


def bars_per_year(interval: str) -> int:
    if interval not in BARS_PER_SESSION:
        raise ValueError(f"no annualisation for interval {interval!r}; known: {', '.join(BARS_PER_SESSION)}")
    return BARS_PER_SESSION[interval] * SESSIONS_PER_YEAR


def equity_curve(returns: np.ndarray, initial: float = 1.0) -> np.ndarray:
    return initial * np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))


def total_return(returns: np.ndarray) -> float:
    r = np.asarray(returns, dtype=np.float64)
    return float(np.prod(1.0 + r) - 1.0) if len(r) else 0.0


def volatility(returns: np.ndarray, periods_per_year: float) -> float:
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    return float(r.std(ddof=1) * math.sqrt(periods_per_year))


def sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio (zero risk-free rate) of per-bar returns."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    sd = r.std(ddof=1)
    if not sd > 1e-15:
        return math.nan
    return float(r.mean() / sd * math.sqrt(periods_per_year))


def sortino(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sortino ratio: mean over downside deviation (target 0, over all bars)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    downside = np.minimum(r, 0.0)
    dd = math.sqrt(float(np.mean(downside * downside)))
    if not dd > 1e-15:
        return math.nan
    return float(r.mean() / dd * math.sqrt(periods_per_year))


def drawdown(returns: np.ndarray) -> np.ndarray:
    """Drawdown of the equity curve at every bar (≤ 0), from a starting equity of 1."""
    eq = np.r_[1.0, equity_curve(returns)]
    return (eq / np.maximum.accumulate(eq) - 1.0)[1:]


def max_drawdown(returns: np.ndarray) -> tuple[float, int]:
    """Deepest drawdown (≤ 0) and the longest time under water, in bars."""
    if len(returns) == 0:
        return 0.0, 0
    dd = drawdown(returns)
    under = dd < 0
    longest = run = 0
    for flag in under:  # one pass; evaluation spans are small
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return float(min(dd.min(), 0.0)), int(longest)


def cagr(returns: np.ndarray, n_sessions: int, periods_per_year: float) -> float:
    if n_sessions < MIN_SESSIONS_FOR_CAGR or len(returns) == 0:
        return math.nan
    growth = 1.0 + total_return(returns)
    if growth <= 0:
        return -1.0
    return float(growth ** (periods_per_year / len(returns)) - 1.0)


def trades(positions: np.ndarray, returns: np.ndarray) -> list[tuple[int, int, float]]:
    """Round trips: (first bar held, last bar held, compounded net return incl. costs).

    A trade opens when the position leaves 0 (or flips sign) and closes when it returns
    to 0 (or flips). The returns from the opening bar (entry cost) to the bar after the
    last holding bar (exit cost and last move) are compounded.
    """
    p = np.asarray(positions, dtype=np.float64)
    sign = np.sign(p)
    out: list[tuple[int, int, float]] = []
    n = len(p)
    k = 0
    while k < n:
        if sign[k] == 0:
            k += 1
            continue
        j = k
        while j + 1 < n and sign[j + 1] == sign[k]:
            j += 1
        lo, hi = k, min(j + 1, n - 1)
        out.append((k, j, float(np.prod(1.0 + returns[lo : hi + 1]) - 1.0)))
        k = j + 1
    return out


def compute(
    returns: np.ndarray,
    positions: np.ndarray,
    costs: np.ndarray,
    traded: np.ndarray,
    session_id: np.ndarray,
    interval: str,
    initial_equity: float = 1.0,
) -> dict[str, Any]:
    """Every metric of the summary schema for one per-bar series."""
    r = np.asarray(returns, dtype=np.float64)
    ppy = bars_per_year(interval)
    n_sessions = len(np.unique(session_id)) if len(session_id) else 0
    mdd, mdd_bars = max_drawdown(r)
    rt = trades(positions, r)
    trade_returns = np.array([x[2] for x in rt])
    total = total_return(r)
    growth = cagr(r, n_sessions, ppy)
    calmar = growth / abs(mdd) if (mdd < 0 and not math.isnan(growth)) else math.nan
    return {
        "total_return": total,
        "cagr": growth,
        "volatility": volatility(r, ppy),
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "calmar": calmar,
        "max_drawdown": mdd,
        "max_drawdown_bars": mdd_bars,
        "n_trades": len(rt),
        "win_rate": float((trade_returns > 0).mean()) if len(rt) else math.nan,
        "avg_trade_return": float(trade_returns.mean()) if len(rt) else math.nan,
        "avg_holding_bars": float(np.mean([j - k + 1 for k, j, _ in rt])) if rt else math.nan,
        "turnover": float(np.sum(traded) / n_sessions) if n_sessions else 0.0,
        "exposure": float(np.mean(np.asarray(positions) != 0)) if len(positions) else 0.0,
        "costs_paid": float(np.sum(costs)),
        "final_equity": float(initial_equity * (1.0 + total)),
        "n_bars": len(r),
        "n_sessions": n_sessions,
    }


def relative_metrics(returns: np.ndarray, benchmark: np.ndarray, interval: str) -> dict[str, float]:
    """Excess return, tracking error, information ratio and beta against a benchmark's bar returns."""
    r = np.asarray(returns, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    ppy = bars_per_year(interval)
    active = r - b
    te = float(active.std(ddof=1) * math.sqrt(ppy)) if len(r) > 1 else math.nan
    var_b = float(b.var(ddof=1)) if len(b) > 1 else 0.0
    return {
        "excess_total_return": total_return(r) - total_return(b),
        "tracking_error": te,
        "information_ratio": sharpe(active, ppy),
        "beta": float(np.cov(r, b, ddof=1)[0, 1] / var_b) if var_b > 1e-20 else math.nan,
    }
