"""The groups of benchmarks/run.py: one runner per group, each adding its figures to a :class:`Results`.

A runner takes (sizes of the mode, the parsed arguments, the results so far): the backends group reads the floors
the floor group measured, and ``learner_fraction_of_floor_default`` resolves the harness's default backend.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from benchmarks import bench_mini_sweep as mini

GROUPS = (
    "floor",
    "env",
    "peers",
    "training",
    "dry_run",
    "sweep",
    "replay",
    "load",
    "windows",
    "projection",
    "backends",
    "mini_sweep",
)


@dataclasses.dataclass
class Results:
    figures: dict[str, float | None] = dataclasses.field(default_factory=dict)
    floors: dict[str, dict] = dataclasses.field(default_factory=dict)
    table: str | None = None
    mini_sweeps: dict[str, dict] = dataclasses.field(default_factory=dict)  # backend -> record
    default_backend: dict[str, str | None] = dataclasses.field(default_factory=dict)


def _floor_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.backends import BATCH, OBS_SIZE
    from benchmarks.floor import KERNELS, floor_report

    repeats, inner = size["floor"]
    libraries = size.get("floor_libraries", tuple(KERNELS))
    for a, b in size.get("floor_nets", ((64, 64), (128, 128), (256, 256))):
        res.floors[f"{a}x{b}"] = floor_report(
            obs_dim=OBS_SIZE, act_dim=1, net_arch=(a, b), batch=BATCH, repeats=repeats, inner=inner, libraries=libraries
        )
        print(floor_line(f"{a}x{b}", res.floors[f"{a}x{b}"]), flush=True)


def floor_line(arch: str, f: dict) -> str:
    return (
        f"floor {arch}: {f['step_gflop']} GFLOP/step, matmul GFLOP/s {f['matmul_gflops']}, "
        f"floor {f['floor_steps_per_second']:,.1f} steps/s"
    )


def _env_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_env import env_groups

    env_groups(selected(args), size, res.figures)


def _training_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_learner import bench_training_overhead

    res.figures.update(bench_training_overhead(*size["training"]))


def _dry_run_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_wf import bench_dry_run

    res.figures["dry_run_seconds"] = bench_dry_run(size["reps"])


def _sweep_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_wf import bench_sweep

    res.figures.update(
        bench_sweep(
            size["sweep"],
            size.get("sweep_seeds", 4),
            size.get("backend"),
            size.get("workers", (1, 2)),
            size.get("in_process", False),
        )
    )


def _replay_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_learner import bench_replay

    res.figures["replay_bars_per_second"] = bench_replay(
        size["reps"], size.get("replay_train", 300), size.get("backend")
    )


def _load_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_env import bench_sample_load

    res.figures["sample_load_seconds"] = bench_sample_load(size["reps"])


def _windows_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_wf import bench_windows

    steps = args.window_steps or size["windows"]
    res.figures.update(
        bench_windows(
            steps,
            size.get("backend"),
            size.get("three_windows", True),
            size.get("workers", (1, 2)),
            size.get("in_process", False),
            size.get("equal_windows", 4),
        )
    )


def _projection_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.bench_learner import bench_projection, projection_table

    figures = bench_projection(size["projection"], size.get("backend"))
    res.figures.update(figures)
    res.table = projection_table(figures["production_steps_per_second_1_core"])


def _backends_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    from benchmarks.backends import measure_backends
    from benchmarks.floor import fraction_of_floor

    steps, repeats, warmup = size["backends"]
    archs = ((128, 128),) if args.smoke else ((64, 64), (128, 128), (256, 256))
    concurrent = size.get("concurrent_backends", False)
    measured = measure_backends(archs=archs, steps=steps, warmup=warmup, repeats=repeats, concurrent=concurrent)
    for arch, row in measured.items():
        for backend in ("sb3", "sbx"):
            res.figures[f"{backend}_steps_per_second_{arch}"] = row[f"{backend}_steps_per_second"]
            if arch in res.floors:
                res.figures[f"learner_fraction_of_floor_{backend}_{arch}"] = fraction_of_floor(
                    row[f"{backend}_steps_per_second"], res.floors[arch]["floor_steps_per_second"]
                )
        res.figures[f"sbx_vs_sb3_steps_per_second_{arch}"] = row["sbx_vs_sb3_steps_per_second"]
    _default_backend(res)


def _default_backend(res: Results) -> None:
    """The backend the harness's default config trains with here, asked of the harness (not a copy of its logic).

    Pinned: that one. ``auto``: the faster of the two learners measured at [128,128] (what auto measures).
    """
    from backend.config.algorithms import AUTO
    from backend.config.models import Config

    setting = Config().agent.backend
    chosen: str | None = setting
    if setting == AUTO:
        sps = {b: res.figures.get(f"{b}_steps_per_second_128x128") for b in ("sb3", "sbx")}
        measured = {b: v for b, v in sps.items() if v}
        chosen = max(measured, key=measured.__getitem__) if measured else None
    res.default_backend = {"setting": setting, "backend": chosen}
    fraction = res.figures.get(f"learner_fraction_of_floor_{chosen}_128x128")
    if fraction is not None:
        res.figures["learner_fraction_of_floor_default"] = fraction


def _mini_sweep_group(size: dict, args: argparse.Namespace, res: Results) -> None:
    keep = Path(args.keep_sweep) if getattr(args, "keep_sweep", None) else None
    record_mini_sweep(res, dataclasses.replace(size["mini_sweep"], keep=keep))


def record_mini_sweep(res: Results, sweep: mini.MiniSweep) -> None:
    record = mini.bench_mini_sweep(sweep)
    res.mini_sweeps[record["backend"]] = record
    res.figures.update(mini.figures_of(record))
    print(
        f"mini sweep ({record['backend']}, trained on {','.join(record['trained_on'])}): {record['seconds']:.1f} s, "
        f"{record['tasks']} tasks × {record['steps']} steps, --workers {record['workers']}, "
        f"{record['members_completed']}/{record['configs']} members completed, "
        f"workers' idle share {record['idle_share']:.3f}",
        flush=True,
    )


# (label in group_seconds, the groups it serves, runner), in the order they run
STEPS = (
    ("floor", {"floor"}, _floor_group),
    ("env,peers", {"env", "peers"}, _env_group),
    ("training", {"training"}, _training_group),
    ("dry_run", {"dry_run"}, _dry_run_group),
    ("sweep", {"sweep"}, _sweep_group),
    ("replay", {"replay"}, _replay_group),
    ("load", {"load"}, _load_group),
    ("windows", {"windows"}, _windows_group),
    ("projection", {"projection"}, _projection_group),
    ("backends", {"backends"}, _backends_group),
    ("mini_sweep", {"mini_sweep"}, _mini_sweep_group),
)


def selected(args: argparse.Namespace) -> set[str]:
    """The groups ``--only`` names (every group without it)."""
    return set(args.only.split(",")) if args.only else set(GROUPS)
