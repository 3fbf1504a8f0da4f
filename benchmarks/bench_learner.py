"""The in-process learner groups of benchmarks/run.py: harness overhead, replay throughput, production projection.

* ``bench_training_overhead``  CPU time per step of the harness's training (``train_window``: our env with frozen
                               normalisation, callbacks, TensorBoard, saving the bundle) / the same learner class
                               (``algorithms.build_model``) learning on the null env of benchmarks/backends.py with
                               the same spaces and hyperparameters. Pinned to sb3: the overhead is the harness's,
                               and PyTorch has no compile step to land in one side's CPU time.
* ``bench_replay``             deterministic replay throughput of a saved agent through the real replay path
* ``bench_projection``         the production config's training speed on one core, and ``projection_table``
                               (windows × 200k steps × workers → hours, locally and on Ray)
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    MINI_CONFIG,
    MINI_WINDOW,
    PRODUCTION_CONFIG,
    backend_sets,
    harness_setup,
    median_of,
)

OVERHEAD_BACKEND = "sb3"


def _bare_seconds_per_step(cfg, obs_dim: int, steps: int) -> float:
    """CPU seconds per step of the harness's learner class on the null env (no env work, no callbacks)."""
    from stable_baselines3.common.logger import configure

    from backend.training import algorithms
    from benchmarks.backends import null_env

    model = algorithms.build_model(cfg, null_env(obs_dim), seed=cfg.training.seed)
    model.set_logger(configure(None, []))
    t0 = time.process_time()
    model.learn(total_timesteps=steps)
    return (time.process_time() - t0) / steps


def _harness_seconds_per_step(s, feats, steps: int) -> float:
    """CPU seconds per step of ``train_window`` on the mini window (env, normalisation, callbacks, TB, bundle)."""
    from backend.training.trainer import train_window

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.process_time()
        train_window(
            s.cfg,
            s.market,
            feats,
            s.windows[0],
            out_dir=Path(tmp),
            tb_dir=Path(tmp) / "tb",
            data_hash="bench",
            provenance={},
        )
        return (time.process_time() - t0) / steps


def bench_training_overhead(steps: int, repeats: int) -> dict[str, float]:
    """Harness / bare CPU time per step (CPU time of this process: steadier than wall time on a shared VM)."""
    import torch

    from backend.features.builtin import compute_features

    torch.set_num_threads(1)
    sets = [f"training.total_timesteps={steps}", f"sac.learning_starts={min(100, steps // 2)}"]
    s = harness_setup(MINI_CONFIG, MINI_WINDOW, sets + backend_sets(OVERHEAD_BACKEND))
    feats = compute_features(s.market, s.cfg.env.features)
    obs_dim = s.cfg.env.lookback * feats.shape[1] + 3
    _bare_seconds_per_step(s.cfg, obs_dim, min(200, steps))  # one-time imports and allocations
    pairs = [
        (_harness_seconds_per_step(s, feats, steps), _bare_seconds_per_step(s.cfg, obs_dim, steps))
        for _ in range(repeats)
    ]
    return {
        "training_overhead": statistics.median(h / b for h, b in pairs),
        "training_harness_steps_per_second": statistics.median(1 / h for h, _ in pairs),
        "training_bare_steps_per_second": statistics.median(1 / b for _, b in pairs),
        "training_overhead_min": min(h / b for h, b in pairs),
        "training_overhead_max": max(h / b for h, b in pairs),
    }


def bench_replay(repeats: int, train_steps: int = 300, backend: str | None = None) -> float:
    """Deterministic replay throughput of a saved agent through the real replay path (agent only, 1x costs)."""
    from backend.evaluation.replay import replay_agent
    from backend.features.builtin import compute_features
    from backend.training.trainer import train_window

    sets = [f"training.total_timesteps={train_steps}", f"sac.learning_starts={min(100, train_steps // 2)}"]
    s = harness_setup(MINI_CONFIG, MINI_WINDOW, sets + backend_sets(backend))
    feats = compute_features(s.market, s.cfg.env.features)
    w = s.windows[0]
    long_test = dataclasses.replace(w, test_end=min(w.test_start + 5_000, len(s.market)))  # ~64 sessions of 5m bars
    with tempfile.TemporaryDirectory() as tmp:
        train_window(s.cfg, s.market, feats, w, out_dir=Path(tmp), tb_dir=None, data_hash="bench", provenance={})

        def once() -> float:
            t0 = time.perf_counter()
            rep = replay_agent(Path(tmp), s.cfg, s.market, feats, long_test, cost_scales=(1.0,))
            return len(rep.trajectory.returns) / (time.perf_counter() - t0)

        return median_of(once, repeats)


def bench_projection(steps: int, backend: str | None = None) -> dict[str, float]:
    """Training speed of the production config ([256, 256], batch 256) on one core → hours for big walk-forwards.

    ``backend`` None: the production config's own (the harness's default when it names none).
    """
    from backend.features.builtin import compute_features
    from backend.training.trainer import train_window

    starts = min(200, 4 * steps)
    sets = [f"training.total_timesteps={steps + starts}", f"sac.learning_starts={starts}", "training.tensorboard=false"]
    s = harness_setup(PRODUCTION_CONFIG, MINI_WINDOW, sets + backend_sets(backend))
    feats = compute_features(s.market, s.cfg.env.features)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_window(
            s.cfg, s.market, feats, s.windows[0], out_dir=Path(tmp), tb_dir=None, data_hash="bench", provenance={}
        )
    return {"production_steps_per_second_1_core": result.timesteps / result.seconds}


def projection_table(sps: float, per_window_steps: int = 200_000) -> str:
    rows = ["windows  workers  where                      hours"]
    for windows in (1, 24, 88):
        for workers, where in (
            (1, "this machine, 1 worker"),
            (2, "this machine, 2 workers"),
            (16, "Ray, 16 CPUs"),
            (64, "Ray, 64 CPUs"),
        ):
            rounds = -(-windows // workers)
            rows.append(f"{windows:>7}  {workers:>7}  {where:<25} {rounds * per_window_steps / sps / 3600:>6.1f}")
    return "\n".join(rows)
