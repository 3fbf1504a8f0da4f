"""Benchmark suite: figures and ratios measured side by side in one run (median of repeats).

    python benchmarks/run.py --quick --out /tmp/b.json     # a few minutes on 2 cores
    python benchmarks/run.py --out benchmarks/latest.json  # longer, steadier

Figures (targets in TARGETS; ratios hold on any machine):

* env_steps_per_second     raw step() throughput of our env (lookback 32, all default features,
                           random actions, one core)
* env_vs_gym_trading_env   ours / Gym-Trading-Env on the same bars (optional dependency)
* env_vs_gym_anytrading    ours / gym-anytrading on the same bars (optional dependency)
* training_overhead        CPU time per step of the harness's SAC training (our env with frozen
                           normalisation, callbacks, TensorBoard, saving the bundle) / bare SAC.learn
                           on a null env with the same spaces and hyperparameters
* dry_run_seconds          wall time of the dry-run command on tmp/mini_windows_multi.json
* sweep_speedup_2_workers  1-worker time / 2-worker time for 4 equal sweep members
* replay_bars_per_second   deterministic replay throughput of a saved agent
* sample_load_seconds      load + validate + resample the bundled sample to 5m (cold)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

TARGETS = {
    "env_steps_per_second": (">=", 100_000),
    "env_vs_gym_trading_env": (">=", 1.5),
    "training_overhead": ("<=", 1.03),
    "dry_run_seconds": ("<=", 1.0),
    "sweep_speedup_2_workers": (">=", 1.8),
    "replay_bars_per_second": (">=", 5_000),
}


def median_of(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


# ------------------------------------------------------------------------------------------ env


def _market():
    from backend.config import DataConfig, EnvConfig
    from backend.data.loader import load_bars
    from backend.features import MarketArrays, compute_features

    bars = load_bars(DataConfig(interval="5m"))
    market = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close)
    return bars, market, compute_features(market, EnvConfig().features)


def bench_env(market, features, steps: int, repeats: int) -> float:
    from backend.config import EnvConfig
    from backend.envs.intraday_env import IntradayTradingEnv

    span = (1_000, 41_000)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 1)).astype(np.float32)

    def once() -> float:
        env = IntradayTradingEnv(market, features, span, EnvConfig(lookback=32))
        env.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            _, _, done, _, _ = env.step(a)
            if done:
                env.reset()
        return steps / (time.perf_counter() - t0)

    return median_of(once, repeats)


def _discrete_steps_per_second(make, actions: np.ndarray) -> float:
    """Random-action step() throughput of a peer env with a discrete action space."""
    env = make()
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        _, _, done, truncated, _ = env.step(int(a))
        if done or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - t0)


def bench_gym_trading_env(bars, features, steps: int, repeats: int) -> float | None:
    try:
        import gym_trading_env  # noqa: F401
        from gym_trading_env.environments import TradingEnv
    except ImportError:
        return None
    from backend.config import EnvConfig

    df = bars.frame.iloc[1_000:41_000].copy()
    df.index = df.index.tz_localize(None)  # it reads index.values every step; keep that warning-free
    for j, name in enumerate(EnvConfig().features):
        df[f"feature_{name}"] = features[1_000:41_000, j]
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, steps)

    def make():
        return TradingEnv(df=df, positions=[-1, 0, 1], windows=32, verbose=0, initial_position=0, trading_fees=0.0001)

    return median_of(lambda: _discrete_steps_per_second(make, actions), repeats)


def bench_gym_anytrading(bars, steps: int, repeats: int) -> float | None:
    try:
        from gym_anytrading.envs import StocksEnv
    except ImportError:
        return None
    df = bars.frame.iloc[1_000:41_000].rename(columns=str.capitalize)
    actions = np.random.default_rng(0).integers(0, 2, steps)

    return median_of(
        lambda: _discrete_steps_per_second(
            lambda: StocksEnv(df=df, window_size=32, frame_bound=(32, len(df))), actions
        ),
        repeats,
    )


# ------------------------------------------------------------------------------------------ training


def bench_training_overhead(steps: int, repeats: int) -> dict[str, float]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv

    from backend import pipeline
    from backend.features import compute_features
    from backend.training.trainer import sac_kwargs, train_window

    torch.set_num_threads(1)
    s = pipeline.setup(
        pipeline.RunOptions(
            config=str(ROOT / "tmp" / "mini_config_v1_default.json"),
            windows=str(ROOT / "tmp" / "mini_window.json"),
            sets=[f"training.total_timesteps={steps}", "sac.learning_starts=100"],
        )
    )
    cfg = s.cfg
    feats = compute_features(s.market, cfg.env.features)
    obs_dim = cfg.env.lookback * feats.shape[1] + 3

    class NullEnv(gym.Env):
        """Same spaces, constant observations, sessions of 78 steps; no work at all."""

        def __init__(self) -> None:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
            self._obs = np.zeros(obs_dim, np.float32)
            self._t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self._t = 0
            return self._obs.copy(), {}

        def step(self, action):
            self._t += 1
            return self._obs.copy(), 0.0, self._t >= 77, False, {}

    # CPU time of this process (torch uses one thread): steadier than wall time on a shared VM
    def harness() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            train_window(cfg, s.market, feats, s.windows[0], Path(tmp), Path(tmp) / "tb", "bench", {})
            return (time.process_time() - t0) / steps

    def bare() -> float:
        model = SAC(
            "MlpPolicy", DummyVecEnv([NullEnv]), seed=cfg.training.seed, device="cpu", verbose=0, **sac_kwargs(cfg)
        )
        model.set_logger(configure(None, []))
        t0 = time.process_time()
        model.learn(total_timesteps=steps)
        return (time.process_time() - t0) / steps

    warm = SAC("MlpPolicy", DummyVecEnv([NullEnv]), device="cpu", verbose=0, **sac_kwargs(cfg))  # one-time imports
    warm.learn(total_timesteps=200)
    pairs = [(harness(), bare()) for _ in range(repeats)]
    return {
        "training_overhead": statistics.median(h / b for h, b in pairs),
        "training_harness_steps_per_second": statistics.median(1 / h for h, _ in pairs),
        "training_bare_steps_per_second": statistics.median(1 / b for _, b in pairs),
        "training_overhead_min": min(h / b for h, b in pairs),
        "training_overhead_max": max(h / b for h, b in pairs),
    }


# ------------------------------------------------------------------------------------------ commands


def bench_dry_run(repeats: int) -> float:
    cmd = [
        sys.executable,
        str(ROOT / "backend" / "scripts" / "run_walk_forward.py"),
        "--symbol",
        "SPY",
        "--source",
        "sample",
        "--windows",
        str(ROOT / "tmp" / "mini_windows_multi.json"),
        "--dry-run",
    ]

    def once() -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - t0

    once()  # warm the file cache
    return median_of(once, repeats)


def bench_sweep(timesteps: int) -> dict[str, float]:
    def sweep(workers: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "backend.cli",
                "sweep",
                "--configs",
                str(ROOT / "tmp" / "mini_config_v1_default.json"),
                "--seeds",
                "4",
                "--windows",
                str(ROOT / "tmp" / "mini_window.json"),
                "--timesteps",
                str(timesteps),
                "--workers",
                str(workers),
                "--output-dir",
                tmp,
                "--quiet",
                "--no-report",
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            return time.perf_counter() - t0

    one, two = sweep(1), sweep(2)
    return {"sweep_1_worker_seconds": one, "sweep_2_workers_seconds": two, "sweep_speedup_2_workers": one / two}


def bench_replay(repeats: int) -> float:
    from backend import pipeline
    from backend.envs.intraday_env import IntradayTradingEnv
    from backend.evaluation.simulate import run_policy
    from backend.features import compute_features
    from backend.training.trainer import feature_stats_from, train_window
    from backend.training.walk_forward_eval import fast_policy, load_agent

    s = pipeline.setup(
        pipeline.RunOptions(
            config=str(ROOT / "tmp" / "mini_config_v1_default.json"),
            windows=str(ROOT / "tmp" / "mini_window.json"),
            sets=["training.total_timesteps=300", "sac.learning_starts=100"],
        )
    )
    feats = compute_features(s.market, s.cfg.env.features)
    w = s.windows[0]
    span = (w.test_start, min(w.test_start + 5_000, len(s.market)))  # about 64 sessions of 5m bars
    with tempfile.TemporaryDirectory() as tmp:
        train_window(s.cfg, s.market, feats, w, Path(tmp), None, "bench", {})

        model, normaliser, _ = load_agent(
            Path(tmp), s.cfg, feats.shape[1], lambda: IntradayTradingEnv(s.market, feats, span, s.cfg.env)
        )
        norm = feature_stats_from(normaliser, feats.shape[1])

        def make_env() -> IntradayTradingEnv:
            return IntradayTradingEnv(s.market, feats, span, s.cfg.env, "sequential", normalisation=norm)

        policy = fast_policy(model, True)

        def once() -> float:
            t0 = time.perf_counter()
            traj = run_policy(make_env(), policy, s.market.session_id)
            return len(traj.returns) / (time.perf_counter() - t0)

        return median_of(once, repeats)


def bench_sample_load(repeats: int) -> float:
    from backend.config import DataConfig
    from backend.data import sources
    from backend.data.loader import load_bars

    def once() -> float:
        sources._read_sample.cache_clear()
        t0 = time.perf_counter()
        load_bars(DataConfig(interval="5m"))
        return time.perf_counter() - t0

    return median_of(once, repeats)


# ------------------------------------------------------------------------------------------ main


def verdict(name: str, value: float | None) -> str:
    if name not in TARGETS:
        return ""
    if value is None:
        return "n/a (optional dependency missing)"
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{'PASS' if ok else 'MISS'} (target {op} {target:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (a few minutes on 2 cores)")
    parser.add_argument("--out", type=str, help="write the figures as JSON")
    parser.add_argument("--only", type=str, help="comma-separated groups: env,peers,training,dry_run,sweep,replay,load")
    args = parser.parse_args()
    quick = args.quick
    groups = (
        set(args.only.split(",")) if args.only else {"env", "peers", "training", "dry_run", "sweep", "replay", "load"}
    )
    reps = 3 if quick else 5
    figures: dict[str, float | None] = {}
    started = time.perf_counter()
    if groups & {"env", "peers"}:
        bars, market, feats = _market()
        steps = 50_000 if quick else 200_000
        ours = bench_env(market, feats, steps, reps)
        if "env" in groups:
            figures["env_steps_per_second"] = ours
        if "peers" in groups:
            peer_steps = 5_000 if quick else 20_000
            gte = bench_gym_trading_env(bars, feats, peer_steps, reps)
            gat = bench_gym_anytrading(bars, peer_steps, reps)
            figures["gym_trading_env_steps_per_second"] = gte
            figures["gym_anytrading_steps_per_second"] = gat
            figures["env_vs_gym_trading_env"] = ours / gte if gte else None
            figures["env_vs_gym_anytrading"] = ours / gat if gat else None
    if "training" in groups:
        figures.update(bench_training_overhead(1_500 if quick else 5_000, 3 if quick else 5))
    if "dry_run" in groups:
        figures["dry_run_seconds"] = bench_dry_run(reps)
    if "sweep" in groups:
        figures.update(bench_sweep(1_500 if quick else 5_000))
    if "replay" in groups:
        figures["replay_bars_per_second"] = bench_replay(reps)
    if "load" in groups:
        figures["sample_load_seconds"] = bench_sample_load(reps)

    width = max(len(k) for k in figures)
    for name, value in figures.items():
        shown = "n/a" if value is None else (f"{value:,.3f}" if value < 100 else f"{value:,.0f}")
        print(f"{name:<{width}}  {shown:>14}  {verdict(name, value)}")
    doc = {
        "figures": figures,
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
    }
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
