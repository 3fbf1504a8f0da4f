"""Small SB3 callbacks: progress file, episode statistics, finite checks, a cross-process stop flag."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from backend.core.errors import TrainingError
from backend.core.jsonio import write_json
from backend.core.status import Status

Progress: TypeAlias = Literal["running", "completed", "stopped"]
"""training_progress.json's ``status`` while the learner runs and when it returns (``stopped``: before its total
timesteps); an exception marks it with a :class:`Status` instead (``interrupted``, ``failed``)."""


class ProgressFileCallback(BaseCallback):
    """Writes ``training_progress.json`` every ``every`` steps and at the end."""

    def __init__(self, path: Path, window_id: str, total: int, every: int, bar: Any = None) -> None:
        super().__init__()
        self.path, self.window_id, self.total, self.every, self.bar = path, window_id, total, every, bar
        self.start = time.perf_counter()
        self.episodes = 0

    def snapshot(self, status: Progress | Status) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.start
        done = int(self.num_timesteps)
        return {
            "window": self.window_id,
            "status": status,
            "timesteps_done": done,
            "total_timesteps": self.total,
            "episodes": self.episodes,
            "seconds": round(elapsed, 3),
            "steps_per_second": round(done / elapsed, 2) if elapsed > 0 else None,
        }

    def _on_step(self) -> bool:
        self.episodes += int(np.sum(self.locals.get("dones", 0)))
        if self.bar is not None:
            self.bar.update(1)
        if self.n_calls % self.every == 0:
            write_json(self.path, self.snapshot("running"))
        return True

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()  # the rate counts learning, not set-up

    def _on_training_end(self) -> None:
        write_json(self.path, self.snapshot("completed" if self.num_timesteps >= self.total else "stopped"))

    def mark(self, status: Status) -> None:
        """Training ended by an exception (Ctrl-C, a failed check): say so in the progress file."""
        try:
            write_json(self.path, self.snapshot(status))
        except OSError:
            pass


class StopCallback(BaseCallback):
    """Raises KeyboardInterrupt inside ``learn`` once ``stop`` (a multiprocessing.Event) is set.

    Worker processes ignore SIGINT; the driver sets the event on Ctrl-C / SIGTERM so every
    running window stops cleanly, records ``interrupted`` and can be resumed.
    """

    def __init__(self, stop: Any = None, every: int = 16) -> None:
        super().__init__()
        self.stop, self.every = stop, every

    def _on_step(self) -> bool:
        if self.stop is not None and self.n_calls % self.every == 0 and self.stop.is_set():
            raise KeyboardInterrupt("stop requested")
        return True


class EpisodeStatsCallback(BaseCallback):
    """Logs episode reward, net return, turnover, costs and mean |position| to the SB3 logger."""

    def __init__(self) -> None:
        super().__init__()
        self._reset()

    def _reset(self) -> None:
        self.growth, self.traded, self.cost, self.abs_pos, self.steps, self.reward = 1.0, 0.0, 0.0, 0.0, 0, 0.0

    def _on_step(self) -> bool:
        info = self.locals["infos"][0]
        self.growth *= 1.0 + info["net_return"]
        self.traded += info["traded"]
        self.cost += info["cost"]
        self.abs_pos += abs(info["position"])
        self.reward += float(self.locals["rewards"][0])
        self.steps += 1
        if self.locals["dones"][0]:
            self.logger.record("episode/reward", self.reward)
            self.logger.record("episode/net_return", self.growth - 1.0)
            self.logger.record("episode/turnover", self.traded)
            self.logger.record("episode/costs", self.cost)
            self.logger.record("episode/mean_abs_position", self.abs_pos / max(self.steps, 1))
            self._reset()
        return True


class FiniteCheckCallback(BaseCallback):
    """Stops training with exit 4 on non-finite observations, rewards or losses."""

    def _on_step(self) -> bool:
        rewards = self.locals.get("rewards")
        if rewards is not None and not np.all(np.isfinite(rewards)):
            raise TrainingError(
                f"non-finite reward at step {self.num_timesteps} (check: reward); "
                "inspect the bars and the reward settings"
            )
        obs = self.locals.get("new_obs")
        if obs is not None and not np.all(np.isfinite(obs)):
            raise TrainingError(
                f"non-finite observation at step {self.num_timesteps} (check: observation); "
                "inspect the features of the train span"
            )
        for key in ("train/actor_loss", "train/critic_loss", "train/ent_coef_loss"):
            value = self.logger.name_to_value.get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingError(
                    f"non-finite {key} at step {self.num_timesteps} (check: loss); "
                    "lower sac.learning_rate or check the reward scale"
                )
        return True
