"""Run a policy through the env over a whole span and collect per-bar arrays.

The agent and every baseline go through the same env, so they share one accounting and
one cost formula.
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
    """Per-bar arrays over an env's span (see :mod:`backend.evaluation.metrics`)."""

    start: int
    returns: np.ndarray
    positions: np.ndarray
    costs: np.ndarray
    traded: np.ndarray
    actions: np.ndarray  # raw policy action at bars where a decision was taken, else nan
    session_id: np.ndarray

    def metrics(self, interval: str, initial_equity: float) -> dict[str, Any]:
        return metrics.compute(
            self.returns, self.positions, self.costs, self.traded, self.session_id, interval, initial_equity
        )


def run_policy(env: IntradayTradingEnv, policy: Policy, session_id: np.ndarray) -> Trajectory:
    """Play every episode of ``env`` in order with ``policy(obs, env) -> action``."""
    start, end = env.span
    n = end - start
    returns = np.zeros(n)
    positions = np.zeros(n)
    costs = np.zeros(n)
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
            b = info["bar"] - start
            returns[b] = info["net_return"]
            costs[b] = info["cost"]
            traded[b] = info["traded"]
    return Trajectory(start, returns, positions, costs, traded, actions, session_id[start:end].copy())
