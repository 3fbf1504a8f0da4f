"""The exhaustive env check of `wf audit`: every bar of every session, original vs perturbed vs truncated future.

For every window, both spans (train: the trainer's own env factory; test: the replay's own env factory) and
every session in them, the real feature code and the real env are run on a local slice of the bars (the session
and ``ENV_HISTORY`` bars before it) with eleven fixed action sequences: two seeded ones (partial sizes too) and
nine that hold every (previous, current) target pair at every bar (env_audit_variants.covering_targets):

- **reference**: the original bars;
- **perturbed after t**, for every bar t of the session: OHLCV after t replaced by a random walk, features
  recomputed from those bars by ``backend.features.compute_features``, the env rebuilt from them. The observation
  at every bar <= t (every slot), the rewards, net returns, held positions and equity of every step into a bar
  <= t, and the position chosen and the trade cost paid at t must be bit-identical to the reference;
- **truncated after t**: the rest of the session missing (the slice ends at t), features recomputed, the env
  rebuilt (its episode now ends at t, where it flattens). Everything before t must be bit-identical, and at t
  the feature slots and ``time_left`` (which come from the bars <= t and the calendar only).
- **in place** (env_audit_variants.py): the span's env on the whole market with the real window, the market and
  feature rows after t perturbed in place, compared in full at every bar <= t; run in fresh processes.

The normalisation is the window's own (fitted once on its original train span) and held fixed: it is fitted on
the whole train span by design, and is not what this check is about. Comparisons are exact (bit patterns).
A finding names the window, the span, the bar (timestamp) and the observation slot (feature k at lag j, or the
state variable), or the step quantity (reward, position, equity, ...).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.checks.env_audit_variants import (
    InPlace,
    InPlaceJob,
    InPlaceRunner,
    Tour,
    covering_targets,
    in_place_reference,
    perturb_after,
    tour,
)
from backend.checks.env_tours import STEP_COLS, Tours, first_difference, order_depends_on_bars
from backend.features.builtin import MarketArrays, compute_features

ENV_HISTORY = 512  # bars of history before each session in its local slice (feature warm-up)
TARGETS = (1.0, -1.0, 0.0, 0.5, None)  # entries/flips, exits, partial sizes; None = hold the previous target


@dataclass
class EnvFinding:
    window: str
    span: str  # "train" | "test"
    bar: int  # global bar index
    what: str  # the slot or step quantity that differs
    variant: str  # "perturbed" | "reshaped" | "truncated" | "in place" (the future after ``cut``) | "toured" | ""
    cut: int  # global bar index


@dataclass
class EnvAuditOptions:
    seed: int = 0
    perturb: bool = True
    reshape: bool = True  # future bars dropped, their start times moved, volumes redrawn (every slot compared at t)
    truncate: bool = True
    tours: bool = True  # the spans toured as the trainer and the replay do (env_tours.py)
    covering: bool = True  # the nine sequences with every (previous, current) target pair at every bar
    in_place: bool = True  # the span's env on the whole market, real indices, the future perturbed in place
    isolate: bool = True  # the in-place variant in one fresh process (state kept across instances sees no original)
    worker_init: Any = None  # called once in that process before it runs (tests plant leaks there)


@dataclass
class EnvAuditStats:
    sessions: int = 0
    bars: int = 0
    skipped_sessions: int = 0
    tour_episodes: int = 0  # episodes played by the tours (env_tours.py), each compared with its session alone
    tour_steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # window id -> seconds


STEP_NAMES = ("reward", "net return", "held position", "equity", "cost")
CHOSEN_NAMES = ("position chosen", "trade cost")


def reshape_after(market: MarketArrays, cut: int, ep_last: int, rng: np.random.Generator) -> tuple[MarketArrays, int]:
    """``perturb_after``, and the future's shape changed too: bars right after ``cut`` dropped, later bars' start
    times moved earlier (within their session), volumes redrawn.

    The episode holding ``cut`` (its last bar ``ep_last``, local index) still ends at ``ep_last``'s bar and still
    holds a bar after ``cut`` if it did: so the step into ``cut`` and the observation there (every slot) must be
    bit-identical to the original's, while the next bar's timestamp, the count of bars left and every later
    value differ. Bars of ``cut``'s session after ``ep_last`` (past a forced exit) keep their times, so that no
    bar moves into the episode. Returns the market and the number of bars dropped from ``cut``'s session."""
    market = perturb_after(market, cut, rng)
    n = len(market)
    if cut + 1 >= n:
        return market, 0
    sid = market.session_id
    if ep_last - cut >= 2:
        k = int(rng.integers(1, ep_last - cut))  # keeps ep_last's bar: the episode still goes on after cut
    else:
        k = 1 if cut >= ep_last and sid[cut + 1] != sid[cut] else 0
    keep = np.r_[np.arange(cut + 1), np.arange(cut + 1 + k, n)]
    arrays: dict[str, Any] = {
        f.name: getattr(market, f.name)[keep]
        for f in dataclasses.fields(market)
        if isinstance(getattr(market, f.name), np.ndarray)
    }
    arrays["columns"] = {name: v[keep] for name, v in market.columns.items()}
    ts, mfo, s = arrays["timestamps"].copy(), arrays["minutes_from_open"].copy(), arrays["session_id"]
    j = np.arange(cut + 1, len(keep))
    same = s[j] == s[j - 1]
    floor = np.where(same, ts[j - 1], ts[j] - np.round(mfo[j] * 60e9).astype(np.int64))  # predecessor or open
    shift = np.floor(rng.uniform(0.1, 0.6, len(j)) * (ts[j] - floor) / 1e9).astype(np.int64) * 1_000_000_000
    shift[(s[j] == s[cut]) & (j > ep_last - k)] = 0  # past the episode's end in cut's session: left alone
    ts[j] -= np.maximum(shift, 0)
    mfo[j] -= np.maximum(shift, 0) / 60e9
    arrays["timestamps"], arrays["minutes_from_open"] = ts, mfo
    return dataclasses.replace(market, **arrays), (k if cut < ep_last else 0)  # bars dropped from cut's session


def slot_name(i: int, names: list[str], lookback: int) -> str:
    """Observation slot ``i`` by name: feature k at lag j (rows are oldest first), or the state variable."""
    from backend.envs.intraday_env import STATE_NAMES  # heavy: gymnasium

    n_feat = len(names)
    if i < lookback * n_feat:
        lag = lookback - 1 - i // n_feat
        return f"feature '{names[i % n_feat]}' at lag {lag} (slot {i})"
    return f"state variable '{STATE_NAMES[i - lookback * n_feat]}' (slot {i})"


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _first_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first bit-level difference of two equally shaped 2-D arrays, or None."""
    bad = np.argwhere(_bits(a) != _bits(b))
    return None if len(bad) == 0 else (int(bad[0][0]), int(bad[0][1]))


def session_targets(seed: int, session: int, n: int) -> list[list[float]]:
    """Two fixed target sequences for one session, seeded: entries, flips, exits, partial sizes and holds.

    The second mirrors the first (short where it is long) and is fully invested (±1) wherever the first is flat,
    so at every bar at least one of them holds a position, long in one of them if the first is not flat.
    """
    rng = np.random.default_rng([seed, session])
    first, prev = [], 0.0
    for k in rng.integers(0, len(TARGETS), n):
        pick = TARGETS[int(k)]
        prev = prev if pick is None else pick
        first.append(prev)
    signs = rng.choice([-1.0, 1.0], n)
    second = [-x if x != 0.0 else float(sgn) for x, sgn in zip(first, signs, strict=True)]
    return [first, second]


class SessionCheck:
    """One session of one span: the local slice, its reference tour, and the per-bar variants."""

    def __init__(self, ctx: EnvAuditContext, span: str, a: int, b: int, hi: int) -> None:
        """Session bars [a, b) of ``span``; the slice runs on to ``hi`` (the next session's end), so that an env
        reading past its session reads bars that the perturbation changes too."""
        self.ctx, self.span, self.a, self.b, self.hi = ctx, span, a, b, hi
        self.job: tuple[str, int, int, int, list[list[np.ndarray]]] | None = None
        self.lo = max(0, a - ENV_HISTORY)
        self.local = ctx.market.take(self.lo, hi)
        self._i = 0

    def env(self, market: MarketArrays, dropped: int = 0) -> Any:
        """The span's real factory on a local market (features recomputed by the real feature code); ``dropped``:
        bars of the session removed from ``market`` (the reshaped variant)."""
        feats = compute_features(market, self.ctx.names)
        s, e = self.a - self.lo, min(len(market), self.b - self.lo - dropped)
        w = dataclasses.replace(self.ctx.window, train_start=s, train_end=e, test_start=s, test_end=e)
        return self.ctx.factory(self.span, market, feats, w)

    def reference(self) -> tuple[list[Tour], list[list[np.ndarray]]] | EnvFinding | None:
        """The session's tours on the original bars (None: the env holds no episode in this session)."""
        try:
            ref_env = self.env(self.local)
        except ValueError as e:
            if "holds no session" not in str(e):
                raise
            self.ctx.stats.skipped_sessions += 1  # fewer than 2 bars within the episode limits
            return None
        n = int(ref_env.episode_bounds[1][0] - ref_env.episode_bounds[0][0]) + 1
        scale = ref_env.config.max_position
        targets = session_targets(self.ctx.opts.seed, self.a, n)
        if self.ctx.opts.covering:
            targets += covering_targets(n, bool(ref_env.config.allow_short))
        actions = [[ref_env.action_for_target(x * scale) for x in seq] for seq in targets]
        try:
            ref = [tour(ref_env, seq) for seq in actions]
        except Exception as e:  # the full env works: this slice ends at the next session's end
            return self.finding(0, f"env ({type(e).__name__}: {e}) on the bars up to the next session's end", "")
        return ref, actions

    def run(self) -> EnvFinding | None:
        got = self.reference()
        if got is None or isinstance(got, EnvFinding):
            return got
        ref, actions = got
        n = len(ref[0].obs)
        first = self.a - self.lo
        self.ctx.stats.sessions += 1
        self.ctx.stats.bars += n
        opts, rng = self.ctx.opts, self.ctx.rng
        for i in range(n):
            t, self._i = first + i, i
            variants = []
            if opts.perturb:
                variants.append(("perturbed", lambda t=t: (perturb_after(self.local, t, rng), 0)))
            if opts.reshape:
                variants.append(("reshaped", lambda t=t: reshape_after(self.local, t, first + n - 1, rng)))
            if opts.truncate and i > 0:
                variants.append(("truncated", lambda t=t: (self.local.take(0, t + 1), 0)))
            for kind, build in variants:
                market, dropped = build()
                found = self.variant(ref, market, actions, i, kind, dropped)
                if found:
                    return found
        if opts.in_place:
            self.job = (self.span, self.a, self.b, self.hi, actions)
        return None

    def variant(
        self, ref: list[Tour], market: MarketArrays, actions: list, i: int, kind: str, dropped: int = 0
    ) -> EnvFinding | None:
        """Rebuild the env on ``market`` (features recomputed); compare its tours with the reference at bar i.

        Perturbed and reshaped: every bar <= i in full (every slot, the step into it, the choice at it).
        Truncated: the episode now ends (and flattens) at i, so the step into i and the position and P&L
        there are the flatten's; bars < i in full, and at i the feature slots and ``time_left``."""
        try:
            env = self.env(market, dropped)
            for k, (want, seq) in enumerate(zip(ref, actions, strict=True)):
                if kind == "truncated":
                    found = self.compare(want, tour(env, seq), i - 1, i, kind)
                else:
                    found = self.compare(want, tour(env, seq, stop=i), i, i, kind)
                if found:
                    found.what += f" (action sequence {k + 1} of {len(actions)})"
                    return found
        except Exception as e:  # the reference ran: an env that fails only on another future reads it
            return self.finding(i, f"env ({type(e).__name__}: {e})", kind)
        return None

    def compare(self, ref: Tour, got: Tour, full: int, upto: int, variant: str) -> EnvFinding | None:
        """Bars 0..full compared in full; bar ``upto`` (the truncation point) in its feature and time slots."""
        names, lookback = self.ctx.names, self.ctx.lookback
        rows = slice(0, full + 1)
        checks = [
            (ref.obs[rows], got.obs[rows], 0, lambda j: f"observation: {slot_name(j, names, lookback)}"),
            (ref.steps[rows], got.steps[rows], 0, lambda j: f"{STEP_NAMES[j]} of the step into the bar"),
            (ref.chosen[rows], got.chosen[rows], 0, lambda j: f"{CHOSEN_NAMES[j]} at the bar"),
        ]
        if upto > full:  # the truncation point: features and time_left only (position and P&L: the env flattened)
            cols = [*range(lookback * len(names)), lookback * len(names) + 2]
            pick = (slice(upto, upto + 1), cols)
            checks.append(
                (ref.obs[pick], got.obs[pick], upto, lambda j: f"observation: {slot_name(cols[j], names, lookback)}")
            )
        for x, y, offset, name in checks:
            if x.shape != y.shape:
                return self.finding(offset + min(len(x), len(y)), "episode length", variant)
            d = _first_diff(x, y)
            if d is not None:
                return self.finding(offset + d[0], name(d[1]), variant)
        return None

    def finding(self, row: int, what: str, variant: str) -> EnvFinding:
        """``row``: the episode's bar index (0 = the session's first bar in the span)."""
        return EnvFinding(self.ctx.window.id, self.span, self.a + row, what, variant, self.a + self._i)


@dataclass
class EnvAuditContext:
    cfg: Any
    market: MarketArrays
    names: list[str]
    window: Any
    norm: tuple | None
    clip_obs: float
    opts: EnvAuditOptions
    rng: np.random.Generator
    stats: EnvAuditStats
    features: np.ndarray | None = None  # the harness's feature rows of the whole market (the in-place variant)

    @property
    def lookback(self) -> int:
        return int(self.cfg.env.lookback)

    def factory(self, span: str, market: MarketArrays, feats: np.ndarray, w: Any) -> Any:
        """The trainer's own factory (train) or the replay's own factory (test): the code that really runs."""
        if span == "train":
            from backend.training.trainer import train_env_factory  # heavy: gymnasium

            make, _ = train_env_factory(self.cfg, market, feats, w, stats=self.norm)
            return make()
        from backend.evaluation.replay import test_env_factory  # heavy: gymnasium

        return test_env_factory(self.cfg, market, feats, w, self.norm, self.clip_obs)()


def span_sessions(market: MarketArrays, start: int, end: int) -> list[tuple[int, int]]:
    starts, stops = market.session_bounds()
    keep = (stops > start) & (starts < end)
    return [(max(int(a), start), min(int(b), end)) for a, b in zip(starts[keep], stops[keep], strict=True)]


def audit_env(
    cfg: Any, market: MarketArrays, features: np.ndarray, windows: list, opts: EnvAuditOptions | None = None
) -> tuple[list[EnvFinding], EnvAuditStats]:
    """Run the exhaustive env check over ``windows``; stops a window at its first finding."""
    from backend.training.trainer import CLIP_OBS, feature_stats  # heavy: gymnasium

    opts = opts or EnvAuditOptions()
    stats, findings = EnvAuditStats(), []
    rng = np.random.default_rng(opts.seed)
    runner = InPlaceRunner(opts, references, perturbed)
    try:
        for n, w in enumerate(windows):
            started = time.perf_counter()
            norm = feature_stats(features, w) if cfg.training.normalize_obs else None
            ctx = EnvAuditContext(cfg, market, list(cfg.env.features), w, norm, CLIP_OBS, opts, rng, stats, features)
            job = InPlaceJob(cfg, market, features, w, norm, CLIP_OBS, opts, [opts.seed, n])
            found = span_finding(ctx, job)
            if found is None and job.sessions:
                found = runner.run(job)
            if found is None and opts.tours:
                found = tour_finding(ctx, features)
            if found is not None:
                findings.append(found)
            stats.seconds[w.id] = time.perf_counter() - started
    finally:
        runner.close()
    return findings, stats


def span_finding(ctx: EnvAuditContext, job: InPlaceJob) -> EnvFinding | None:
    """Every session of both spans checked on its local slice; their in-place references collected in ``job``."""
    w, market = ctx.window, ctx.market
    for span, (s, e) in (("train", (w.train_start, w.train_end)), ("test", (w.test_start, w.test_end))):
        sessions = span_sessions(market, s, e)
        for k, (a, b) in enumerate(sessions):
            hi = sessions[k + 1][1] if k + 1 < len(sessions) else min(len(market), b + (b - a))
            check = SessionCheck(ctx, span, a, b, hi)
            found = check.run()
            if found:
                return found
            if check.job is not None:
                job.sessions.append(check.job)
    return None


def tour_finding(ctx: EnvAuditContext, features: np.ndarray) -> EnvFinding | None:
    """Both spans played as the trainer and the replay play them, against their sessions alone (env_tours.py)."""
    probe = ctx.factory("train", ctx.market, features, ctx.window)  # for its action mapping only

    def actions(first: int, n: int, visit: int) -> list[np.ndarray]:
        """The per-bar check's sequences for the session (the first and the mirrored one, by turns)."""
        seq = session_targets(ctx.opts.seed, first, n)[visit % 2]
        return [probe.action_for_target(x * probe.config.max_position) for x in seq]

    tours = Tours(ctx, features, actions)
    how = {
        "train": "toured as the trainer plays it (DummyVecEnv, seeded, plain resets, random order)",
        "test": "toured as the replay plays it (run_policy: episodes in order, account and DSR carried)",
    }
    for span in ("train", "test"):
        visits, env = tours.train_tour(ctx.market, features) if span == "train" else tours.test_tour()
        if span == "train":
            k = order_depends_on_bars(tours, visits, perturb_after(ctx.market, ctx.window.train_start - 1, ctx.rng))
            if k is not None:
                return EnvFinding(
                    ctx.window.id,
                    span,
                    visits[min(k, len(visits) - 1)].first,
                    f"episode order of the span {how[span]}: visit {k + 1} changes when the bars "
                    "change (the order must not depend on the data)",
                    "toured",
                    -1,
                )
        ctx.stats.tour_episodes += len(visits)
        ctx.stats.tour_steps += sum(len(v.steps) for v in visits)
        diff = first_difference(visits, tours.alone(span, visits, env))
        if diff is not None:
            k, row, kind, col = diff
            what = _tour_what(ctx, kind, col)
            detail = f"{what}, visit {k + 1} of the span {how[span]}, differs from the session played alone"
            return EnvFinding(ctx.window.id, span, visits[k].first + row, detail, "toured", -1)
    return None


def _tour_what(ctx: EnvAuditContext, kind: str, col: int) -> str:
    if kind == "obs":
        return "observation: " + slot_name(col, ctx.names, ctx.lookback)
    return f"{STEP_COLS[col]} of the step into the bar" if kind == "step" else "episode length"


HOW = {
    "perturbed": "change",
    "reshaped": "change in number, start times, prices and volumes (bars dropped, times moved)",
    "truncated": "are missing (the session truncated)",
    "in place": "and the feature rows after it change in place (the span's env on the whole market, real indices)",
}


def describe(f: EnvFinding, stamp: Any) -> str:
    """A finding as `wf audit` prints it (``stamp(bar)``: the bar's local timestamp)."""
    if not f.variant:
        return f"the {f.span} env fails in the session of {stamp(f.bar)}: {f.what}: it reads bars further ahead"
    if f.variant == "toured":
        return f"the {f.span} env's {f.what} at {stamp(f.bar)}: the env depends on how the span is played"
    return (
        f"the {f.span} env's {f.what} at {stamp(f.bar)} differs when the bars after {stamp(f.cut)} {HOW[f.variant]}: "
        "the env reads the future there"
    )


_WORKER_READY: list = []  # this worker ran opts.worker_init (once per process)


def _context(job: InPlaceJob) -> Any:
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
    ctx = _context(job)
    return [in_place_reference(SessionCheck(ctx, span, a, b, hi), acts) for span, a, b, hi, acts in job.sessions]


def perturbed(job: InPlaceJob, refs: list) -> Any:
    """Every bar of every session cut in place, against ``refs``; the first finding or None (the other worker)."""
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
