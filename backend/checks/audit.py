"""`wf audit`: prove, window by window, that the code that really trains and replays is blind to the future.

For every window, with the real code paths (the window task's training half, the real replay):

1. **Training.** Train the window (and, with ``training.warm_start``, its warm-start chain as the
   run would plan it) on the original bars and again on bars perturbed after the train span; the
   saved bundles — network weights, optimiser state, normalisation statistics — must be bit-identical.
   The real training env (the trainer's own factory) is also stepped through every train session
   with fixed actions: its observations and rewards must not change either.
2. **Replay.** Replay the saved agent on the original bars and on bars perturbed after a cut t, for
   t = the first and the last bar of every test session plus random interior bars: observations,
   actions, positions and net returns up to t must be bit-identical.
3. **Structure.** Train, embargo and test spans are disjoint and in order; no training episode ends
   beyond the train span.

A finding names the window, the check and the first bar affected; the command exits 3.
The audit trains with its own small step budget (deterministic, one thread); see docs/integrity.md
for what it proves and what it cannot.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.checks.env_audit import EnvAuditOptions, EnvFinding, audit_env, describe, perturb_after
from backend.checks.warmup_audit import first_undeclared_read
from backend.core import fsguard
from backend.core.errors import EvaluationError
from backend.features.builtin import MarketArrays, compute_features
from backend.run import driver
from backend.run.tasks import WarmStart, WindowTask, features_for, train_task, window_paths
from backend.run.window_setup import Setup
from backend.training import bundle
from backend.walkforward.windows import Window

PREFIX_HISTORY = 5_000  # bars of history before each test bar for the feature check (warm-up of every feature)
VOLATILE_DATA_KEYS = ("start_time", "policy_class", "replay_buffer_class")  # differ between any two saves
# SBX pickles its train states into `data`; their weights are compared through jax_weights.msgpack instead
SBX_PICKLED_STATE_KEYS = ("policy", "actor", "qf", "ent_coef", "ent_coef_state", "observation_space", "action_space")


@dataclass
class Finding:
    window: str
    check: str  # "training", "training env", "replay", "train/test", feature names in messages
    bar: int | None
    message: str


@dataclass
class AuditOptions:
    steps: int = 300  # SAC steps per audit training
    interior_cuts: int = 2  # random test-span cuts besides every session's first and last bar
    seed: int = 0
    env_check: bool = True  # the exhaustive env check (every bar, perturbed and truncated futures; no agent)
    agent: bool = True  # train and replay an agent (training bundles, replay cuts)


def audit_config(cfg: Any, steps: int) -> Any:
    """The run's config with the audit's own small, deterministic budget (one thread, no TensorBoard)."""
    learning_starts = min(cfg.sac.learning_starts, max(1, steps // 3))
    return cfg.model_copy(
        update={
            "sac": cfg.sac.model_copy(update={"learning_starts": learning_starts}),
            "training": cfg.training.model_copy(
                update={"total_timesteps": steps, "tensorboard": False, "torch_threads": 1, "progress_every": steps}
            ),
        }
    )


class Auditor:
    def __init__(self, s: Setup, opts: AuditOptions) -> None:
        self.s, self.opts = s, opts
        self.cfg = audit_config(s.cfg, opts.steps)
        self.rng = np.random.default_rng(opts.seed)
        self.root = Path(tempfile.mkdtemp(prefix="wf-audit-"))
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self._variant = 0

    def close(self) -> None:
        """Remove the scratch folder (links inside it are removed as links, never followed)."""
        try:
            fsguard.remove(self.root.parent, self.root, "the audit's scratch folder")
        except OSError:
            pass

    # -- helpers
    def stamp(self, i: int | None) -> str:
        if i is None:
            return "-"
        i = min(max(int(i), 0), len(self.s.market) - 1)
        return pd.Timestamp(int(self.s.market.timestamps[i]), tz="UTC").tz_convert(self.s.timezone).isoformat()

    def variant(self, market: MarketArrays) -> tuple[MarketArrays, str]:
        """A perturbed market and a data key of its own (so no cache can hand back the original features)."""
        self._variant += 1
        return market, f"{self.s.bars.data_hash()}-audit-{self._variant}"

    def task(self, w: Window, market: MarketArrays, data_key: str, root: Path):
        return WindowTask(
            run="audit",
            config=self.cfg,
            window=w,
            position=(1, 1),
            embargo=self.s.embargo,
            timezone=self.s.timezone,
            data_hash=data_key,
            provenance=self.s.bars.provenance,
            periods_per_year=self.s.periods_per_year,
            market=market,
            root=root,
        )

    # -- 1. training
    def train_chain(self, target: Window, market: MarketArrays, data_key: str, root: Path, reuse: bool = False) -> Path:
        """Train ``target`` as the run would: its warm-start chain first (sources planned by the real code)."""
        by_id = {w.id: w for w in self.s.windows}
        sources = driver.warm_start_sources(self.s.windows, self.s.embargo) if self.cfg.training.warm_start else {}
        chain, k = [target.id], target.id
        while (nxt := sources.get(k)) is not None:
            k = nxt
            if k in chain:
                break
            chain.append(k)
        features = features_for(market, list(self.cfg.env.features), data_key)
        for wid in reversed(chain):
            if reuse and (root / wid / "metadata.json").exists():
                continue  # the reference chain is trained once
            task = self.task(by_id[wid], market, data_key, root)
            src = sources.get(wid)
            if src is not None and (root / src / "model.zip").exists():
                meta = bundle.read_metadata(root / src)
                task.warm_start = WarmStart(src, (root / src / "model.zip").read_bytes(), bundle.data_end(meta))
            wdir, tb_dir = window_paths(root, wid)
            wdir.mkdir(parents=True, exist_ok=True)
            train_task(task, market, features, wdir=wdir, tb_dir=tb_dir, stop=None)
        return root / target.id

    def audit_metadata(self, w: Window, reference: Path) -> None:
        """The bundle's own record of what it trained on must end with the window's train span."""
        meta = bundle.read_metadata(reference)
        claimed = pd.Timestamp((meta.get("window") or {}).get("train_end"))
        seen = pd.Timestamp(bundle.data_end(meta))
        last = pd.Timestamp(int(self.s.market.timestamps[w.train_end - 1]), tz="UTC")
        for what, when in (("its train span", claimed), ("the data it saw (warm start included)", seen)):
            if when > last:
                self.findings.append(
                    Finding(
                        w.id,
                        "training",
                        w.train_end,
                        f"the trained bundle records {what} up to {when.tz_convert(self.s.timezone).isoformat()}, "
                        f"beyond the train span's last bar {self.stamp(w.train_end - 1)}",
                    )
                )
                return

    def audit_training(self, w: Window, reference: Path) -> None:
        cut = w.train_end - 1  # every bar after the train span changes (the embargo included)
        other, key = self.variant(perturb_after(self.s.market, cut, self.rng))
        trained = self.train_chain(w, other, key, self.root / f"train-{w.id}")
        for part in bundle_differences(reference, trained):
            self.findings.append(
                Finding(
                    w.id,
                    "training",
                    cut + 1,
                    f"the trained bundle ({part}) changes when the bars after the train span change "
                    f"(from {self.stamp(cut + 1)}): training sees data beyond {self.stamp(cut)}",
                )
            )
        self.audit_training_env(w, other, key, cut)

    def audit_training_env(self, w: Window, other: MarketArrays, key: str, cut: int) -> None:
        """The trainer's own env factory, stepped through every train session with fixed actions."""
        from backend.training.trainer import train_env_factory  # heavy: gymnasium

        fa = features_for(self.s.market, list(self.cfg.env.features), self.s.bars.data_hash())
        fb = features_for(other, list(self.cfg.env.features), key)
        make_a, _ = train_env_factory(self.cfg, self.s.market, fa, w)
        make_b, _ = train_env_factory(self.cfg, other, fb, w)
        actions = np.random.default_rng(self.opts.seed).uniform(-1, 1, (1009, 1)).astype(np.float32)
        a, b = _env_tour(make_a(), actions), _env_tour(make_b(), actions)
        for (bar, obs_a, r_a), (_, obs_b, r_b) in zip(a, b, strict=True):
            what = "observation" if not np.array_equal(obs_a, obs_b) else ("reward" if r_a != r_b else None)
            if what:
                self.findings.append(
                    Finding(
                        w.id,
                        "training env",
                        bar,
                        f"the training env's {what} at {self.stamp(bar)} changes when bars after "
                        f"{self.stamp(cut)} (the train span's end) change",
                    )
                )
                return

    # -- 2. replay
    def replay_cuts(self, w: Window) -> list[int]:
        sid = self.s.market.session_id[w.test_start : w.test_end]
        first = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) + w.test_start
        last = np.r_[first[1:], w.test_end] - 1
        cuts = set(first.tolist()) | set(last.tolist())
        if w.test_bars > 2 and self.opts.interior_cuts:
            cuts |= set(self.rng.integers(w.test_start, w.test_end, self.opts.interior_cuts).tolist())
        return sorted(cuts)

    def audit_replay(self, w: Window, bundle_dir: Path) -> int:
        from backend.evaluation.replay import replay_agent  # heavy: gymnasium

        names = list(self.cfg.env.features)
        ref_obs: list = []
        fa = features_for(self.s.market, names, self.s.bars.data_hash())
        try:
            ref = replay_agent(
                bundle_dir, self.cfg, self.s.market, fa, w, cost_scales=(1.0,), record_observations=ref_obs
            )
        except EvaluationError as e:
            self.findings.append(
                Finding(w.id, "replay", w.test_start, f"the trained bundle refuses its own test span: {e}")
            )
            return 0
        cuts = self.replay_cuts(w)
        for cut in cuts:
            other, key = self.variant(perturb_after(self.s.market, cut, self.rng))
            obs: list = []
            rep = replay_agent(
                bundle_dir,
                self.cfg,
                other,
                features_for(other, names, key),
                w,
                cost_scales=(1.0,),
                record_observations=obs,
            )
            bar = first_difference(ref, rep, ref_obs, obs, cut)
            if bar is not None:
                self.findings.append(
                    Finding(
                        w.id,
                        "replay",
                        bar,
                        f"the replay at {self.stamp(bar)} (observation, action, position or return) changes when "
                        f"bars after {self.stamp(cut)} change",
                    )
                )
                break
        return len(cuts)

    def audit_features(self, w: Window) -> None:
        """Features at every test bar t, computed from bars <= t only, equal those of the whole history.

        The real ``compute_features`` runs on the bars up to t (from ``PREFIX_HISTORY`` bars earlier: features
        do not depend on where the history starts once warmed up); a feature that reads any later bar — at one
        bar a session, at noon, on Mondays — differs at that bar. No random cut has to land on it.
        """
        names = list(self.cfg.env.features)
        full = features_for(self.s.market, names, self.s.bars.data_hash())
        for t in range(w.test_start, w.test_end):
            lo = max(0, t + 1 - PREFIX_HISTORY)
            try:
                row = compute_features(self.s.market.take(lo, t + 1), names)[-1]
            except Exception as e:  # a feature that cannot be computed without later bars reads them
                self.findings.append(
                    Finding(
                        w.id,
                        "features",
                        t,
                        f"the features at {self.stamp(t)} cannot be computed from bars up to that bar only "
                        f"({type(e).__name__}: {e}): a feature reads later bars",
                    )
                )
                return
            bad = np.flatnonzero(row != full[t])
            if len(bad):
                self.findings.append(
                    Finding(
                        w.id,
                        "features",
                        t,
                        f"feature '{names[int(bad[0])]}' at {self.stamp(t)} differs when computed from bars up to "
                        "that bar only: it reads later bars",
                    )
                )
                return
        self.audit_warmups(w, names, full)

    def audit_warmups(self, w: Window, names: list[str], full: np.ndarray) -> None:
        """Every built-in and user feature at every test bar, from its declared warm-up only (checks/warmup_audit)."""
        found = first_undeclared_read(self.s.market, names, full, range(w.test_start, w.test_end))
        if found is not None:
            self.findings.append(
                Finding(
                    w.id,
                    "warm-up",
                    found.bar,
                    f"feature '{found.feature}' at {self.stamp(found.bar)} differs when computed from its declared "
                    f"warm-up ({found.declared}) only: it reads further back than it declares; declare its true "
                    "warm-up in register_feature(..., warmup=)",
                )
            )

    # -- 3. structure
    def audit_structure(self, w: Window) -> None:
        from backend.training.trainer import train_env_factory  # heavy: gymnasium

        if w.train_end + self.s.embargo > w.test_start:
            self.findings.append(
                Finding(
                    w.id,
                    "train/test",
                    w.test_start,
                    f"test starts {w.test_start - w.train_end} bars after train, embargo is {self.s.embargo}",
                )
            )
        feats = features_for(self.s.market, list(self.cfg.env.features), self.s.bars.data_hash())
        make, _ = train_env_factory(self.cfg, self.s.market, feats, w)
        last = int(make().episode_bounds[1].max())
        if last >= w.train_end:
            self.findings.append(
                Finding(
                    w.id, "training env", last, f"a training episode ends at {self.stamp(last)}, outside the train span"
                )
            )

    def audit_env(self) -> None:
        """Every bar of every session of both spans: the real env factories on original, perturbed, truncated bars."""
        feats = features_for(self.s.market, list(self.cfg.env.features), self.s.bars.data_hash())
        found, stats = audit_env(self.cfg, self.s.market, feats, self.s.windows, EnvAuditOptions(seed=self.opts.seed))
        for f in found:
            self.findings.append(Finding(f.window, "env", f.bar, self.env_message(f)))
        total = sum(stats.seconds.values())
        per = ", ".join(f"{k} {v:.1f} s" for k, v in stats.seconds.items())
        self.notes.append(
            f"env: {stats.bars} bars of {stats.sessions} sessions (train and test spans) compared bit for bit with "
            f"the future perturbed, reshaped and truncated after every bar (and perturbed in place on the whole "
            f"market, in fresh processes), under action sequences that make every position transition at every bar; "
            f"both spans toured as the trainer and the "
            f"replay play them ({stats.tour_episodes} episodes, {stats.tour_steps} steps, each episode compared with "
            f"its session alone); {stats.skipped_sessions} session(s) too short for an episode; {total:.1f} s ({per})"
        )

    def env_message(self, f: EnvFinding) -> str:
        return describe(f, self.stamp)

    def run(self) -> None:
        if self.opts.env_check:
            self.audit_env()
        if not self.opts.agent:
            return
        reference_root = self.root / "reference"
        features_for(self.s.market, list(self.cfg.env.features), self.s.bars.data_hash())
        for w in self.s.windows:
            self.audit_structure(w)
            self.audit_features(w)
            reference = self.train_chain(w, self.s.market, self.s.bars.data_hash(), reference_root, reuse=True)
            self.audit_metadata(w, reference)
            self.audit_training(w, reference)
            n_cuts = self.audit_replay(w, reference)
            self.notes.append(
                f"{w.id}: training compared bit for bit after {self.stamp(w.train_end - 1)}; "
                f"replay compared at {n_cuts} cuts ({self.cfg.training.total_timesteps} audit steps)"
            )


def _env_tour(env: Any, actions: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
    out, k = [], 0
    for ep in range(env.n_episodes):
        obs, info = env.reset(options={"episode": ep})
        out.append((info["bar"], obs, 0.0))
        done = False
        while not done:
            obs, reward, done, _, info = env.step(actions[k % len(actions)])
            k += 1
            out.append((info["bar"], obs, float(reward)))
    return out


def first_difference(ref: Any, rep: Any, ref_obs: list, obs: list, cut: int) -> int | None:
    """The first bar ≤ cut where the two replays differ (None: identical up to the cut)."""
    for (bar_a, oa), (bar_b, ob) in zip(ref_obs, obs, strict=False):
        if bar_a > cut:
            break
        if bar_a != bar_b or not np.array_equal(oa, ob):
            return bar_a
    ta, tb = ref.trajectory, rep.trajectory
    n = cut - ta.start + 1
    for name in ("actions", "positions", "returns", "costs"):
        a, b = getattr(ta, name)[:n], getattr(tb, name)[:n]
        diff = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
        if len(diff):
            return int(ta.start + diff[0])
    return None


def bundle_differences(a: Path, b: Path) -> list[str]:
    """Parts of two bundles that differ (weights, optimiser state, statistics); data hashes and times ignored."""
    out = []
    za, zb = zipfile.ZipFile(a / "model.zip"), zipfile.ZipFile(b / "model.zip")
    with za, zb:
        names = sorted(set(za.namelist()) | set(zb.namelist()))
        for name in names:
            if name in ("system_info.txt",):
                continue
            x = za.read(name) if name in za.namelist() else None
            y = zb.read(name) if name in zb.namelist() else None
            if name == "data" and x is not None and y is not None:
                sbx = "jax_weights.msgpack" in names
                x, y = _stable_data(x, sbx), _stable_data(y, sbx)
            if x != y:
                out.append(f"model.zip:{name}")
    for name in ("obs_stats.npz",):
        pa, pb = a / name, b / name
        if pa.exists() != pb.exists() or (pa.exists() and pa.read_bytes() != pb.read_bytes()):
            out.append(name)
    return out


def _stable_data(blob: bytes, sbx: bool = False) -> bytes:
    doc = json.loads(blob)
    for key in VOLATILE_DATA_KEYS + (SBX_PICKLED_STATE_KEYS if sbx else ()):
        doc.pop(key, None)
    return json.dumps(doc, sort_keys=True).encode()


def run_audit(s: Setup, opts: AuditOptions | None = None) -> tuple[list[Finding], list[str]]:
    auditor = Auditor(s, opts or AuditOptions())
    try:
        auditor.run()
    finally:
        auditor.close()
    return auditor.findings, auditor.notes
