"""Baselines on the same test bars, through the same env and costs as the agent.

* ``buy_and_hold``: fully long (``max_position``) from the first bar of every session to
  the close — the intraday buy-and-hold, since the env is flat overnight by design.
* ``flat``: never trades (returns are all 0).
* ``random``: seeded random target positions, re-drawn at random bars with a probability
  calibrated (a few replays, same seed) so that its turnover matches the agent's.
* ``momentum``: long when the price is above the session's first open, short (or flat
  without shorting) when below — a simple intraday trend rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.envs.intraday_env import IntradayTradingEnv
from backend.evaluation.simulate import Trajectory, run_policy
from backend.features.builtin import MarketArrays

NAMES = ("buy_and_hold", "flat", "random", "momentum")


def _constant(target: float):
    def policy(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        return env.action_for_target(target)

    return policy


def _random(max_pos: float, allow_short: bool, turnover_per_bar: float, seed: int):
    rng = np.random.default_rng(seed)
    lo = -max_pos if allow_short else 0.0
    mean_jump = (max_pos - lo) / 3.0  # E|U - V| for U, V uniform on [lo, max]
    prob = min(1.0, turnover_per_bar / mean_jump) if mean_jump > 0 else 0.0
    state = {"target": 0.0}

    def policy(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        if rng.random() < prob:
            state["target"] = float(rng.uniform(lo, max_pos))
        return env.action_for_target(state["target"])

    return policy


def _momentum(market: MarketArrays, max_pos: float, allow_short: bool):
    starts, ends = market.session_bounds()
    session_open = np.repeat(market.open[starts], ends - starts)
    signal = np.sign(market.close - session_open)

    def policy(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        s = signal[env.current_bar]
        target = max_pos * s if (allow_short or s > 0) else 0.0
        return env.action_for_target(float(target))

    return policy


def run_baselines(
    make_env,
    market: MarketArrays,
    agent: Trajectory,
    periods_per_year: float,
    initial_equity: float,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Metrics of every baseline (plus its trajectory under ``"_trajectory"``), annualised with ``periods_per_year``."""
    cfg = make_env().config
    out: dict[str, dict[str, Any]] = {}

    def record(name: str, traj: Trajectory) -> None:
        out[name] = traj.metrics(periods_per_year, initial_equity)
        out[name]["_trajectory"] = traj

    record("buy_and_hold", run_policy(make_env(), _constant(cfg.max_position), market.session_id))
    record("flat", run_policy(make_env(), _constant(0.0), market.session_id))
    # random: bisect the switching rate until its turnover matches the agent's (turnover grows
    # with the rate, but not linearly: every session ends with a flatten)
    target = float(agent.traded.sum())

    def play(rate: float) -> Trajectory:
        return run_policy(make_env(), _random(cfg.max_position, cfg.allow_short, rate, seed), market.session_id)

    lo, hi = 0.0, 2.0 * cfg.max_position
    traj = play(0.0)
    best = (abs(float(traj.traded.sum()) - target), traj)
    for _ in range(20 if target > 0 else 0):
        mid = 0.5 * (lo + hi)
        traj = play(mid)
        got = float(traj.traded.sum())
        best = min(best, (abs(got - target), traj), key=lambda x: x[0])
        if abs(got - target) <= 0.01 * target:
            break
        lo, hi = (mid, hi) if got < target else (lo, mid)
    traj = best[1]
    record("random", traj)
    record("momentum", run_policy(make_env(), _momentum(market, cfg.max_position, cfg.allow_short), market.session_id))
    return {name: out[name] for name in NAMES}


def beats(agent: dict[str, Any], baseline: dict[str, Any]) -> bool | None:
    """Whether the agent's total return exceeds the baseline's (None if undefined)."""
    a, b = agent.get("total_return"), baseline.get("total_return")
    if a is None or b is None:
        return None
    return bool(a > b)
