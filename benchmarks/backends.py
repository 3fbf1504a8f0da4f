"""SB3 (PyTorch) vs SBX (JAX) SAC training speed, side by side, on one core.

    python benchmarks/backends.py                      # [64,64], [128,128], [256,256]; 3,000 steps each
    python benchmarks/backends.py --steps 1000 --repeats 1 --out /tmp/backends.json
    python benchmarks/backends.py --arch 16,16 --steps 8 --warmup 4 --repeats 1 --concurrent   # a smoke: seconds

Each measurement runs in a fresh process configured as a harness worker
(``algorithms.configure_worker(backend, threads=1)``: one torch thread, a one-thread JAX pool)
and builds the agent with ``algorithms.build_model`` from a config, so it measures exactly
what a window trains: SAC, batch 256, one gradient step per env step, on a null env with the
harness's observation size (163 floats = lookback 16 × 10 features + 3 state values; zeros,
reward 0, 78-bar episodes — a 5-minute session). ``learning_starts + warmup`` steps run first
(random actions, then the first updates: JAX compiles there) and are not timed; then
``steps`` steps are timed, every one with a gradient step. The backends alternate (their order
flips every repeat) so machine noise hits both; the figure is the median over repeats.

Printed per network: steps per wall second, steps per CPU second of the process (close to
wall on an idle core, less sensitive to other load), and ``sbx_vs_sb3_steps_per_second``
(> 1: SBX is faster).
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

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ((64, 64), (128, 128), (256, 256))
OBS_SIZE = 16 * 10 + 3
EPISODE_BARS = 78
LEARNING_STARTS = 256
BATCH = 256


def null_env(obs_dim: int = OBS_SIZE, act_dim: int = 1, episode: int = EPISODE_BARS):
    """The harness's null env (``auto_backend.null_env``, the one its backend measurement uses) at the
    benchmarks' default spaces: zero observations, reward 0, truncated every ``episode`` steps."""
    from backend.training.auto_backend import null_env as harness_null_env

    return harness_null_env(obs_dim, act_dim, episode)


def _child(backend: str, arch: list[int], steps: int, warmup: int) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    sys.path.insert(0, str(ROOT))
    from backend.training import algorithms

    algorithms.configure_worker(backend, threads=1, device="cpu")
    from backend.config.models import Config

    total = LEARNING_STARTS + warmup + steps
    cfg = Config.model_validate(
        {
            "agent": {"algorithm": "sac", "backend": backend},
            "sac": {"net_arch": list(arch), "batch_size": BATCH, "learning_starts": LEARNING_STARTS},
            "training": {"total_timesteps": total, "device": "cpu"},
        }
    )
    model = algorithms.build_model(cfg, null_env(), seed=0)
    model.learn(LEARNING_STARTS + warmup)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"steps_per_second": steps / wall, "steps_per_cpu_second": steps / cpu, "cpu_per_wall": cpu / wall}


def child_env() -> dict[str, str]:
    """This environment without the XLA settings this process may have given itself (a measured one sets its own)."""
    return {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}


def start_child(script: str, *args: str) -> subprocess.Popen:
    """``python SCRIPT --child ARGS``: one measurement in a fresh process (without the caller's XLA settings)."""
    cmd = [sys.executable, script, "--child", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_child(proc: subprocess.Popen, label: str) -> dict[str, float]:
    """The child's figures (its last line of output, JSON); its stderr's tail if it failed."""
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: {stderr.strip()[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def run_children(jobs: list[tuple[str, list[str]]], concurrent: bool = False) -> list[dict[str, float]]:
    """Each (script, child args) measured in a process of its own: one at a time, or all at once (a smoke)."""
    if concurrent:
        started = [(start_child(script, *args), args) for script, args in jobs]
        return [finish_child(proc, " ".join(args)) for proc, args in started]
    return [finish_child(start_child(script, *args), " ".join(args)) for script, args in jobs]


def measure_backends(
    archs: tuple[tuple[int, ...], ...] = ARCHS,
    steps: int = 3000,
    warmup: int = 300,
    repeats: int = 2,
    concurrent: bool = False,
) -> dict[str, dict[str, float]]:
    """{"64x64": {"sb3_steps_per_second", "sbx_steps_per_second", ..., "sbx_vs_sb3_steps_per_second"}, ...}.

    One child process at a time, the backends' order flipped every repeat. ``concurrent``: a repeat's children all
    at once, competing for the cores — for a smoke only (it takes the time of the slowest child; figures meaningless).
    """
    runs: dict[tuple[str, tuple[int, ...]], list[dict[str, float]]] = {}
    for r in range(repeats):
        order = ("sb3", "sbx") if r % 2 == 0 else ("sbx", "sb3")
        keys = [(backend, arch) for arch in archs for backend in order]
        jobs = [(__file__, [b, ",".join(map(str, a)), str(steps), str(warmup)]) for b, a in keys]
        for key, m in zip(keys, run_children(jobs, concurrent), strict=True):
            runs.setdefault(key, []).append(m)
    return _medians(archs, runs)


def _medians(archs: tuple[tuple[int, ...], ...], runs: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for arch in archs:
        row: dict[str, float] = {}
        for backend in ("sb3", "sbx"):
            for key in ("steps_per_second", "steps_per_cpu_second", "cpu_per_wall"):
                row[f"{backend}_{key}"] = round(statistics.median(m[key] for m in runs[(backend, arch)]), 2)
        row["sbx_vs_sb3_steps_per_second"] = round(row["sbx_steps_per_second"] / row["sb3_steps_per_second"], 2)
        row["sbx_vs_sb3_steps_per_cpu_second"] = round(
            row["sbx_steps_per_cpu_second"] / row["sb3_steps_per_cpu_second"], 2
        )
        out["x".join(map(str, arch))] = row
    return out


def _arch(text: str) -> tuple[int, ...]:
    return tuple(int(a) for a in text.split(","))


def _print_table(figures: dict[str, dict[str, float]], steps: int, repeats: int) -> None:
    print(f"SAC training, one core, batch {BATCH}, obs {OBS_SIZE}, {steps} timed steps, median of {repeats}")
    print("| net_arch | SB3 steps/s | SBX steps/s | sbx_vs_sb3_steps_per_second | per CPU second: SB3, SBX, ratio |")
    print("|---|---|---|---|---|")
    for name, row in figures.items():
        print(
            f"| {name} | {row['sb3_steps_per_second']:.1f} | {row['sbx_steps_per_second']:.1f} | "
            f"{row['sbx_vs_sb3_steps_per_second']:.2f} | {row['sb3_steps_per_cpu_second']:.1f}, "
            f"{row['sbx_steps_per_cpu_second']:.1f}, {row['sbx_vs_sb3_steps_per_cpu_second']:.2f} |"
        )


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]] | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        backend, arch, steps, warmup = argv[1], argv[2], int(argv[3]), int(argv[4])
        print(json.dumps(_child(backend, list(_arch(arch)), steps, warmup)))
        return None
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=300, help="untimed training steps after learning_starts")
    ap.add_argument("--repeats", type=int, default=2, help="measurements per backend and network (median)")
    ap.add_argument("--arch", type=_arch, action="append", help="a network, e.g. 128,128 (repeatable; default: three)")
    ap.add_argument("--concurrent", action="store_true", help="children at once: a smoke only (figures meaningless)")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    figures = measure_backends(tuple(args.arch or ARCHS), args.steps, args.warmup, args.repeats, args.concurrent)
    _print_table(figures, args.steps, args.repeats)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
