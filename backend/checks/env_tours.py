"""The env audit's tours (`wf audit`): each span played as the code that really uses it plays it, against its
sessions played alone.

The exhaustive per-bar check (:mod:`backend.checks.env_audit`) plays every session alone: an env over that one
session, reset with a seed and ``options={"episode": 0}``. The trainer and the replay do not play it so:

- **train**: the trainer wraps the env of the whole train span in SB3's ``DummyVecEnv``
  (:func:`backend.training.trainer.train_vec_env`); the algorithm seeds it (``set_random_seed`` →
  ``venv.seed(training.seed)``), ``learn`` resets it once (with that seed) and every later episode starts with a
  plain ``reset()`` from the wrapper (no seed, no options), its session drawn at random by the env;
- **test**: the replay's loop (:func:`backend.evaluation.simulate.run_policy`) plays the episodes of the whole test
  span in order with ``reset(options={"episode": k})``, no seed: the account value and the DSR averages carry.

A tour plays the span exactly so — the same wrapper, seed and reset calls, the same loop — with the per-bar
check's fixed action sequences; the train tour runs until every session was visited (at most ``TOUR_ROUNDS`` x the
sessions). Every episode of the tour must be bit-identical — every observation slot, and reward, net return, held
position, equity, cost, position chosen, trade cost and account value of every step — to its session played alone
(an env over that session only, reset with a seed and options, on the same bars and features), given the state the
docs say an episode inherits: the DSR averages of the episodes played before it and, in the replay, the account
value the previous session ended with (``IntradayTradingEnv`` docstring, *Costs*). That state is chained through
the alone-played envs, never copied from the toured one. Anything that depends on the reset style, the episode
order, the session drawn next or another session's bars — beyond what the docs carry — is a finding; and the
order of the train tour must not depend on the bars at all (it is replayed on bars perturbed from the span's
start). With the per-bar check (every bar of every session alone, its future perturbed, reshaped or truncated)
this carries the proof over to the spans as trained and replayed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.features.builtin import compute_features

TOUR_ROUNDS = 10  # the train tour stops once every session was visited, or after this many times their count
STEP_COLS = ("reward", "net return", "held position", "equity", "cost", "position chosen", "trade cost", "account")


@dataclass
class Visit:
    """One episode of a tour: its first bar, the observation at each of its bars and what each step did."""

    first: int
    obs: list = field(default_factory=list)  # observations (float32 vectors): reset, then after every step
    steps: list = field(default_factory=list)  # STEP_COLS of every step


def _step_row(env: Any, reward: float, info: dict) -> tuple:
    return (
        float(reward),
        info["net_return"],
        env.position,
        env.equity,
        info["cost"],
        info["position"],
        info["trade_cost"],
        env._cash0 * env.equity,  # the account value (currency) now
    )


def record(env: Any) -> list[Visit]:
    """Record what ``env`` returns to whoever calls its ``reset`` and ``step`` (the wrapper, the replay loop)."""
    visits: list[Visit] = []
    reset, step = env.reset, env.step

    def recording_reset(**kw: Any):
        obs, info = reset(**kw)
        visits.append(Visit(int(info["bar"]), [obs.copy()]))
        return obs, info

    def recording_step(action: np.ndarray):
        obs, reward, done, trunc, info = step(action)
        visits[-1].obs.append(obs.copy())
        visits[-1].steps.append(_step_row(env, reward, info))
        return obs, reward, done, trunc, info

    env.reset, env.step = recording_reset, recording_step
    return visits


class Tours:
    """The tours of one window. ``ctx``: the per-bar check's context (config, market, window, factories);
    ``actions(first_bar, n_bars, visit)``: the per-bar check's fixed action sequence for a session."""

    def __init__(self, ctx: Any, features: np.ndarray, actions: Any) -> None:
        self.ctx, self.features, self.actions = ctx, features, actions

    def train_tour(self, market: Any, features: np.ndarray) -> tuple[list[Visit], Any]:
        """The train span as the trainer plays it: its vec-env wrapper, seed and plain resets, random order."""
        from backend.training.trainer import train_vec_env  # heavy: gymnasium

        made: list = []

        def make() -> Any:
            made.append(self.ctx.factory("train", market, features, self.ctx.window))
            return made[-1]

        venv = train_vec_env(make, self.ctx.cfg.training.seed)
        env = made[0]
        visits = record(env)
        venv.reset()
        n_ep, ends = env.n_episodes, dict(zip(*map(list, env.episode_bounds), strict=True))
        while len({v.first for v in visits[:-1]}) < n_ep and len(visits) <= TOUR_ROUNDS * n_ep:
            first = visits[-1].first  # the episode the last reset started (the wrapper's own, after the first)
            for a in self.actions(first, ends[first] - first + 1, len(visits) - 1):
                if venv.step(a[None])[2][0]:
                    break
        venv.close()
        visits.pop()  # the wrapper's reset after the last episode played: not played
        return visits, env

    def test_tour(self) -> tuple[list[Visit], Any]:
        """The test span as the replay plays it: its own loop (``run_policy``), episodes in order, no seed."""
        from backend.evaluation.simulate import run_policy  # heavy: gymnasium

        env = self.ctx.factory("test", self.ctx.market, self.features, self.ctx.window)
        visits = record(env)
        ends = dict(zip(*map(list, env.episode_bounds), strict=True))

        def policy(obs: np.ndarray, env: Any) -> np.ndarray:
            first = visits[-1].first
            seq = self.actions(first, ends[first] - first + 1, len(visits) - 1)
            return seq[env.current_bar - first]

        run_policy(env, policy, self.ctx.market.session_id)
        return visits, env

    def alone(self, span: str, visits: list[Visit], toured: Any) -> list[Visit]:
        """Each visited session played alone, the DSR averages (and, in the replay, the account) chained through
        the alone-played envs as the docs define them."""
        firsts, lasts = (list(map(int, b)) for b in toured.episode_bounds)
        order = {a: k for k, a in enumerate(firsts)}
        capital = float(self.ctx.cfg.env.initial_capital)
        dsr, account, prev, out = (0.0, 0.0, 0), capital, None, []
        envs: dict[int, Any] = {}
        for k, v in enumerate(visits):
            first, last = v.first, lasts[order[v.first]]
            if first not in envs:
                w = dataclasses.replace(
                    self.ctx.window, train_start=first, train_end=last + 1, test_start=first, test_end=last + 1
                )
                envs[first] = self.ctx.factory(span, self.ctx.market, self.features, w)
            env = envs[first]
            obs, _ = env.reset(seed=0, options={"episode": 0})
            follows = span == "test" and prev is not None and order[first] == prev + 1
            env._dsr_a, env._dsr_b, env._dsr_n = dsr  # documented to carry across the episodes of one env
            env._cash0 = account if follows else capital  # the replay's account carry (docs: Costs)
            got = Visit(first, [obs])
            for a in self.actions(first, last - first + 1, k):
                obs, reward, done, _, info = env.step(a)
                got.obs.append(obs)
                got.steps.append(_step_row(env, reward, info))
                if done:
                    break
            dsr, account, prev = (env._dsr_a, env._dsr_b, env._dsr_n), env._cash0 * env.equity, order[first]
            out.append(got)
        return out


def first_difference(got: list[Visit], want: list[Visit]) -> tuple[int, int, str, int] | None:
    """(visit, row, kind, column) of the first bit-level difference of two tours (kind "obs" or "step"; a step's
    row is the bar it moved to), "length" for episodes of different lengths; None if identical."""
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        if len(g.obs) != len(w.obs) or len(g.steps) != len(w.steps):
            return k, min(len(g.obs), len(w.obs)) - 1, "length", 0
        d = _first_diff(np.array(g.obs, np.float32), np.array(w.obs, np.float32))
        s = _first_diff(np.array(g.steps, np.float64), np.array(w.steps, np.float64))
        if d is not None and (s is None or d[0] <= s[0] + 1):
            return k, d[0], "obs", d[1]
        if s is not None:
            return k, s[0] + 1, "step", s[1]
    return None


def _first_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first bit-level difference of two equally shaped 2-D arrays, or None."""
    bits = np.uint32 if a.dtype == np.float32 else np.uint64
    bad = np.argwhere(np.ascontiguousarray(a).view(bits) != np.ascontiguousarray(b).view(bits))
    return None if len(bad) == 0 else (int(bad[0][0]), int(bad[0][1]))


def order_depends_on_bars(tours: Tours, visits: list[Visit], perturbed: Any) -> int | None:
    """The train tour replayed on ``perturbed`` bars (the market perturbed from the span's start; features
    recomputed): the first visit whose session differs (None: the same order)."""
    other = perturbed
    again, _ = tours.train_tour(other, compute_features(other, tours.ctx.names))
    for k, (a, b) in enumerate(zip(visits, again, strict=False)):
        if a.first != b.first:
            return k
    return None if len(again) == len(visits) else min(len(again), len(visits))
