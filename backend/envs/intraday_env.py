"""Intraday trading env: one episode per session, target-position actions, causal observations."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from backend.config.models import EnvConfig
from backend.envs.costs import CostModel
from backend.features.builtin import MarketArrays

STATE_NAMES = ("position", "unrealized_pnl", "time_left")


class IntradayTradingEnv(gym.Env):
    """Trade one instrument within regular sessions, flat overnight.

    ## Action Space
    ``Box(-1, 1, (1,), float32)``: the target position as a fraction of equity, scaled by
    ``max_position``. With ``allow_short=False`` the action maps linearly to
    [0, max_position]. Actions outside [-1, 1] are clipped; a NaN action means flat
    (target 0) in both modes. Targets within ``rebalance_threshold`` of 0 become 0, and
    changes smaller than ``rebalance_threshold`` are not traded.

    ## Observation Space
    ``Box(-inf, inf, (lookback * n_features + 3,), float32)``: the last ``lookback`` rows
    of the precomputed causal features (oldest first, bars <= t only; rows before the first
    loaded bar are zeros), then the agent's state: position held now (after drift), the
    unrealised P&L of that position as a fraction of equity, and ``time_left``: the fraction of
    the session's trading time left after the bar's own end, from the calendar alone —
    ``(horizon - bar_end) / horizon`` with ``horizon`` the session's close (or the
    forced-exit time, if earlier) in minutes from the open and ``bar_end`` the bar's close
    (``MarketArrays.bar_end_minutes``). It never counts the bars present, so a session whose
    last bars are missing does not tell the agent so before they are due (``wf audit``
    truncates every session after every bar to prove it).

    ## Rewards
    ``pnl``: net change in equity over the step × ``reward_scale`` (episode equity starts
    at 1); ``log_return``: log(equity_t+1 / equity_t) × ``reward_scale``; ``dsr``: the
    differential Sharpe ratio of the net step return (Moody & Saffell 2001) with
    adaptation rate 1 - ``dsr.decay``, zero during ``dsr.warmup_steps``, clipped to
    ``dsr.clip_value``. The DSR averages persist across episodes of one env instance (a
    session is too short for them to settle); ``reset(seed=...)`` starts them afresh.

    ## Costs
    Every change of position pays :class:`~backend.envs.costs.CostModel` at the bar's
    close, including the forced flatten at the end of the episode. Per-share and minimum
    fees are priced on the account value when the trade happens: the episode's equity
    times the account value at the episode's start. With ``episode_order="sequential"``
    (the replay) an episode that directly follows the one just played to its end starts
    with that episode's final account value, so the account carries across the sessions
    of a replay as a real one would; any other start (random order, as in training, a
    jump, a seeded reset, the wrap back to episode 0) starts at ``initial_capital``.
    Costs in bps do not depend on the account.

    ## Starting State
    Flat, episode equity 1, at the first bar of a session in the span: chosen with
    ``self.np_random`` (``episode_order="random"``), in order (``"sequential"``), or given
    as ``options={"episode": k}``.

    ## Episode End
    ``terminated`` at the session's last bar in the span or, with ``forced_exit_minutes``,
    at the last bar that ends (start + bar width, or the session close) at or before the
    open + ``forced_exit_minutes``; the position is flattened at that bar's close. A
    session needs two such bars to hold an episode (one to trade at, one to flatten at);
    sessions without are skipped. Also terminated if equity is wiped out. Never
    truncated (sessions are short).

    ## Step info
    ``bar`` (the bar the step moved to, t+1), ``position`` (the target chosen at t),
    ``held`` (the position held going into t's decision, after drift; 0 at the episode's
    start), ``net_return`` (equity change over the step, all costs included),
    ``trade_cost`` (cost of the trade at t's close), ``flatten_cost`` (cost of the forced
    flatten at t+1's close, 0 unless the episode ends there), ``cost`` (their sum) and
    ``traded`` (|change of position| at t, plus the flatten).

    ## Arguments
    ``market`` (:class:`MarketArrays`), ``features`` ((n_bars, n_features) float32),
    ``span`` ((start, end) bar indices, end exclusive), ``config`` (:class:`EnvConfig`),
    ``episode_order`` ("random" | "sequential"), ``cost_scale`` (multiplies costs),
    ``normalisation`` ((mean, variance) per feature, fitted on a train span: the feature rows are
    normalised once, exactly as a frozen ``VecNormalize`` with those statistics would do at every
    step), ``clip_obs``.

    The position chosen at bar t earns the close-to-close return from t to t+1.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention

    def __init__(
        self,
        market: MarketArrays,
        features: np.ndarray,
        span: tuple[int, int],
        config: EnvConfig,
        episode_order: str = "random",
        cost_scale: float = 1.0,
        normalisation: tuple[np.ndarray, np.ndarray] | None = None,
        clip_obs: float = 10.0,
    ) -> None:
        super().__init__()
        start, end = self._checked_span(market, features, span, episode_order)
        self.config = config
        self.span = (start, end)
        self.episode_order = episode_order
        self.lookback = config.lookback
        self.n_features = features.shape[1]
        self._flat, self._clip = self._observation_rows(features, start, end, config.lookback, normalisation, clip_obs)
        self._base = start  # window of bar t starts at flat row t - start
        self._lf = config.lookback * self.n_features
        self._close = market.close.tolist()
        self._time_left = self._calendar_time_left(market, config.forced_exit_minutes).tolist()
        self._read_settings(config, cost_scale)
        self._ep_first, self._ep_last = self._episodes(market, start, end, config.forced_exit_minutes)
        if len(self._ep_first) == 0:
            limit = config.forced_exit_minutes
            why = "" if limit is None else f" ending within forced_exit_minutes={limit:g} of the open"
            raise ValueError(f"span {span} holds no session with at least 2 bars{why}")
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self._lf + len(STATE_NAMES),), np.float32)
        self._obs = np.zeros(self._lf + len(STATE_NAMES), np.float32)
        self._initial_state(start)

    # ------------------------------------------------------------------ set-up helpers
    @staticmethod
    def _checked_span(
        market: MarketArrays, features: np.ndarray, span: tuple[int, int], episode_order: str
    ) -> tuple[int, int]:
        start, end = int(span[0]), int(span[1])
        if not 0 <= start < end <= len(market):
            raise ValueError(f"span {span} is outside the {len(market)} bars")
        if features.shape[0] != len(market):
            raise ValueError(f"features have {features.shape[0]} rows for {len(market)} bars")
        if episode_order not in ("random", "sequential"):
            raise ValueError(f"episode_order {episode_order!r}: use 'random' or 'sequential'")
        return start, end

    @staticmethod
    def _observation_rows(
        features: np.ndarray,
        start: int,
        end: int,
        lookback: int,
        normalisation: tuple[np.ndarray, np.ndarray] | None,
        clip_obs: float,
    ) -> tuple[np.ndarray, float | None]:
        """Observation rows for bars start-L+1 .. end-1 and the clip of the state dims (None: not normalised).

        Zero-padded before bar 0, flattened so that the window of bar t is one contiguous slice.
        """
        L, F = lookback, features.shape[1]
        lo = start - (L - 1)
        rows = features[max(lo, 0) : end].astype(np.float32, copy=False)
        if lo < 0:
            rows = np.vstack([np.zeros((-lo, F), np.float32), rows])
        clip = None
        if normalisation is not None:
            # Exactly what a frozen VecNormalize(mean, var, epsilon=0, clip_obs) does to each element of the
            # raw observation, done once for the span instead of at every step and every sampled batch.
            mean, var = (np.asarray(a, dtype=np.float64) for a in normalisation)
            rows = np.clip((rows.astype(np.float64) - mean) / np.sqrt(var), -clip_obs, clip_obs).astype(np.float32)
            clip = float(clip_obs)
        return np.ascontiguousarray(rows).ravel(), clip

    def _read_settings(self, config: EnvConfig, cost_scale: float) -> None:
        """The config's values the steps read, as plain floats (attribute reads in the hot path)."""
        self._costs = CostModel.from_config(config.costs).scaled(cost_scale)
        self._capital = float(config.initial_capital)
        self._max_pos = float(config.max_position)
        self._short = bool(config.allow_short)
        self._thr = float(config.rebalance_threshold)
        self._scale = float(config.reward_scale)
        self._reward_mode = config.reward
        self._eta = 1.0 - config.dsr.decay
        self._dsr_eps = config.dsr.epsilon
        self._dsr_warmup = config.dsr.warmup_steps
        self._dsr_clip = config.dsr.clip_value

    def _initial_state(self, start: int) -> None:
        """Flat at the span's first bar, fresh DSR averages, no episode played yet."""
        self._next_episode = 0
        self._dsr_a = 0.0
        self._dsr_b = 0.0
        self._dsr_n = 0
        self._t = self._first = self._last = start
        self._pos = 0.0
        self._equity = 1.0
        self._cash0 = self._capital  # account value (currency) at the episode's start
        self._episode = 0
        self._played: int | None = None  # the episode just played to its end, if any
        self._entry = 0.0
        self._upnl = 0.0

    @staticmethod
    def _episodes(
        market: MarketArrays, start: int, end: int, forced_exit_minutes: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        sid = market.session_id[start:end]
        first = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) + start
        stop = np.r_[first[1:], end]
        last = stop - 1
        if forced_exit_minutes is not None:
            # bars end in increasing order within a session: those that end by the limit are a prefix
            ends_by_limit = market.bar_end_minutes()[start:end] <= forced_exit_minutes
            last = np.minimum(last, first + np.add.reduceat(ends_by_limit.astype(np.int64), first - start) - 1)
        keep = last > first
        return first[keep], last[keep]

    @staticmethod
    def _calendar_time_left(market: MarketArrays, forced_exit_minutes: float | None) -> np.ndarray:
        """Per bar: the fraction of the session's trading time (open to close or forced exit) left after the bar."""
        horizon = market.session_minutes
        if forced_exit_minutes is not None:
            horizon = np.minimum(horizon, float(forced_exit_minutes))
        left = np.maximum(horizon - market.bar_end_minutes(), 0.0)
        return np.divide(left, horizon, out=np.zeros_like(left), where=horizon > 0)

    @property
    def n_episodes(self) -> int:
        return len(self._ep_first)

    @property
    def episode_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """First bar and flatten bar of every episode (global bar indices)."""
        return self._ep_first.copy(), self._ep_last.copy()

    @property
    def current_bar(self) -> int:
        return self._t

    @property
    def position(self) -> float:
        return self._pos

    @property
    def equity(self) -> float:
        """Episode equity now (1 at the episode's start, all costs included)."""
        return self._equity

    def action_for_target(self, target: float) -> np.ndarray:
        """The action that asks for ``target`` (fraction of equity); for scripted policies."""
        if self._short:
            a = target / self._max_pos
        else:
            a = 2.0 * target / self._max_pos - 1.0
        return np.array([min(1.0, max(-1.0, a))], dtype=np.float32)

    # ------------------------------------------------------------------ gym API
    def _get_obs(self) -> np.ndarray:
        i = (self._t - self._base) * self.n_features
        obs = self._obs
        obs[: self._lf] = self._flat[i : i + self._lf]
        obs[self._lf] = self._pos
        obs[self._lf + 1] = self._upnl
        obs[self._lf + 2] = self._time_left[self._t]
        if self._clip is not None:  # state dims: mean 0, variance 1 in the saved statistics; clipped alike
            np.clip(obs[self._lf :], -self._clip, self._clip, out=obs[self._lf :])
        return obs.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:  # a seeded reset starts the env afresh, DSR averages included
            self._dsr_a = self._dsr_b = 0.0
            self._dsr_n = 0
            self._next_episode = 0
        if options and "episode" in options:
            k = int(options["episode"])
            if not 0 <= k < self.n_episodes:
                raise ValueError(f"episode {k} out of range (0..{self.n_episodes - 1})")
        elif self.episode_order == "sequential":
            k = self._next_episode
        else:
            k = int(self.np_random.integers(self.n_episodes))
        played, self._played = self._played, None
        carry = self.episode_order == "sequential" and seed is None and played is not None and k == played + 1
        self._cash0 = self._cash0 * self._equity if carry else self._capital
        self._episode = k
        self._next_episode = (k + 1) % self.n_episodes
        self._first = self._t = int(self._ep_first[k])
        self._last = int(self._ep_last[k])
        self._pos = 0.0
        self._equity = 1.0
        self._entry = 0.0
        self._upnl = 0.0
        return self._get_obs(), {"episode": k, "bar": self._t}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        pos = self._pos
        target = self._target(float(action[0]), pos)
        t = self._t
        price = self._close[t]
        equity0 = self._equity
        delta = target - pos
        cost = self._costs.fraction(delta, price, equity0 * self._cash0) if delta != 0.0 else 0.0
        trade_cost = cost
        # entry price of the position after the trade (for unrealised P&L)
        if target == 0.0:
            self._entry = 0.0
        elif pos == 0.0 or (pos > 0.0) != (target > 0.0):
            self._entry = price
        elif abs(target) > abs(pos):
            self._entry = (abs(pos) * self._entry + abs(delta) * price) / abs(target)
        equity = equity0 * (1.0 - cost)
        nxt = self._close[t + 1]
        r = nxt / price - 1.0
        growth = 1.0 + target * r
        equity *= growth
        t += 1
        self._t = t
        traded = abs(delta)
        terminated = False
        if growth <= 0.0 or equity <= 0.0:
            equity, held, terminated = 1e-12, 0.0, True
        else:
            held = target * (1.0 + r) / growth  # the position drifts with the price
        flat_cost = 0.0
        if t >= self._last and not terminated:
            flat_cost = self._costs.fraction(-held, nxt, equity * self._cash0) if held != 0.0 else 0.0
            equity *= 1.0 - flat_cost
            cost += flat_cost
            traded += abs(held)
            held = 0.0
            terminated = True
        if terminated:
            self._played = self._episode
        self._pos = held
        self._upnl = target * (nxt / self._entry - 1.0) if held != 0.0 else 0.0
        self._equity = equity
        net = equity / equity0 - 1.0
        reward = self._reward(equity, equity0, net)
        info = {
            "bar": t,
            "position": target,
            "held": pos,
            "net_return": net,
            "cost": cost,
            "trade_cost": trade_cost,
            "flatten_cost": flat_cost,
            "traded": traded,
        }
        return self._get_obs(), reward, terminated, False, info

    def _target(self, a: float, pos: float) -> float:
        """The position the action asks for, after the rebalance threshold (``pos``: held now)."""
        if a != a:  # NaN -> flat, whatever the mapping
            target = 0.0
        else:
            a = 1.0 if a > 1.0 else (-1.0 if a < -1.0 else a)
            target = a * self._max_pos if self._short else (a + 1.0) * 0.5 * self._max_pos
        thr = self._thr
        if -thr < target < thr:
            target = 0.0
        if -thr < target - pos < thr and target != 0.0:
            target = pos
        return target

    def _reward(self, equity: float, equity0: float, net: float) -> float:
        mode = self._reward_mode
        if mode == "pnl":
            return (equity - equity0) * self._scale
        if mode == "log_return":
            return math.log(equity / equity0) * self._scale
        return self._dsr(net)

    def _dsr(self, ret: float) -> float:
        a, b = self._dsr_a, self._dsr_b
        da, db = ret - a, ret * ret - b
        var = b - a * a
        d = (b * da - 0.5 * a * db) / (max(var, 0.0) + self._dsr_eps) ** 1.5
        self._dsr_a = a + self._eta * da
        self._dsr_b = b + self._eta * db
        self._dsr_n += 1
        if self._dsr_n <= self._dsr_warmup:
            return 0.0
        clip = self._dsr_clip
        if clip is not None:
            d = clip if d > clip else (-clip if d < -clip else d)
        return float(d)
