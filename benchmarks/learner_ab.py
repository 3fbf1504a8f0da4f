"""The library SAC vs the harness's lean subclass, interleaved in one process: a load-robust speed ratio (issue 25).

    python benchmarks/learner_ab.py --rounds 20 --updates 50                       # SB3 SAC.train vs FastSAC.train
    python benchmarks/learner_ab.py --backend sbx --rounds 10 --updates 300        # sbx.SAC.learn vs FastSBXSAC.learn
    python benchmarks/learner_ab.py --backend sbx --train-freq 4 --rounds 10 --updates 300
    python benchmarks/learner_ab.py --rounds 2 --updates 2 --arch 16,16 --batch 32   # a smoke: seconds

``--backend sbx`` times whole ``learn`` calls of ``--updates`` env steps on the null env (FastSBXSAC changes the
host-side work around the update, not the update), each model in its own JAX jit caches, one process.

Both models have the same network ([128,128] by default), batch 256, the harness's 163-float observation,
and the same filled replay buffer; they alternate ``--updates`` gradient steps at a time (order flipped
every round), so load from other jobs hits both alike. Printed: updates/s of each (total updates / total
time), the ratio, and the per-round ratio's median and range.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.floor import one_thread_blas  # noqa: E402 - light (stdlib); before numpy: a one-thread BLAS

one_thread_blas()


def _models(arch: list[int], batch: int, obs: int):
    import numpy as np
    import torch as th
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    from backend.training.fast_sac import FastSAC
    from benchmarks.backends import null_env

    th.set_num_threads(1)
    out = {}
    rng = np.random.default_rng(0)
    rows = [
        (
            rng.normal(size=(1, obs)).astype(np.float32),
            rng.normal(size=(1, obs)).astype(np.float32),
            rng.uniform(-1, 1, (1, 1)).astype(np.float32),
            rng.normal(size=1).astype(np.float32),
        )
        for _ in range(4 * batch)
    ]
    for name, cls in (("library", SAC), ("fast", FastSAC)):
        kwargs = dict(batch_size=batch, learning_starts=0, buffer_size=4 * batch, seed=0, device="cpu")
        m = cls("MlpPolicy", null_env(obs), policy_kwargs={"net_arch": arch}, **kwargs)
        m.set_logger(configure(None, []))
        for o, n, a, r in rows:
            m.replay_buffer.add(o, n, a, r, np.array([False]), [{}])
        m.train(gradient_steps=10, batch_size=batch)  # warm
        out[name] = m
    return out


def _sbx_models(arch: list[int], batch: int, obs: int, every: int) -> dict:
    """sbx.SAC (``library``) and FastSBXSAC (``fast``), each past learning_starts."""
    from backend.training import algorithms

    algorithms.configure_worker("sbx", threads=1, device="cpu")
    from backend.config.models import Config
    from benchmarks.backends import null_env

    sac = {"net_arch": arch, "batch_size": batch, "learning_starts": batch, "train_freq": every}
    cfg = Config.model_validate(
        {
            "agent": {"algorithm": "sac", "backend": "sbx"},
            "sac": sac | {"gradient_steps": every},
            "training": {"total_timesteps": 10**7, "device": "cpu"},
        }
    )
    kwargs, _ = algorithms.model_kwargs(cfg)
    out = {}
    for name, library in (("library", True), ("fast", False)):
        cls = algorithms.model_class("sac", "sbx", library=library)
        out[name] = cls("MlpPolicy", null_env(obs), seed=0, device="cpu", verbose=0, **kwargs)
        out[name].learn(batch + 4 * every)  # past learning_starts: the update compiles here
    return out


class _Learn:
    """``train(gradient_steps=n, …)`` as ``model.learn(n)`` (n env steps): what ``_interleave`` calls for sbx."""

    def __init__(self, model) -> None:
        self.model = model

    def train(self, gradient_steps: int, batch_size: int) -> None:
        self.model.learn(gradient_steps, reset_num_timesteps=False)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sb3", "sbx"], default="sb3", help="whose library class and subclass")
    ap.add_argument("--train-freq", type=int, default=1, help="sbx: train_freq = gradient_steps")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--updates", type=int, default=50)
    ap.add_argument("--arch", type=str, default="128,128")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", type=Path)
    return ap.parse_args(argv)


def _interleave(models: dict, rounds: int, updates: int, batch: int) -> tuple[dict[str, float], list[float]]:
    """Total seconds of each model and the per-round ratio library / fast (order flipped every round)."""
    total = {k: 0.0 for k in models}
    ratios = []
    for r in range(rounds):
        times = {}
        for name in ("library", "fast") if r % 2 == 0 else ("fast", "library"):
            t0 = time.perf_counter()
            models[name].train(gradient_steps=updates, batch_size=batch)
            times[name] = time.perf_counter() - t0
            total[name] += times[name]
        ratios.append(times["library"] / times["fast"])
    return total, ratios


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    from benchmarks.backends import OBS_SIZE
    from benchmarks.floor import machine

    host = machine()
    arch = [int(a) for a in args.arch.split(",")]
    if args.backend == "sbx":
        models = {k: _Learn(m) for k, m in _sbx_models(arch, args.batch, OBS_SIZE, args.train_freq).items()}
    else:
        models = _models(arch, args.batch, OBS_SIZE)
    total, ratios = _interleave(models, args.rounds, args.updates, args.batch)
    n = args.rounds * args.updates
    doc = {
        "library_updates_per_second": round(n / total["library"], 1),  # SB3's SAC / sbx.SAC
        "fast_updates_per_second": round(n / total["fast"], 1),  # FastSAC / FastSBXSAC
        "fast_vs_library": round(total["library"] / total["fast"], 3),
        "round_ratio_median": round(statistics.median(ratios), 3),
        "round_ratio_min": round(min(ratios), 3),
        "round_ratio_max": round(max(ratios), 3),
        "backend": args.backend,
        "train_freq": args.train_freq if args.backend == "sbx" else 1,
        "arch": args.arch,
        "batch": args.batch,
        "machine": host,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps({k: v for k, v in doc.items() if k != "machine"}))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
