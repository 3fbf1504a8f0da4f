"""How closely trades.csv compounds to the equity curve: the measured rounding, for the docs' stated bound.

    python -m backend.checks.compounding RUN_OR_WINDOW_DIR...   # every window folder with trades.csv + equity.csv
    python -m backend.checks.compounding --ledger 5m 2000       # a seeded fixed policy over the first N sessions

Both compare ``prod(1 + trade returns)`` with ``prod(1 + bar net returns)`` (the equity curve's growth factor) and
print the relative difference, the number of trades and the difference in units of float64 epsilon. The equity
paths themselves are exact; the difference is the rounding of two products of different factors, and it grows with
the number of trades.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from backend.config.models import DataConfig, EnvConfig
from backend.core.errors import EXIT_OK
from backend.core.intervals import INTERVAL_MINUTES
from backend.data.loader import load_bars
from backend.evaluation.metrics import trade_records
from backend.features.builtin import MarketArrays, compute_features


def compounding_error(trade_returns: np.ndarray, bar_returns: np.ndarray) -> float:
    """|prod(1 + trade returns) / prod(1 + bar returns) - 1|: the relative rounding between trades.csv and the
    equity curve's growth factor (each product of n factors rounds by up to n eps; typically about sqrt(n) eps)."""
    equity = float(np.prod(1.0 + np.asarray(bar_returns)))
    return float(abs(float(np.prod(1.0 + np.asarray(trade_returns))) - equity) / equity)


def window_figures(folder: Path) -> tuple[int, float]:
    trades = pd.read_csv(folder / "trades.csv")
    bars = pd.read_csv(folder / "equity.csv")
    return len(trades), compounding_error(trades["return"].to_numpy(), bars["net_return"].to_numpy())


def ledger_figures(interval: str, sessions: int, seed: int = 0) -> tuple[int, float]:
    """A seeded random target policy (entries, flips, exits, holds) through the real env and the real ledger."""
    from backend.envs.intraday_env import IntradayTradingEnv  # heavy: gymnasium
    from backend.evaluation.simulate import run_policy  # heavy: gymnasium

    # model_validate: mypy reads Field(<positional default>) as a required argument of the constructor
    bars = load_bars(DataConfig.model_validate({"interval": interval}))
    market = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close, INTERVAL_MINUTES[interval])
    starts, _ = market.session_bounds()
    end = int(starts[min(sessions, len(starts) - 1)])
    cfg = EnvConfig.model_validate({})
    env = IntradayTradingEnv(market, compute_features(market, cfg.features), (0, end), cfg, "sequential")
    rng = np.random.default_rng(seed)
    choices = (1.0, -1.0, 0.0, 0.5)

    def policy(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        if rng.random() < 0.8:  # hold
            return env.action_for_target(env.position)
        return env.action_for_target(choices[int(rng.integers(len(choices)))])

    traj = run_policy(env, policy, market.session_id)
    trades = [t["return"] for t in trade_records(traj)]
    return len(trades), compounding_error(np.array(trades), traj.returns)


def main(argv: list[str]) -> int:
    eps = float(np.finfo(np.float64).eps)
    if argv[:1] == ["--ledger"]:
        interval, sessions = argv[1], int(argv[2])
        n, err = ledger_figures(interval, sessions)
        print(f"ledger {interval} {sessions} sessions: {n} trades, relative difference {err:.3g} ({err / eps:.1f} eps)")
        return EXIT_OK
    for arg in argv:
        for trades in sorted(Path(arg).rglob("trades.csv")):
            if (trades.parent / "equity.csv").exists():
                n, err = window_figures(trades.parent)
                print(f"{trades.parent}: {n} trades, relative difference {err:.3g} ({err / eps:.1f} eps)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
