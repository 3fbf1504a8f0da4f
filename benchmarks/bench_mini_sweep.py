"""The mini_sweep group of benchmarks/run.py: the seed's mini sweep and its multiple of the compute floor (issue 25).

The real one (``--quick`` and full mode): ``wf sweep`` of the five configs tmp/mini_config_v*.json × the three windows
of tmp/mini_windows_multi.json, their own 20,000 steps each, ``--workers 2``, on the configs' own backend. Recorded:
wall seconds, members completed, the workers' idle share (1 − busy window-task seconds / (workers × wall)), and

    mini_sweep_vs_floor = wall / (tasks × steps × floor step seconds at [128,128] / workers)

(None when a member did not complete: its steps were not all run.)

The smoke runs the same code on tiny sizes (two configs × one window × 48 steps, in this process, pinned to sb3) just
to keep it alive: its figures mean nothing.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_wf import task_seconds, wf
from benchmarks.common import MINI_WINDOW, MINI_WINDOWS, ROOT, backend_sets, learning_starts


@dataclasses.dataclass(frozen=True)
class MiniSweep:
    """What one mini sweep runs: ``configs`` of tmp/mini_config_v*.json (sorted), on ``windows``."""

    configs: int = 5
    windows: Path = MINI_WINDOWS
    steps: int | None = None  # None: the configs' own training.total_timesteps (20,000)
    workers: int = 2
    backend: str | None = None  # None: the configs' own agent.backend
    in_process: bool = False
    keep: Path | None = None  # write the sweep here and keep it (run.py --keep-sweep), e.g. for benchmarks/parity.py

    def config_paths(self) -> list[Path]:
        return sorted((ROOT / "tmp").glob("mini_config_v*.json"))[: self.configs]

    def window_count(self) -> int:
        doc = json.loads(self.windows.read_text())
        return len(doc["windows"] if isinstance(doc, dict) else doc)

    def steps_per_config(self) -> list[int]:
        if self.steps is not None:
            return [self.steps] * self.configs
        return [json.loads(p.read_text())["training"]["total_timesteps"] for p in self.config_paths()]

    def named_backend(self) -> str:
        """The pinned backend, else the one the configs name (the harness's default where they name none)."""
        if self.backend:
            return self.backend
        from backend.config.models import Config

        named = {json.loads(p.read_text()).get("agent", {}).get("backend") for p in self.config_paths()}
        named = {b or Config().agent.backend for b in named}
        return named.pop() if len(named) == 1 else "mixed"


REAL = MiniSweep()
SMOKE = MiniSweep(configs=2, windows=MINI_WINDOW, steps=48, workers=1, backend="sb3", in_process=True)


def _argv(sweep: MiniSweep, out: Path) -> list[str]:
    argv = ["sweep", "--configs", *map(str, sweep.config_paths()), "--windows", str(sweep.windows)]
    argv += ["--workers", str(sweep.workers), "--output-dir", str(out), "--quiet"]
    if sweep.steps is not None:
        argv += ["--timesteps", str(sweep.steps), "--set", learning_starts(sweep.steps)]
    for s in backend_sets(sweep.backend):
        argv += ["--set", s]
    return argv


def _members(out: Path) -> tuple[int, float, list[str]]:
    """(members completed, busy window-task seconds over all members, the backends that trained: auto resolved)."""
    rows = json.loads((out / "sweep.json").read_text())["members"]
    busy, trained = 0.0, set[str]()
    for r in rows:
        summary_path = out / r["name"] / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            busy += task_seconds(summary)
            trained |= {str(w["training"].get("backend")) for w in summary["windows"] if w.get("training")}
    return sum(r["status"] == "completed" for r in rows), busy, sorted(trained)


def bench_mini_sweep(sweep: MiniSweep) -> dict[str, Any]:
    """Run the mini sweep; its record (sizes, wall seconds, idle share, members completed, backends that trained)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = sweep.keep or Path(tmp) / "sweep"
        wall, _ = wf(_argv(sweep, out), in_process=sweep.in_process, check=False)  # a failed member is a figure
        if not (out / "sweep.json").exists():
            raise RuntimeError(f"the mini sweep wrote no sweep.json ({' '.join(_argv(sweep, out))})")
        completed, busy, trained = _members(out)
    steps = sweep.steps_per_config()
    windows = sweep.window_count()
    return {
        "backend": sweep.named_backend(),
        "trained_on": trained,
        "configs": sweep.configs,
        "windows": windows,
        "tasks": sweep.configs * windows,
        "steps": steps[0] if len(set(steps)) == 1 else None,
        "total_steps": windows * sum(steps),
        "workers": sweep.workers,
        "seconds": wall,
        "members_completed": completed,
        "idle_share": round(1.0 - busy / (sweep.workers * wall), 3),
    }


def vs_floor(record: dict, floor_step_seconds: float) -> float | None:
    """The sweep's wall time as a multiple of its floor: total steps × floor step seconds / workers.

    None when a member did not complete: a sweep whose members fail early is fast, not near its floor.
    """
    from benchmarks.floor import sweep_vs_floor

    if record["members_completed"] < record["configs"]:
        return None
    return sweep_vs_floor(
        wall_seconds=record["seconds"],
        tasks=1,
        steps=record["total_steps"],
        floor_step_seconds=floor_step_seconds,
        workers=record["workers"],
    )


def figures_of(record: dict) -> dict[str, float]:
    """The record's figures under the keys run.py has always used: mini_sweep_<backend>_..."""
    b = record["backend"]
    return {
        f"mini_sweep_{b}_seconds": record["seconds"],
        f"mini_sweep_{b}_members_completed": record["members_completed"],
        f"mini_sweep_{b}_members_failed": record["configs"] - record["members_completed"],
        f"mini_sweep_{b}_idle_share": record["idle_share"],
    }
