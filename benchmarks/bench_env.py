"""The env groups of benchmarks/run.py: our env's step() throughput, its peers on the same bars, sample loading.

* ``bench_env``             random-action step() throughput of IntradayTradingEnv (lookback 32, default features)
* ``bench_gym_trading_env`` the same of Gym-Trading-Env (optional dependency; None when absent)
* ``bench_gym_anytrading``  the same of gym-anytrading's StocksEnv (optional dependency; None when absent)
* ``bench_sample_load``     load + validate + resample the bundled sample to 5m, cold
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import median_of

SPAN = (1_000, 41_000)  # bars of the 5m sample every env steps through


def market():
    """(bars, market arrays, default features) of the bundled 5m sample."""
    from backend.config.models import DataConfig, EnvConfig
    from backend.core.intervals import INTERVAL_MINUTES
    from backend.data.loader import load_bars
    from backend.features.builtin import MarketArrays, compute_features

    bars = load_bars(DataConfig(interval="5m"))
    arrays = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close, INTERVAL_MINUTES["5m"])
    return bars, arrays, compute_features(arrays, EnvConfig().features)


def bench_env(arrays, features, steps: int, repeats: int) -> float:
    from backend.config.models import EnvConfig
    from backend.envs.intraday_env import IntradayTradingEnv

    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 1)).astype(np.float32)

    def once() -> float:
        env = IntradayTradingEnv(arrays, features, SPAN, EnvConfig(lookback=32))
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
    from backend.config.models import EnvConfig

    df = bars.frame.iloc[SPAN[0] : SPAN[1]].copy()
    df.index = df.index.tz_localize(None)  # it reads index.values every step; keep that warning-free
    for j, name in enumerate(EnvConfig().features):
        df[f"feature_{name}"] = features[SPAN[0] : SPAN[1], j]
    actions = np.random.default_rng(0).integers(0, 3, steps)

    def make():
        return TradingEnv(df=df, positions=[-1, 0, 1], windows=32, verbose=0, initial_position=0, trading_fees=0.0001)

    return median_of(lambda: _discrete_steps_per_second(make, actions), repeats)


def bench_gym_anytrading(bars, steps: int, repeats: int) -> float | None:
    try:
        from gym_anytrading.envs import StocksEnv
    except ImportError:
        return None
    df = bars.frame.iloc[SPAN[0] : SPAN[1]].rename(columns=str.capitalize)
    actions = np.random.default_rng(0).integers(0, 2, steps)

    def make():
        return StocksEnv(df=df, window_size=32, frame_bound=(32, len(df)))

    return median_of(lambda: _discrete_steps_per_second(make, actions), repeats)


def bench_sample_load(repeats: int) -> float:
    from backend.config.models import DataConfig
    from backend.data import sources
    from backend.data.loader import load_bars

    def once() -> float:
        sources._read_sample.cache_clear()
        t0 = time.perf_counter()
        load_bars(DataConfig(interval="5m"))
        return time.perf_counter() - t0

    return median_of(once, repeats)


def env_groups(groups: set[str], size: dict, figures: dict) -> None:
    """``env`` and ``peers`` (the peers' ratios need our figure: one measurement of ours serves both)."""
    bars, arrays, feats = market()
    ours = bench_env(arrays, feats, size["env"], size["reps"])
    if "env" in groups:
        figures["env_steps_per_second"] = ours
    if "peers" in groups:
        gte = bench_gym_trading_env(bars, feats, size["peers"], size["reps"])
        gat = bench_gym_anytrading(bars, size["peers"], size["reps"])
        figures["gym_trading_env_steps_per_second"] = gte
        figures["gym_anytrading_steps_per_second"] = gat
        figures["env_vs_gym_trading_env"] = ours / gte if gte else None
        figures["env_vs_gym_anytrading"] = ours / gat if gat else None
