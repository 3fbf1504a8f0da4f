"""The env audit's building blocks (`wf audit`, :mod:`backend.checks.env_audit`): the futures it draws
(``perturb_after``), how it plays a session (``tour``), its action coverage and its "in place" variant.

- **covering sequences**: nine target sequences over {-1, 0, +1} x ``max_position`` (long only: {0.5, 0, 1}) such
  that at every bar t the pairs (target at t-1, target at t) over the nine enumerate all nine (previous, current)
  pairs: entries, exits, both flips and the three holds, at every bar. A leak that acts only for one action class
  at one bar is exercised by one of them.
- **in place**: the span's real factory on the FULL market with the REAL window (real absolute bar indices, the
  real number of bars), reset to the session's episode, with every market bar and every feature row after t
  perturbed and everything <= t original. The local slice of the per-bar check cannot trigger a leak switched on by
  the market's size or the span's position; this variant can. One fully perturbed copy of the market and feature
  arrays is built per session and its rows restored one at a time as t advances (a forward sweep), so each bar
  costs one env construction. Feature rows here are the harness's computed rows (the feature audit proves the
  feature code separately), perturbed after t with noise.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.features.builtin import MarketArrays

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass
class Tour:
    """What one episode showed, bar by bar (index i = the episode's i-th bar)."""

    obs: np.ndarray  # (n, D) float32: the observation at each bar
    steps: np.ndarray  # (n, 5) float64: reward, net return, held position, equity of the step into bar i (row 0: 0)
    chosen: np.ndarray  # (n, 2) float64: the position chosen at bar i and its trade cost (last row: NaN)


def perturb_after(market: MarketArrays, cut: int, rng: np.random.Generator) -> MarketArrays:
    """Bars after ``cut`` replaced by a positive random walk (timestamps and sessions kept).

    Extra file columns after ``cut`` are redrawn too, and every context series' bars that ended after bar
    ``cut``'s end are perturbed the same way (``cut`` = -1: all of them)."""
    n = len(market) - cut - 1
    if n <= 0:
        return market
    base = market.close[max(cut, 0)]
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    arrays: dict[str, Any] = {}
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
    if market.columns:
        arrays["columns"] = {k: _redrawn(v, cut, rng) for k, v in market.columns.items()}
    if market.context:
        known = int(market.bar_end_ns()[cut]) if cut >= 0 else -(2**62)
        arrays["context"] = {k: _perturbed_context(c, known, rng) for k, c in market.context.items()}
    return dataclasses.replace(market, **arrays)


def _redrawn(values: np.ndarray, cut: int, rng: np.random.Generator) -> np.ndarray:
    out = np.array(values, dtype=np.float64, copy=True)
    finite = out[np.isfinite(out)]
    scale = float(finite.std()) if len(finite) else 1.0
    out[cut + 1 :] = (float(finite.mean()) if len(finite) else 0.0) + (scale or 1.0) * rng.normal(
        0, 1, len(out) - cut - 1
    )
    return out


def _perturbed_context(series: Any, known_ns: int, rng: np.random.Generator) -> Any:
    """A context series whose bars that ended after ``known_ns`` are perturbed (what was not known then)."""
    k = int(np.searchsorted(series.end_ns, known_ns, side="right"))
    return dataclasses.replace(series, market=perturb_after(series.market, k - 1, rng))


def tour(env: Any, actions: list[np.ndarray], stop: int | None = None, episode: int = 0) -> Tour:
    """Play the env's ``episode`` with ``actions``; with ``stop``, stop after the step from bar index ``stop``."""
    obs, _ = env.reset(seed=0, options={"episode": episode})  # seeded: every tour starts afresh (DSR averages too)
    obs_rows, steps, chosen = [obs], [(0.0, 0.0, 0.0, 1.0, 0.0)], []
    done, i = False, 0
    while not done:
        obs, reward, done, _, info = env.step(actions[i])
        chosen.append((info["position"], info["trade_cost"]))
        i += 1
        if stop is not None and i > stop:
            break
        obs_rows.append(obs)
        steps.append((float(reward), info["net_return"], env.position, env.equity, info["cost"]))
    chosen = chosen[: len(obs_rows)]
    while len(chosen) < len(obs_rows):
        chosen.append((np.nan, np.nan))
    return Tour(np.array(obs_rows), np.array(steps, np.float64), np.array(chosen, np.float64))


def covering_targets(n: int, allow_short: bool) -> list[list[float]]:
    """Nine sequences: sequence j = 3q + r has target V[(r + t q) mod 3] at bar t (V = [-1, 0, 1]; long only:
    [0.5, 0, 1]). For every t >= 1, (V[r + (t-1) q], V[r + t q]) over r, q in 0..2 is every pair of V, once."""
    values = (-1.0, 0.0, 1.0) if allow_short else (0.5, 0.0, 1.0)
    return [[values[(r + t * q) % 3] for t in range(n)] for q in range(3) for r in range(3)]


def _perturbed_features(features: np.ndarray, first: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of the feature rows, rows from ``first`` on shifted by noise of the column's scale (never zero)."""
    out = np.array(features, copy=True)
    tail = out[first:]
    scale = np.nan_to_num(np.nanstd(tail, axis=0), nan=1.0) + 1e-3 if len(tail) else 1.0
    out[first:] = tail + (scale * rng.uniform(0.5, 1.5, tail.shape)).astype(out.dtype)
    return out


def in_place_reference(check: Any, actions: list) -> tuple[list, int] | None:
    """The session's tours in place on the original market (this process): (tours, episode) or None."""
    ctx = check.ctx
    env0 = ctx.factory(check.span, ctx.market, ctx.features, ctx.window)
    firsts = [int(x) for x in env0.episode_bounds[0]]
    if check.a not in firsts:
        return None  # the session holds no episode of the span's env (the local check skipped it too)
    k = firsts.index(check.a)
    return [tour(env0, seq, episode=k) for seq in actions], k


class InPlace:
    """The in-place variant of one session: the span's env over the whole market, the future perturbed in place,
    compared with ``ref`` (the tours in place on the original market, from :func:`in_place_reference`)."""

    def __init__(self, check: Any, actions: list, ref: list, k: int) -> None:
        ctx = check.ctx
        self.check, self.actions, self.ref, self.k = check, actions, ref, k
        self.pert = perturb_after(ctx.market, check.a - 1, ctx.rng)  # fresh arrays: restored in place below
        if self.pert is ctx.market:
            self.pert = dataclasses.replace(ctx.market, **{k: getattr(ctx.market, k).copy() for k in OHLCV})
        self.feats = _perturbed_features(ctx.features, check.a, ctx.rng)

    def restore(self, g: int) -> Any:
        """Bar ``g``'s original values put back (bars <= g original now); the market as of this cut."""
        market = self.check.ctx.market
        for name in OHLCV:
            getattr(self.pert, name)[g] = getattr(market, name)[g]
        for name, values in self.pert.columns.items():
            values[g] = market.columns[name][g]
        self.feats[g] = self.check.ctx.features[g]
        if not market.context:
            return self.pert
        known = int(market.bar_end_ns()[g])
        rng = self.check.ctx.rng
        return dataclasses.replace(
            self.pert, context={k: _perturbed_context(c, known, rng) for k, c in market.context.items()}
        )

    def at(self, i: int) -> Any:
        """Bar i of the session cut: every bar <= i compared in full with the in-place reference."""
        check, ctx = self.check, self.check.ctx
        market = self.restore(check.a + i)
        try:
            env = ctx.factory(check.span, market, self.feats, ctx.window)
            for k, (want, seq) in enumerate(zip(self.ref, self.actions, strict=True)):
                found = check.compare(want, tour(env, seq, stop=i, episode=self.k), i, i, "in place")
                if found:
                    found.what += f" (action sequence {k + 1} of {len(self.actions)})"
                    return found
        except Exception as e:  # the reference ran: an env that fails only on another future reads it
            return check.finding(i, f"env ({type(e).__name__}: {e})", "in place")
        return None


@dataclass
class InPlaceJob:
    """One window's in-place sessions, shipped to fresh processes: (span, a, b, hi, actions) each."""

    cfg: Any
    market: Any
    features: np.ndarray
    window: Any
    norm: tuple | None
    clip_obs: float
    opts: Any
    seed: list
    sessions: list = field(default_factory=list)


class InPlaceRunner:
    """Runs the in-place variant in two fresh processes (spawned, kept for the audit): one plays the references on
    the original market, the other every perturbed cut; in this one with ``opts.isolate`` off.

    Neither shares memory with the other or with this process: state an env keeps across instances (a module-level
    cache filled on the original bars by the reference) is not there when the perturbed futures are played."""

    def __init__(self, opts: Any, references: Any, perturbed: Any) -> None:
        """``references(job)`` and ``perturbed(job, refs)``: the workers' entry points (env_audit.py)."""
        self.opts, self.references, self.perturbed = opts, references, perturbed
        self.pools: list[Any] = []

    def run(self, job: InPlaceJob) -> Any:
        if not self.opts.isolate:  # worker_init is for fresh processes only
            job = dataclasses.replace(job, opts=dataclasses.replace(job.opts, worker_init=None))
            return self.perturbed(job, self.references(job))
        if not self.pools:
            spawn = multiprocessing.get_context("spawn")
            self.pools = [ProcessPoolExecutor(1, mp_context=spawn) for _ in range(2)]
        refs = self.pools[0].submit(self.references, job).result()
        return self.pools[1].submit(self.perturbed, job, refs).result()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown()
