"""Faster-learner candidates side by side (issue 25): SAC steps/s of each, alternating, one core.

    python benchmarks/learner_candidates.py --steps 800 --repeats 3 --out tmp/learner_candidates.json

Candidates (each in a fresh process configured as a harness worker, SAC, batch 256, the null env of
benchmarks/backends.py):

* ``sb3``            stable_baselines3.SAC as it is (the library class, not the harness's FastSAC)
* ``sb3_fast``       backend.training.fast_sac.FastSAC (same math, lean update, foreach Adam)
* ``sb3_fast_fused`` FastSAC with torch's fused CPU Adam kernel instead of foreach
* ``sbx``            sbx.SAC with the harness's XLA flags (one-thread Eigen)
* ``sbx_xnnpack``    sbx.SAC with ``--xla_cpu_use_xnnpack=true`` added

The candidates alternate (the order rotates every repeat), so load from other jobs on the machine
hits all of them; compare the ratios of one run, not figures across runs. Printed per candidate:
steps per wall second of ``learn`` (env + collection + update), steps per CPU second, and the
update alone (``train(gradient_steps=n)`` on a filled buffer), each beside the floor of floor.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: a one-thread BLAS for the floor (as run.py)
ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ("sb3", "sb3_fast", "sb3_fast_fused", "sbx", "sbx_xnnpack")


def _model(candidate: str, arch: list[int], total: int):
    sys.path.insert(0, str(ROOT))
    from backend.training import algorithms
    from benchmarks.backends import BATCH, LEARNING_STARTS, OBS_SIZE

    backend = "sbx" if candidate.startswith("sbx") else "sb3"
    if candidate == "sbx_xnnpack":
        os.environ["XLA_FLAGS"] = "--xla_cpu_use_xnnpack=true"
    algorithms.configure_worker(backend, threads=1, device="cpu")
    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces

    from backend.config.models import Config

    class NullEnv(gym.Env):
        observation_space = spaces.Box(-np.inf, np.inf, (OBS_SIZE,), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(OBS_SIZE, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.zeros(OBS_SIZE, np.float32), 0.0, False, self.t >= 78, {}

    cfg = Config.model_validate(
        {
            "agent": {"algorithm": "sac", "backend": backend},
            "sac": {"net_arch": list(arch), "batch_size": BATCH, "learning_starts": LEARNING_STARTS},
            "training": {"total_timesteps": total, "device": "cpu"},
        }
    )
    if candidate.startswith("sb3_fast"):
        from backend.training.fast_sac import FastSAC

        kwargs, _ = algorithms.model_kwargs(cfg)
        model = FastSAC("MlpPolicy", NullEnv(), seed=0, device="cpu", verbose=0, **kwargs)
        if candidate == "sb3_fast_fused":
            for opt in model._optimizers():
                for group in opt.param_groups:
                    group["fused"], group["foreach"] = True, False
        return model
    if candidate == "sb3":  # the library's own SAC (build_model would give FastSAC)
        kwargs, _ = algorithms.model_kwargs(cfg)
        cls = algorithms.model_class("sac", "sb3", library=True)
        return cls("MlpPolicy", NullEnv(), seed=0, device="cpu", verbose=0, **kwargs)
    return algorithms.build_model(cfg, NullEnv(), seed=0)


def _child(candidate: str, arch: list[int], steps: int, warmup: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.backends import BATCH, LEARNING_STARTS

    model = _model(candidate, arch, LEARNING_STARTS + warmup + steps)
    model.learn(LEARNING_STARTS + warmup)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    updates = max(steps // 2, 1)
    model.train(gradient_steps=updates, batch_size=BATCH)  # SBX compiles one function per gradient_steps
    t0 = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=BATCH)
    update = time.perf_counter() - t0
    return {
        "steps_per_second": steps / wall,
        "steps_per_cpu_second": steps / cpu,
        "updates_per_second": updates / update,
    }


def _run_child(candidate: str, arch: tuple[int, ...], steps: int, warmup: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", candidate, ",".join(map(str, arch)), str(steps), str(warmup)]
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{candidate} {arch}: {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(
    candidates: tuple[str, ...], arch: tuple[int, ...], steps: int, warmup: int, repeats: int
) -> dict[str, dict[str, float]]:
    """{candidate: median figures}; the order rotates by one every repeat."""
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in candidates}
    for r in range(repeats):
        order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
        for c in order:
            runs[c].append(_run_child(c, arch, steps, warmup))
    return {
        c: {k: round(statistics.median(m[k] for m in ms), 2) for k in ms[0]} | {"runs": len(ms)}
        for c, ms in runs.items()
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        c, arch, steps, warmup = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(_child(c, [int(a) for a in arch.split(",")], steps, warmup)))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.backends import BATCH, OBS_SIZE
    from benchmarks.floor import floor_report, fraction_of_floor, machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", type=str, default="128,128")
    ap.add_argument("--candidates", type=str, default=",".join(CANDIDATES))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    arch = tuple(int(a) for a in args.arch.split(","))
    host = machine()
    floor = floor_report(obs_dim=OBS_SIZE, act_dim=1, net_arch=arch, batch=BATCH)
    started = time.perf_counter()
    rows = measure(tuple(args.candidates.split(",")), arch, args.steps, args.warmup, args.repeats)
    fl = floor["floor_steps_per_second"]
    print(f"floor {arch} b{BATCH}: {fl} steps/s (matmul GFLOP/s {floor['matmul_gflops']}); {host['cpu_model']}")
    print("| candidate | learn steps/s | per CPU s | fraction of floor | update alone /s | update fraction |")
    print("|---|---|---|---|---|---|")
    for c, row in rows.items():
        row["learner_fraction_of_floor"] = fraction_of_floor(row["steps_per_second"], fl)
        row["update_fraction_of_floor"] = fraction_of_floor(row["updates_per_second"], fl)
        print(
            f"| {c} | {row['steps_per_second']:.1f} | {row['steps_per_cpu_second']:.1f} | "
            f"{row['learner_fraction_of_floor']:.2f} | {row['updates_per_second']:.1f} | "
            f"{row['update_fraction_of_floor']:.2f} |"
        )
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"({time.perf_counter() - started:.0f} s; load before {host['load_average']}, after {load})")
    if args.out:
        doc = {
            "machine": host,
            "floor": floor,
            "candidates": rows,
            "load_after": load,
            "args": vars(args) | {"out": str(args.out)},
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
