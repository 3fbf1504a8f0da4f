"""Performance metrics of a per-bar return series, and exact trade accounting: pure NumPy.

Inputs are per-bar arrays over the evaluated span, one value per bar, aligned as
:func:`backend.evaluation.simulate.run_policy` records them. The step decided at the close
of bar k is stored in two places: what was *decided* at index k, what it *realised* at k+1.

Decided at bar k:

* ``positions[k]``: the target position chosen at the close of bar k, held until the close
  of bar k+1, as a fraction of equity (0 where no decision is taken: flat time, an
  episode's last bar, bars after a forced exit).
* ``held[k]``: the position held going into that decision (after it drifted with the
  price; 0 at an episode's first bar and where no decision is taken).

Realised at bar k (the step decided at bar k-1):

* ``returns[k]``: net return realised at the close of bar k, all costs included: the trade
  at the close of k-1, the move from k-1 to k, and the forced flatten at the close of k when
  the episode ends there. ``returns`` is 0 at every bar no step leads into (an episode's
  first bar, bars after a forced exit), ``returns[0]`` included.
* ``costs[k]``: the costs inside ``returns[k]``, as a fraction of equity.
* ``trade_costs[k]``: the part of ``costs[k]`` paid for the trade at the close of bar k-1;
  the rest, ``costs[k] − trade_costs[k]``, is the forced flatten at the close of bar k
  (0 unless an episode ends at k).
* ``traded[k]``: |change of position| traded at the close of k-1, plus the flatten at k.

``session_id[k]``: the session of bar k.

Trade accounting (:func:`trades`): the growth factor ``1 + returns[k+1]`` of the step
decided at bar k belongs to

* the trade open after the decision, if ``positions[k] != 0`` (entry, hold, rebalance);
* the trade being closed, if ``positions[k] == 0`` and ``held[k] != 0`` (an exit: its cost);
* flat time otherwise — and then it is exactly 1 (nothing trades, nothing is held);
* on a flip (``held[k]`` and ``positions[k]`` of opposite signs) the step is split in two
  legs executed in turn: the closing leg pays the part of the trade's cost in proportion
  to the size it trades, ``c_close = trade_costs[k+1] × |held[k]| / (|held[k]| + |positions[k]|)``
  — exact for costs in bps, pro rata for per-share and minimum fees — and its trade gets
  the factor ``1 − c_close``; the opening trade gets
  the rest of the step, ``(1 + returns[k+1]) / (1 − c_close)`` (its own cost as a fraction
  of the equity left after the closing leg, the move and any flatten).

So every bar's net return belongs to exactly one trade or to flat time, and
``prod(1 + trade returns) == 1 + total_return`` to rounding. A trade opened at the close
of bar ``entry_bar`` is closed at the close of ``exit_bar``; it was held for
``exit_bar − entry_bar`` bar-to-bar moves.

Annualisation: every ratio takes ``periods_per_year`` (bars in a trading year of the
calendar in use), from the one annualisation table :func:`backend.core.calendars.annualisation`.

Edge cases: fewer than 2 returns → Sharpe/Sortino/volatility ``nan``; zero standard
deviation → Sharpe ``nan`` (undefined, written as null); no downside returns → Sortino
``nan``; no trades → win rate, average trade and holding time ``nan``; CAGR and Calmar are
``nan`` for spans shorter than :data:`MIN_SESSIONS_FOR_CAGR` sessions (annualising a few
days of returns gives meaningless numbers).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import numpy as np

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


class Trade(NamedTuple):
    """One round trip (bar indices relative to the first bar of the arrays)."""

    entry_bar: int
    """Bar at whose close the position was opened."""
    exit_bar: int
    """Bar at whose close it was closed (exit, flip or forced flatten)."""
    side: int
    """+1 long, -1 short."""
    bars_held: int
    """exit_bar - entry_bar: bar-to-bar moves held."""
    entry_position: float
    """Position opened, as a fraction of equity."""
    net_return: float
    """Compounded net return of the trade, every cost it paid included."""
    exit_reason: str
    """'exit' (the policy went flat), 'flip' (it reversed) or 'flatten' (the episode ended)."""


def _trade_inputs(
    positions: np.ndarray, held: np.ndarray, returns: np.ndarray, trade_costs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four per-bar arrays as float64, of one length, ending flat (whole episodes)."""
    p = np.asarray(positions, dtype=np.float64)
    h = np.asarray(held, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    c = np.asarray(trade_costs, dtype=np.float64)
    n = len(p)
    if not len(h) == len(r) == len(c) == n:
        raise ValueError(
            f"positions, held, returns and trade_costs need one value per bar; got lengths "
            f"{n}, {len(h)}, {len(r)}, {len(c)}"
        )
    if n and (p[-1] != 0.0 or h[-1] != 0.0):
        raise ValueError(
            "the arrays end inside a trade (positions[-1] or held[-1] is not 0); pass whole episodes, "
            "as run_policy records them (every episode ends flat at its last bar)"
        )
    return p, h, r, c


def _check_held_signs(p: np.ndarray, h: np.ndarray, sp: np.ndarray, sh: np.ndarray) -> None:
    """held[k] (the position chosen at bar k-1, after drift) has the sign of positions[k-1]."""
    prev = np.r_[0.0, sp[:-1]]
    bad = np.flatnonzero((sh != 0.0) & (sh != prev))
    if len(bad):
        k = int(bad[0])
        before = f"positions[{k - 1}] = {p[k - 1]!r}" if k else "no bar before it"
        raise ValueError(
            f"held[{k}] = {h[k]!r} but {before}: held[k] is the position chosen at bar k-1 after drift, "
            "so it must have that sign; the arrays are misaligned"
        )


def _no_trades() -> dict[str, np.ndarray]:
    return {
        "entry_bar": np.zeros(0, np.int64),
        "exit_bar": np.zeros(0, np.int64),
        "side": np.zeros(0, np.int64),
        "entry_position": np.zeros(0),
        "net_return": np.zeros(0),
        "exit_reason": np.zeros(0, dtype="<U7"),
    }


def _trade_arrays(
    positions: np.ndarray,
    held: np.ndarray,
    returns: np.ndarray,
    trade_costs: np.ndarray,
) -> dict[str, np.ndarray]:
    """Column arrays of :func:`trades` (vectorised; see the module docstring for the rule)."""
    p, h, r, c = _trade_inputs(positions, held, returns, trade_costs)
    n = len(p)
    if n == 0:
        return _no_trades()
    sp = np.sign(p)
    sh = np.sign(h)
    _check_held_signs(p, h, sp, sh)
    opened = sp != 0.0
    cont = opened & (sh == sp)  # holds on (or rebalances) the position it came in with
    first = np.flatnonzero(opened & ~cont)  # entry, or the opening leg of a flip
    last = np.flatnonzero(opened & ~np.r_[cont[1:], False])  # last step decided inside the trade
    if len(first) == 0:
        return _no_trades()
    exit_bar = last + 1  # <= n - 1 since positions[-1] == 0
    flip = h[first] != 0.0
    # growth factor of the step decided at bar k, padded with 1 (a step after the arrays)
    g = np.r_[1.0 + r[1:], 1.0]
    # a flip's closing leg: its share of the trade cost of the step
    ck = first[flip]
    keep = 1.0 - c[ck + 1] * np.abs(h[ck]) / (np.abs(h[ck]) + np.abs(p[ck]))
    g[ck] = g[ck] / keep
    closing = np.ones(n)
    closing[ck] = keep
    # the step at the exit bar belongs to the trade when the policy goes flat there
    went_flat = (h[exit_bar] != 0.0) & (p[exit_bar] == 0.0)
    stop = exit_bar + went_flat  # trade's steps: first .. stop - 1
    growth = np.multiply.reduceat(g, np.column_stack([first, stop]).ravel())[::2]
    growth = growth * closing[exit_bar]  # 1 unless the trade was closed by a flip
    reason = np.where(went_flat, "exit", np.where(h[exit_bar] != 0.0, "flip", "flatten"))
    return {
        "entry_bar": first.astype(np.int64),
        "exit_bar": exit_bar.astype(np.int64),
        "side": sp[first].astype(np.int64),
        "entry_position": p[first],
        "net_return": growth - 1.0,
        "exit_reason": reason,
    }


def trades(
    positions: np.ndarray,
    held: np.ndarray,
    returns: np.ndarray,
    trade_costs: np.ndarray,
) -> list[Trade]:
    """One :class:`Trade` per round trip, in time order (the rule is in the module docstring).

    A trade opens when a decision takes a position from flat (or reverses it) and closes
    when a decision goes flat, reverses, or the episode's forced flatten happens.
    ``prod(1 + net_return)`` over the trades equals ``prod(1 + returns)``: flat time
    contributes factors of exactly 1.

    Raises ``ValueError`` if the arrays have different lengths, end inside a trade, or
    ``held`` disagrees with ``positions`` (misaligned inputs).
    """
    t = _trade_arrays(positions, held, returns, trade_costs)
    return [
        Trade(int(k), int(x), int(s), int(x - k), float(p), float(ret), str(why))
        for k, x, s, p, ret, why in zip(
            t["entry_bar"],
            t["exit_bar"],
            t["side"],
            t["entry_position"],
            t["net_return"],
            t["exit_reason"],
            strict=True,
        )
    ]


class TradeLedger(Protocol):
    """Anything holding the per-bar arrays of a replay (e.g. ``simulate.Trajectory``)."""

    positions: np.ndarray
    held: np.ndarray
    returns: np.ndarray
    trade_costs: np.ndarray


def trade_records(ledger: TradeLedger) -> list[dict[str, Any]]:
    """trades.csv rows of a replay: ``entry_bar``, ``exit_bar`` (relative to the arrays' first
    bar), ``side``, ``bars``, ``entry_position``, ``return``, ``exit_reason`` — see :func:`trades`."""
    return [
        {
            "entry_bar": t.entry_bar,
            "exit_bar": t.exit_bar,
            "side": t.side,
            "bars": t.bars_held,
            "entry_position": t.entry_position,
            "return": t.net_return,
            "exit_reason": t.exit_reason,
        }
        for t in trades(ledger.positions, ledger.held, ledger.returns, ledger.trade_costs)
    ]


def trade_statistics(entry_bar: np.ndarray, exit_bar: np.ndarray, net_return: np.ndarray) -> dict[str, Any]:
    """Number of trades, win rate, average trade return and holding time (bars)."""
    ret = np.asarray(net_return, dtype=np.float64)
    n = len(ret)
    return {
        "n_trades": n,
        "win_rate": float((ret > 0).mean()) if n else math.nan,
        "avg_trade_return": float(ret.mean()) if n else math.nan,
        "avg_holding_bars": float(np.mean(np.asarray(exit_bar) - np.asarray(entry_bar))) if n else math.nan,
    }


def series_metrics(
    *,
    returns: np.ndarray,
    positions: np.ndarray,
    costs: np.ndarray,
    traded: np.ndarray,
    session_id: np.ndarray,
    periods_per_year: float,
    initial_equity: float = 1.0,
) -> dict[str, Any]:
    """Every metric of :data:`METRIC_KEYS` that does not need the trades."""
    r = np.asarray(returns, dtype=np.float64)
    ppy = float(periods_per_year)
    if not ppy > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    n_sessions = len(np.unique(session_id)) if len(session_id) else 0
    mdd, mdd_bars = max_drawdown(r)
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
        "turnover": float(np.sum(traded) / n_sessions) if n_sessions else 0.0,
        "exposure": float(np.mean(np.asarray(positions) != 0)) if len(positions) else 0.0,
        "costs_paid": float(np.sum(costs)),
        "final_equity": float(initial_equity * (1.0 + total)),
        "n_bars": len(r),
        "n_sessions": n_sessions,
    }


def compute(
    *,
    returns: np.ndarray,
    positions: np.ndarray,
    held: np.ndarray,
    costs: np.ndarray,
    trade_costs: np.ndarray,
    traded: np.ndarray,
    session_id: np.ndarray,
    periods_per_year: float,
    initial_equity: float = 1.0,
) -> dict[str, Any]:
    """Every metric of the summary schema (:data:`METRIC_KEYS`) for one per-bar series.

    The trade statistics come from :func:`trades`, so they compound to ``total_return``. Keyword-only: seven
    arrays of one shape (``costs`` and ``trade_costs`` above all) must not be swappable by position.
    """
    t = _trade_arrays(positions, held, returns, trade_costs)
    out = series_metrics(
        returns=returns,
        positions=positions,
        costs=costs,
        traded=traded,
        session_id=session_id,
        periods_per_year=periods_per_year,
        initial_equity=initial_equity,
    )
    out.update(trade_statistics(t["entry_bar"], t["exit_bar"], t["net_return"]))
    return {key: out[key] for key in METRIC_KEYS}


def relative_metrics(returns: np.ndarray, benchmark: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """Excess return, tracking error, information ratio and beta against a benchmark's bar returns."""
    r = np.asarray(returns, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    ppy = float(periods_per_year)
    active = r - b
    te = float(active.std(ddof=1) * math.sqrt(ppy)) if len(r) > 1 else math.nan
    var_b = float(b.var(ddof=1)) if len(b) > 1 else 0.0
    return {
        "excess_total_return": total_return(r) - total_return(b),
        "tracking_error": te,
        "information_ratio": sharpe(active, ppy),
        "beta": float(np.cov(r, b, ddof=1)[0, 1] / var_b) if var_b > 1e-20 else math.nan,
    }
