"""The env audit's action coverage and its "in place" variant (`wf audit`, :mod:`backend.checks.env_audit`).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OHLCV = ("open", "high", "low", "close", "volume")


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
    from backend.checks.env_audit import tour

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
        from backend.checks.env_audit import perturb_after

        ctx = check.ctx
        self.check, self.actions, self.ref, self.k = check, actions, ref, k
        self.pert = perturb_after(ctx.market, check.a - 1, ctx.rng)  # fresh arrays: restored in place below
        if self.pert is ctx.market:
            self.pert = dataclasses.replace(ctx.market, **{k: getattr(ctx.market, k).copy() for k in OHLCV})
        self.feats = _perturbed_features(ctx.features, check.a, ctx.rng)

    def restore(self, g: int) -> Any:
        """Bar ``g``'s original values put back (bars <= g original now); the market as of this cut."""
        from backend.checks.env_audit import _perturbed_context

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
        from backend.checks.env_audit import tour

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


_WORKER_READY: list = []  # this worker ran opts.worker_init (once per process)


def _context(job: InPlaceJob) -> Any:
    from backend.checks.env_audit import EnvAuditContext, EnvAuditStats

    if job.opts.worker_init is not None and not _WORKER_READY:
        job.opts.worker_init()
        _WORKER_READY.append(True)
    rng = np.random.default_rng(job.seed)
    names = list(job.cfg.env.features)
    return EnvAuditContext(
        job.cfg, job.market, names, job.window, job.norm, job.clip_obs, job.opts, rng, EnvAuditStats(), job.features
    )


def references(job: InPlaceJob) -> list:
    """Every session's in-place tours on the original market, or None (runs in the reference worker)."""
    from backend.checks.env_audit import SessionCheck

    ctx = _context(job)
    return [in_place_reference(SessionCheck(ctx, span, a, b, hi), acts) for span, a, b, hi, acts in job.sessions]


def perturbed(job: InPlaceJob, refs: list) -> Any:
    """Every bar of every session cut in place, against ``refs``; the first finding or None (the other worker)."""
    from backend.checks.env_audit import SessionCheck

    ctx = _context(job)
    for (span, a, b, hi, actions), got in zip(job.sessions, refs, strict=True):
        if got is None:
            continue
        check = SessionCheck(ctx, span, a, b, hi)
        variant = InPlace(check, actions, *got)
        for i in range(len(got[0][0].obs)):
            check._i = i
            found = variant.at(i)
            if found:
                return found
    return None


class InPlaceRunner:
    """Runs the in-place variant in two fresh processes (spawned, kept for the audit): one plays the references on
    the original market, the other every perturbed cut; in this one with ``opts.isolate`` off.

    Neither shares memory with the other or with this process: state an env keeps across instances (a module-level
    cache filled on the original bars by the reference) is not there when the perturbed futures are played."""

    def __init__(self, opts: Any) -> None:
        self.opts, self.pools = opts, []

    def run(self, job: InPlaceJob) -> Any:
        if not self.opts.isolate:  # worker_init is for fresh processes only
            job = dataclasses.replace(job, opts=dataclasses.replace(job.opts, worker_init=None))
            return perturbed(job, references(job))
        if not self.pools:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            spawn = multiprocessing.get_context("spawn")
            self.pools = [ProcessPoolExecutor(1, mp_context=spawn) for _ in range(2)]
        refs = self.pools[0].submit(references, job).result()
        return self.pools[1].submit(perturbed, job, refs).result()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown()
