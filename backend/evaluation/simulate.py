"""Run a policy through the env over a whole span and collect per-bar arrays.

The agent and every baseline go through the same env, so they share one accounting and
one cost formula. The arrays follow the alignment of :mod:`backend.evaluation.metrics`:
what is decided at bar t is stored at t, what the step realises at t+1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.envs.intraday_env import IntradayTradingEnv
from backend.evaluation import metrics

Policy = Callable[[np.ndarray, IntradayTradingEnv], np.ndarray]


@dataclass
class Trajectory:
    """Per-bar arrays over an env's span, index 0 = bar ``start`` (see :mod:`backend.evaluation.metrics`)."""

    start: int
    """Global index of the span's first bar."""
    returns: np.ndarray
    """Net return realised at the close of bar k (the step decided at k-1), costs included."""
    positions: np.ndarray
    """Target position chosen at the close of bar k (0 where no decision)."""
    held: np.ndarray
    """Position held going into the decision at bar k, after drift (0 where no decision)."""
    costs: np.ndarray
    """Costs inside ``returns[k]`` (the trade at k-1 and any flatten at k), fraction of equity."""
    trade_costs: np.ndarray
    """The part of ``costs[k]`` paid for the trade at the close of bar k-1 (the rest is the flatten at k)."""
    traded: np.ndarray
    """|Change of position| traded at the close of k-1, plus the flatten at k."""
    actions: np.ndarray
    """Raw policy action at bars where a decision was taken, else nan."""
    session_id: np.ndarray
    """Session of bar k."""

    def trades(self) -> list[metrics.Trade]:
        """One record per round trip (bars relative to ``start``); compounds to the total return."""
        return metrics.trades(self.positions, self.held, self.returns, self.trade_costs)

    def metrics(self, periods_per_year: float, initial_equity: float) -> dict[str, Any]:
        return metrics.compute(
            returns=self.returns,
            positions=self.positions,
            held=self.held,
            costs=self.costs,
            trade_costs=self.trade_costs,
            traded=self.traded,
            session_id=self.session_id,
            periods_per_year=periods_per_year,
            initial_equity=initial_equity,
        )


def run_policy(env: IntradayTradingEnv, policy: Policy, session_id: np.ndarray) -> Trajectory:
    """Play every episode of ``env`` in order with ``policy(obs, env) -> action``.

    The episodes are played 0, 1, 2, … so a sequential env carries the account value from
    one session to the next (per-share and minimum fees see the equity actually held).
    """
    start, end = env.span
    n = end - start
    returns = np.zeros(n)
    positions = np.zeros(n)
    held = np.zeros(n)
    costs = np.zeros(n)
    trade_costs = np.zeros(n)
    traded = np.zeros(n)
    actions = np.full(n, np.nan)
    for k in range(env.n_episodes):
        obs, _ = env.reset(options={"episode": k})
        done = False
        while not done:
            t = env.current_bar - start
            action = policy(obs, env)
            obs, _, done, truncated, info = env.step(action)
            done = done or truncated
            actions[t] = float(np.asarray(action).reshape(-1)[0])
            positions[t] = info["position"]
            held[t] = info["held"]
            b = info["bar"] - start
            returns[b] = info["net_return"]
            costs[b] = info["cost"]
            trade_costs[b] = info["trade_cost"]
            traded[b] = info["traded"]
    return Trajectory(
        start, returns, positions, held, costs, trade_costs, traded, actions, session_id[start:end].copy()
    )
