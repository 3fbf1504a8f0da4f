"""The groups of benchmarks/run.py: one runner per group, each adding its figures to a :class:`Results`.

A runner takes (sizes of the mode, the parsed arguments, the results so far). The floor is measured first and again
after the other groups (:func:`floor_again`: the faster sample counts); the fractions of the floor
(:func:`fractions_of_floor`, ``learner_fraction_of_floor_default`` for the harness's default backend) and the mini
sweep's multiple are taken against that final floor.
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
    res.floors = measure_floors(size)
    for arch, f in res.floors.items():
        print(floor_line(arch, f), flush=True)


def measure_floors(size: dict) -> dict[str, dict]:
    """The floor of each network of the mode (benchmarks/floor.py), keyed "128x128"."""
    from benchmarks.backends import BATCH, OBS_SIZE
    from benchmarks.floor import KERNELS, floor_report

    repeats, inner = size["floor"]
    libraries = size.get("floor_libraries", tuple(KERNELS))
    return {
        f"{a}x{b}": floor_report(
            obs_dim=OBS_SIZE, act_dim=1, net_arch=(a, b), batch=BATCH, repeats=repeats, inner=inner, libraries=libraries
        )
        for a, b in size.get("floor_nets", ((64, 64), (128, 128), (256, 256)))
    }


def floor_again(size: dict, res: Results) -> None:
    """The floor measured again after the other groups; each network keeps the faster of its two samples.

    A floor sample taken while the VM is slowed (a neighbour, a turbo step) is low, and a low floor flatters
    every figure divided by it; the faster sample is the conservative one. Both samples and their spread
    (1 − slower / faster) are kept in the floor's record.
    """
    for arch, again in measure_floors(size).items():
        first = res.floors[arch]
        samples = [first["floor_steps_per_second"], again["floor_steps_per_second"]]
        best = first if samples[0] >= samples[1] else again
        spread = round(1.0 - min(samples) / max(samples), 3)
        res.floors[arch] = {**best, "samples_steps_per_second": samples, "spread": spread}


def floor_line(arch: str, f: dict) -> str:
    samples = f.get("samples_steps_per_second")
    seen = f" (samples {' and '.join(f'{s:,.1f}' for s in samples)}: the faster)" if samples else ""
    return (
        f"floor {arch}: {f['step_gflop']} GFLOP/step, matmul GFLOP/s {f['matmul_gflops']}, "
        f"floor {f['floor_steps_per_second']:,.1f} steps/s{seen}"
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

    steps, repeats, warmup = size["backends"]
    archs = ((128, 128),) if args.smoke else ((64, 64), (128, 128), (256, 256))
    concurrent = size.get("concurrent_backends", False)
    measured = measure_backends(archs=archs, steps=steps, warmup=warmup, repeats=repeats, concurrent=concurrent)
    for arch, row in measured.items():
        for backend in ("sb3", "sbx"):
            res.figures[f"{backend}_steps_per_second_{arch}"] = row[f"{backend}_steps_per_second"]
        res.figures[f"sbx_vs_sb3_steps_per_second_{arch}"] = row["sbx_vs_sb3_steps_per_second"]
    _default_backend(res)


def fractions_of_floor(res: Results) -> None:
    """Each measured learner's steps/s as a share of its network's floor, and the default backend's."""
    from benchmarks.floor import fraction_of_floor

    for arch, floor in res.floors.items():
        for backend in ("sb3", "sbx"):
            sps = res.figures.get(f"{backend}_steps_per_second_{arch}")
            if sps:
                res.figures[f"learner_fraction_of_floor_{backend}_{arch}"] = fraction_of_floor(
                    sps, floor["floor_steps_per_second"]
                )
    fraction = res.figures.get(f"learner_fraction_of_floor_{res.default_backend.get('backend')}_128x128")
    if fraction is not None:
        res.figures["learner_fraction_of_floor_default"] = fraction


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
