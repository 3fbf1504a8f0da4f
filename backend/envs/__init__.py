"""Gymnasium env of the harness, registered as ``IntradayTrading-v0``."""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "IntradayTrading-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="backend.envs.intraday_env:IntradayTradingEnv")
