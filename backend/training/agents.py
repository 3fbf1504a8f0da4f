"""The agent as the harness sees it: build for training, load weights safely, act fast in replay.

Algorithm- and backend-specific work lives in :mod:`backend.training.algorithms` (the one
algorithm list); this module is the trainer's and the replay's single door to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from backend.config.models import Config
from backend.core.errors import TrainingError
from backend.envs.intraday_env import STATE_NAMES
from backend.training import algorithms


class SpacesOnly(gym.Env):
    """An env that only declares the harness's spaces: enough to rebuild an agent for replay."""

    def __init__(self, obs_size: int) -> None:
        super().__init__()
        self.obs_size = obs_size
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros((self.obs_size,), np.float32), {}

    def step(self, action):  # pragma: no cover - never stepped
        raise RuntimeError("SpacesOnly is not steppable")


def observation_size(cfg: Config, n_features: int) -> int:
    return cfg.env.lookback * n_features + len(STATE_NAMES)


class LoadedAgent:
    """A rebuilt agent with its weights; ``policy(deterministic)`` gives ``act(obs, env) -> action``."""

    def __init__(self, model: Any, cfg: Config) -> None:
        self.model, self.cfg = model, cfg

    def policy(self, deterministic: bool):
        act = algorithms.make_policy(self.model, deterministic)

        def policy(obs: np.ndarray, env: Any) -> np.ndarray:
            return act(obs)

        return policy

    def seed_replay(self, seed: int) -> None:
        algorithms.seed_everything(self.model, seed)


def build(cfg: Config, env: Any, seed: int, device: str) -> Any:
    return algorithms.build_model(cfg, env, seed, device)


def warm_start(model: Any, model_path: Path, device: str) -> None:
    """Start from another bundle's weights (tensors only; nothing is unpickled)."""
    algorithms.load_weights(model, model_path, device, error=TrainingError)


def save(model: Any, path: Path | IO[bytes]) -> None:
    algorithms.save_weights(model, path)


def load_for_replay(cfg: Config, model_path: Path, n_features: int) -> LoadedAgent:
    model = algorithms.build_model(
        cfg, SpacesOnly(observation_size(cfg, n_features)), cfg.training.seed, "cpu", for_replay=True
    )
    algorithms.load_weights(model, model_path, "cpu")
    return LoadedAgent(model, cfg)
