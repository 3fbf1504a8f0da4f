"""Benchmark suite: figures and ratios measured side by side in one run (median of repeats).

    python benchmarks/run.py --smoke --out /tmp/b.json     # every group on tiny inputs: seconds, figures meaningless
    python benchmarks/run.py --quick --out /tmp/b.json     # about 15 minutes on 2 cores, most of it the mini sweep
    python benchmarks/run.py --out benchmarks/latest.json  # longer, steadier
    python benchmarks/run.py --quick --only floor,backends # a subset of GROUPS

A line is printed as each group starts and when it ends (its seconds; also ``group_seconds`` in the --out JSON).
The floor comes first: the machine's compute floor of one SAC step (benchmarks/floor.py) at [64,64], [128,128] and
[256,256] ([128,128] only in the smoke).

Figures (targets in TARGETS; ratios hold on any machine):

* env_steps_per_second     raw step() throughput of our env (lookback 32, all default features,
                           random actions, one core)
* env_vs_gym_trading_env   ours / Gym-Trading-Env on the same bars (optional dependency)
* env_vs_gym_anytrading    ours / gym-anytrading on the same bars (optional dependency)
* training_overhead        CPU time per step of the harness's SAC training (our env with frozen
                           normalisation, callbacks, TensorBoard, saving the bundle) / the same learner
                           (sb3) on a null env with the same spaces and hyperparameters
* dry_run_seconds          wall time of the dry-run command on tmp/mini_windows_multi.json
* sweep_speedup_2_workers  1-worker time / 2-worker time for 4 equal sweep members
* replay_bars_per_second   deterministic replay throughput of a saved agent
* sample_load_seconds      load + validate + resample the bundled sample to 5m (cold)
* window_parallel_speedup_2_workers    `wf run --workers 1` time / `--workers 2` time on the 3-window mini run
                           (bound 1.5: two rounds of work), and the same on four equal windows
* production_steps_per_second_1_core   the production config's training speed, and a projection table
                           (windows × 200k steps × workers → hours, locally and on Ray)
* sbx_vs_sb3_steps_per_second_<net>    SBX (JAX) / SB3 (torch) SAC steps per second, one core, side by side
* learner_fraction_of_floor  (JSON object) each backend's steps/s / the floor, per network; "default": the backend
                           the harness's default config trains with here (``default_backend``: for ``auto``, the
                           faster of the two at [128,128], which is what auto measures)
* mini_sweep_<backend>_seconds   group mini_sweep: the seed's mini sweep (5 configs × 3 windows × 20k steps,
                           --workers 2, the configs' own backend; 10-15 minutes), its workers' idle share, and
                           mini_sweep_vs_floor (JSON object) = wall / (tasks × steps × floor step seconds / workers).
                           ``--sweep sbx|sb3`` adds the same sweep pinned to a backend.

--smoke runs every group on its smallest inputs (the test suite and a before-stop hook run it, under 40 s):
the `wf` commands run in this process on one worker, every harness group pinned to sb3 (no JAX compile).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.floor import one_thread_blas  # noqa: E402 - light (stdlib); before anything imports numpy

one_thread_blas()

from benchmarks import bench_mini_sweep as mini  # noqa: E402
from benchmarks.groups import (  # noqa: E402
    GROUPS,
    STEPS,
    Results,
    floor_again,
    floor_line,
    fractions_of_floor,
    record_mini_sweep,
    selected,
)

TARGETS = {
    "env_steps_per_second": (">=", 100_000),
    "env_vs_gym_trading_env": (">=", 1.5),
    "training_overhead": ("<=", 1.03),
    "dry_run_seconds": ("<=", 1.0),
    "sweep_speedup_2_workers": (">=", 1.8),
    "window_parallel_speedup_2_workers": (">=", 1.8),
    "window_parallel_speedup_2_workers_4_windows": (">=", 1.8),
    "sbx_vs_sb3_steps_per_second_128x128": (">=", 1.5),
    "learner_fraction_of_floor_default": (">=", 0.6),
    "mini_sweep_*_seconds": ("<=", 900),  # per backend the configs name (auto, sbx, sb3), and --sweep's
    "mini_sweep_vs_floor_*": ("<=", 1.3),
    "mini_sweep_*_members_failed": ("<=", 0),
    "replay_bars_per_second": (">=", 5_000),
}

# steps / repeats per mode: smoke = seconds, every group on its smallest inputs (the test suite runs it)
SIZES = {
    "smoke": {  # tiny steps, one repeat, `wf` in this process on one worker, sb3 (the figures mean nothing)
        "reps": 1,
        "env": 500,
        "peers": 200,
        "training": (64, 1),
        "sweep": 48,
        "sweep_seeds": 1,  # the mini_sweep smoke runs a sweep of two members
        "backend": "sb3",  # the harness groups: no JAX start-up and compile (backends covers sbx)
        "in_process": True,  # `wf` shares this process's imports (a subprocess costs seconds of start-up)
        "workers": (1, 1),  # no worker pool to start (the pair's code path is the same)
        "three_windows": False,
        "equal_windows": 2,  # of the four equal windows
        "replay_train": 64,
        "windows": 48,
        "projection": 16,
        "backends": (32, 1, 16),
        "concurrent_backends": True,  # the sb3 and sbx children at once
        "floor": (1, 3),
        "floor_nets": ((128, 128),),
        "floor_libraries": ("numpy", "torch"),  # no JAX start-up here (floor.py's own smoke runs JAX)
        "mini_sweep": mini.SMOKE,
    },
    "quick": {
        "reps": 3,
        "env": 50_000,
        "peers": 5_000,
        "training": (1_500, 3),
        "sweep": 1_500,
        "windows": 2_000,
        "projection": 500,
        "backends": (800, 1, 300),
        "floor": (7, 200),  # best of 7 × 200 calls a shape: ~5 s a network; measured again at the end
        "mini_sweep": mini.REAL,
    },
    "full": {
        "reps": 5,
        "env": 200_000,
        "peers": 20_000,
        "training": (5_000, 5),
        "sweep": 5_000,
        "windows": 20_000,
        "projection": 2_000,
        "backends": (3000, 2, 300),
        "floor": (5, 100),
        "mini_sweep": mini.REAL,
    },
}

# the real mini sweep: five mini configs × 3 windows × 20k steps, --workers 2 (issue 25); for --sweep-seconds
MINI_SWEEP = {"tasks": 15, "steps": 20_000, "workers": 2}


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer steps and repeats (about 15 minutes on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="every group on its smallest inputs (figures meaningless)")
    parser.add_argument("--out", type=str, help="write the figures as JSON")
    parser.add_argument("--only", type=str, help="comma-separated groups: " + ",".join(GROUPS))
    parser.add_argument(
        "--sweep",
        action="append",
        choices=["sb3", "sbx"],
        help="also run the seed's full mini sweep pinned to this backend (long: 10-25 minutes each)",
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=None, help="a measured mini-sweep wall time, for mini_sweep_vs_floor"
    )
    parser.add_argument("--window-steps", type=int, default=None, help="steps per window of the windows group")
    parser.add_argument(
        "--keep-sweep", type=str, default=None, help="write the mini_sweep group's sweep to this new folder and keep it"
    )
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(GROUPS)
        if unknown:
            parser.error(f"--only: unknown group(s) {sorted(unknown)}; choose from {','.join(GROUPS)}")
    return args


def _mode(args: argparse.Namespace) -> str:
    return "smoke" if args.smoke else "quick" if args.quick else "full"


GROUP_SECONDS: dict[str, float] = {}  # wall seconds of each group of the last run_groups (in the --out JSON)


def _timed(name: str, fn, *fn_args) -> None:
    print(f"[{name}] ...", flush=True)
    t0 = time.perf_counter()
    try:
        fn(*fn_args)
    finally:
        GROUP_SECONDS[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] {GROUP_SECONDS[name]:.1f} s", flush=True)


def _mini_sweep_vs_floor(res: Results, given: float | None) -> None:
    """Each measured (or given) mini-sweep wall time as a multiple of its floor at [128,128]."""
    from benchmarks.floor import sweep_vs_floor

    if "128x128" not in res.floors:
        return
    step = res.floors["128x128"]["floor_step_seconds"]
    for backend, record in res.mini_sweeps.items():
        res.figures[f"mini_sweep_vs_floor_{backend}"] = mini.vs_floor(record, step)  # None: a member failed
    if given is not None:
        res.figures["mini_sweep_vs_floor_given"] = sweep_vs_floor(
            wall_seconds=given, floor_step_seconds=step, **MINI_SWEEP
        )


def run_groups(groups: set[str], args: argparse.Namespace) -> Results:
    """The figures of the selected groups, in the order of STEPS; then ``--sweep`` mini sweeps and the ratios."""
    size = SIZES[_mode(args)]
    GROUP_SECONDS.clear()
    res = Results()
    for label, serves, runner in STEPS:
        if groups & serves:
            _timed(label, runner, size, args, res)
    for backend in args.sweep or []:
        record = res.mini_sweeps.get(backend)
        if record and not args.smoke:
            continue  # the mini_sweep group ran the real one on this backend already
        _timed(f"mini_sweep_{backend}", record_mini_sweep, res, dataclasses.replace(mini.REAL, backend=backend))
    if res.floors and len(GROUP_SECONDS) > 1:  # the floor and something measured against it
        _timed("floor_again", floor_again, size, res)
    fractions_of_floor(res)
    _mini_sweep_vs_floor(res, args.sweep_seconds)
    return res


# ------------------------------------------------------------------------------------------ output


def verdict(name: str, value: float | None) -> str:
    pattern = next((k for k in TARGETS if fnmatch.fnmatchcase(name, k)), None)
    if pattern is None:
        return ""
    if value is None:
        return "n/a (not measured: an optional dependency missing, a failed member, or not run in this mode)"
    op, target = TARGETS[pattern]
    ok = value >= target if op == ">=" else value <= target
    return f"{'PASS' if ok else 'MISS'} (target {op} {target:,})"


def _print(res: Results) -> None:
    for arch, f in res.floors.items():
        print(floor_line(arch, f))
    width = max((len(k) for k in res.figures), default=0)
    for name, value in res.figures.items():
        shown = "n/a" if value is None else (f"{value:,.3f}" if value < 100 else f"{value:,.0f}")
        print(f"{name:<{width}}  {shown:>14}  {verdict(name, value)}")
    if res.default_backend:
        print(f"default backend: {res.default_backend['setting']} -> {res.default_backend['backend']}")
    if res.table:
        print("\nProjection for the production config (200,000 steps a window, measured steps/s on one core):")
        print(res.table)


def _prefixed(figures: dict, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in figures.items() if k.startswith(prefix)}


def _document(res: Results, args: argparse.Namespace, host: dict, started: float) -> dict:
    return {
        "figures": res.figures,
        "floor": res.floors,
        "learner_fraction_of_floor": _prefixed(res.figures, "learner_fraction_of_floor_"),
        "default_backend": res.default_backend.get("backend"),
        "default_backend_setting": res.default_backend.get("setting"),
        "mini_sweep_vs_floor": _prefixed(res.figures, "mini_sweep_vs_floor_"),
        "mini_sweep": res.mini_sweeps,
        "harness_overhead": res.figures.get("training_overhead"),
        "group_seconds": dict(GROUP_SECONDS),
        "projection": res.table,
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "mode": _mode(args),
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": host,
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.floor import machine

    args = _parse_args(argv)
    started = time.perf_counter()
    host = machine()  # measured first: the figures' provenance (load average included)
    res = run_groups(selected(args), args)
    _print(res)
    doc = _document(res, args, host, started)
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
