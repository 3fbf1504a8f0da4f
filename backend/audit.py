"""`wf audit`: prove, window by window, that nothing looks ahead.

For each window two random cuts t are drawn, one in the train span and one in the test
span. Every bar after t is replaced by noise; features, observations, normalisation
statistics (test-span cut: they must depend on the train span only) and the env's rewards
up to t must stay bit-identical. Structural checks: no training step's reward uses a bar of
the test span, and train and test (plus embargo) are disjoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.envs.intraday_env import IntradayTradingEnv
from backend.features import MarketArrays, compute_features
from backend.pipeline import Setup
from backend.training.trainer import observation_stats
from backend.windows import Window


@dataclass
class Finding:
    window: str
    check: str  # feature name, "observation", "reward", "normalisation", "train/test"
    bar: int | None
    message: str


def perturb_after(market: MarketArrays, cut: int, rng: np.random.Generator) -> MarketArrays:
    """Bars after ``cut`` replaced by a positive random walk (timestamps and sessions kept)."""
    n = len(market) - cut - 1
    if n <= 0:
        return market
    base = market.close[cut]
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    arrays = {}
    for name, new in (
        ("open", open_),
        ("high", high),
        ("low", low),
        ("close", close),
        ("volume", rng.uniform(1e3, 1e6, n)),
    ):
        arr = getattr(market, name).copy()
        arr[cut + 1 :] = new
        arrays[name] = arr
    return dataclasses.replace(market, **arrays)


def _trajectory(
    market: MarketArrays, feats: np.ndarray, span: tuple[int, int], cfg, cut: int, actions: np.ndarray
) -> list[tuple[int, np.ndarray, float]]:
    """(bar, observation, reward of the step into that bar) for bars <= cut, fixed actions."""
    env = IntradayTradingEnv(market, feats, span, cfg, "sequential")
    out = []
    k = 0
    for ep in range(env.n_episodes):
        obs, info = env.reset(options={"episode": ep})
        if info["bar"] > cut:
            break
        out.append((info["bar"], obs, 0.0))
        done = False
        while not done:
            obs, reward, done, _, info = env.step(actions[k % len(actions)])
            k += 1
            if info["bar"] > cut:
                return out
            out.append((info["bar"], obs, reward))
    return out


def _stamp(market: MarketArrays, i: int | None, tz: str) -> str:
    if i is None:
        return "-"
    return pd.Timestamp(int(market.timestamps[i]), tz="UTC").tz_convert(tz).isoformat()


def audit_window(s: Setup, features: np.ndarray, w: Window, rng: np.random.Generator) -> tuple[list[Finding], str]:
    cfg = s.cfg
    names = list(cfg.env.features)
    findings: list[Finding] = []
    if w.train_end + s.embargo > w.test_start:
        findings.append(
            Finding(
                w.id,
                "train/test",
                w.test_start,
                f"test starts {w.test_start - w.train_end} bars after train, embargo is {s.embargo}",
            )
        )
    train_env = IntradayTradingEnv(s.market, features, (w.train_start, w.train_end), cfg.env)
    last_reward_bar = int(train_env.episode_bounds[1].max())
    if last_reward_bar >= w.train_end:
        findings.append(
            Finding(
                w.id,
                "reward",
                last_reward_bar,
                f"a training reward uses bar {_stamp(s.market, last_reward_bar, s.timezone)} outside the train span",
            )
        )
    lo_train = min(w.train_start + cfg.env.lookback, w.train_end - 2)
    cuts = [
        ("train", int(rng.integers(lo_train, w.train_end - 1))),
        ("test", int(rng.integers(w.test_start, max(w.test_start + 1, w.test_end - 1)))),
    ]
    actions = rng.uniform(-1, 1, (997, 1)).astype(np.float32)
    described = []
    for label, cut in cuts:
        other = perturb_after(s.market, cut, rng)
        other_feats = compute_features(other, names)
        for j, name in enumerate(names):
            diff = np.flatnonzero(features[: cut + 1, j] != other_feats[: cut + 1, j])
            if len(diff):
                bar = int(diff[0])
                findings.append(
                    Finding(
                        w.id,
                        name,
                        bar,
                        f"feature '{name}' at bar {_stamp(s.market, bar, s.timezone)} changes when "
                        f"bars after {_stamp(s.market, cut, s.timezone)} change",
                    )
                )
        if cut >= w.train_end - 1:
            a = observation_stats(cfg, features, w)
            b = observation_stats(cfg, other_feats, w)
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
                findings.append(
                    Finding(
                        w.id, "normalisation", cut, "normalisation statistics change with bars after the train span"
                    )
                )
        span = (w.train_start, w.train_end) if label == "train" else (w.test_start, w.test_end)
        ta = _trajectory(s.market, features, span, cfg.env, cut, actions)
        tb = _trajectory(other, other_feats, span, cfg.env, cut, actions)
        for (bar_a, obs_a, r_a), (bar_b, obs_b, r_b) in zip(ta, tb, strict=False):
            if bar_a != bar_b or not np.array_equal(obs_a, obs_b):
                findings.append(
                    Finding(
                        w.id,
                        "observation",
                        bar_a,
                        f"observation at bar {_stamp(s.market, bar_a, s.timezone)} depends on later bars",
                    )
                )
                break
            if r_a != r_b:
                findings.append(
                    Finding(
                        w.id,
                        "reward",
                        bar_a,
                        f"reward at bar {_stamp(s.market, bar_a, s.timezone)} depends on later bars",
                    )
                )
                break
        described.append(f"{label} cut {_stamp(s.market, cut, s.timezone)} ({len(ta)} steps compared)")
    return findings, f"{w.id}: " + "; ".join(described)


def run_audit(s: Setup, seed: int = 0) -> tuple[list[Finding], list[str]]:
    features = compute_features(s.market, s.cfg.env.features)
    rng = np.random.default_rng(seed)
    findings, notes = [], []
    for w in s.windows:
        f, note = audit_window(s, features, w, rng)
        findings.extend(f)
        notes.append(note)
    return findings, notes
