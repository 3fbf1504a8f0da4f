"""Config × seed sweeps: every member is a run folder; all members' windows are tasks on one pool.

Each member is a walk-forward into <output-dir>/<config stem>_s<seed>/ with its own summary.json
and lock; its stage markers carry its name. (member × window) tasks share one executor, so
5 configs × 3 windows on 2 workers keep both cores busy to the end. The sweep writes
sweep.json / sweep.csv (one row per member) and prints the table sorted by out-of-sample Sharpe.
"""

from __future__ import annotations

import dataclasses
import glob
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core import fsguard, stages
from backend.core.errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    FolderError,
    HarnessError,
    InputError,
)
from backend.core.status import Status
from backend.evaluation.documents import DocumentState
from backend.evaluation.selection import selection_from_rows
from backend.evaluation.sweep_report import build_sweep_report
from backend.run import executors
from backend.run import folder as rf
from backend.run.dispatch import run_drivers
from backend.run.driver import RunDriver, window_setup_detail
from backend.run.options import DriverOptions, RunRequest
from backend.run.summary import pool_use, task_seconds
from backend.run.universe import Universe, is_universe, symbol_setups
from backend.run.window_setup import load_run_config, setup
from backend.studies import compare
from backend.studies.compare import member_row
from backend.studies.compare_universe import universe_rows, universe_selection
from backend.walkforward.windows import check_id

if TYPE_CHECKING:
    from backend.evaluation.documents import SelectionDocument


@dataclass
class Member:
    name: str
    config: str
    seed: int
    output_dir: Path
    status: Status = Status.PENDING
    exit_code: int | None = None
    error: str | None = None
    seconds: float = 0.0


def expand_configs(patterns: list[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not hits:
            raise InputError(f"--configs {pattern!r}: no file matches")
        paths.extend(h for h in hits if h not in paths)
    return paths


def plan(configs: list[str], seeds: list[int], out: Path) -> list[Member]:
    members = []
    for cfg in configs:
        for seed in seeds:
            name = f"{Path(cfg).stem}_s{seed}"
            check_id(name, f"sweep member from --configs {cfg}", "member name")
            members.append(Member(name, cfg, seed, out / name))
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"sweep members {', '.join(dupes)} would share a folder (same config file name); rename the configs"
        )
    return members


def execute(
    members: list[Member], base: RunRequest, start_executor: Callable[[int], Any], pool: dict[str, Any] | None = None
) -> int:
    """Set up every member, then run all (member × window) tasks on ``start_executor(threads)``; 0 if all completed,
    else 1 (130). ``threads``: the members' largest ``training.torch_threads`` (one pool serves them all).
    ``pool``, when given, receives the pool's use (:func:`backend.run.summary.pool_use`)."""
    with ExitStack() as stack:
        planned, drivers, threads = [], {}, [1]
        for m in members:
            req = RunRequest(
                dataclasses.replace(base.setup, config=m.config, seed=m.seed),
                dataclasses.replace(base.driver, output_dir=str(m.output_dir), prefix=m.name, quiet=True),
            )
            try:
                d, pairs, n_threads = _member_driver(req, m.name, stack)
            except HarnessError as e:
                m.status, m.exit_code, m.error = Status.FAILED, e.exit_code, f"{type(e).__name__}: {e}"
                stages.emit(False, "Run Folder" if isinstance(e, FolderError) else "Window Setup", m.error, m.name)
                continue
            if not any(tasks for _, tasks in pairs) and d.unchanged is not None:
                m.status, m.exit_code = Status.SKIPPED, EXIT_OK
                stages.emit(True, "Sweep member", "completed earlier, not rerun (--resume)", m.name)
            drivers[m.name] = d
            planned.extend(pairs)
            threads.append(n_threads)
        executor = start_executor(max(threads))
        started = time.perf_counter()
        interrupted = run_drivers(planned, executor, quiet=base.driver.quiet)
        wall = time.perf_counter() - started
        for m in members:
            if m.name in drivers:
                code = drivers[m.name].finish(interrupted)
                m.seconds = drivers[m.name].doc.get("seconds") or 0.0
                if m.status != Status.SKIPPED or code != EXIT_OK:
                    m.exit_code = code
                    m.status = {EXIT_OK: Status.COMPLETED, EXIT_INTERRUPTED: Status.INTERRUPTED}.get(
                        code, Status.FAILED
                    )
                    m.error = None if code == EXIT_OK else _first_error(drivers[m.name])
        if pool is not None:
            busy = sum(task_seconds(d.doc) for d in drivers.values())
            pool.update(pool_use(busy, wall, base.driver.workers))
    if interrupted:
        for m in members:
            if m.status == Status.PENDING:
                m.status, m.error = Status.INTERRUPTED, "not run: the sweep was interrupted"
        return EXIT_INTERRUPTED
    return EXIT_OK if all(m.status in (Status.COMPLETED, Status.SKIPPED) for m in members) else EXIT_PARTIAL


def _member_driver(req: RunRequest, name: str, stack: ExitStack) -> tuple[Any, list[tuple[Any, list[Any]]], int]:
    """A member's driver, its (driver, tasks) pairs and its training.torch_threads: one RunDriver, or a universe's
    (data.symbols / --symbols)."""
    loaded = load_run_config(req.setup)
    threads = loaded.config.training.torch_threads
    if loaded.config.data.symbols:  # SWEEP/<member>/<SYMBOL>/: every symbol's windows on the sweep's pool
        universe = Universe(req.driver, symbol_setups(req.setup, loaded), None)
        for symbol, s in universe.setups:
            stages.emit(True, "Window Setup", _setup_line(s), f"{name}/{symbol}")
        return universe, universe.plan(stack), threads
    s = setup(req.setup, loaded)
    stages.emit(True, "Window Setup", _setup_line(s), name)
    d = stack.enter_context(RunDriver(req.driver, s, name))
    return d, [(d, d.plan())], threads


def _setup_line(s: Any) -> str:
    return window_setup_detail(s)


def _first_error(driver: Any) -> str | None:
    for w in driver.doc["windows"]:
        if w.get("error"):
            return f"{w['id']}: {w['error']['type']}: {w['error']['message']}"
    return driver.doc.get("status")


def rows_for(members: list[Member]) -> list[dict[str, Any]]:
    """One row per member; a universe member gives one row per symbol (``<member>/<SYMBOL>``)."""
    rows = []
    for m in members:
        path = m.output_dir / "summary.json"
        if m.exit_code != EXIT_INPUT and is_universe(m.output_dir):
            found = universe_rows(m.output_dir, str(m.output_dir.parent), keep_stats=True)
        elif path.exists() and m.exit_code != EXIT_INPUT:
            found = [member_row(path, m.name, m.seed)]
        else:
            found = [{"name": m.name, "path": str(m.output_dir), "status": Status.FAILED, "config_hash": None}]
        for row in found:
            row["seed"] = m.seed
            row["status"] = row["status"] if m.status in (Status.COMPLETED, Status.SKIPPED) else m.status
            row.update(
                config_path=m.config,
                exit_code=m.exit_code,
                error=m.error,
                seconds=round(m.seconds, 2),
                skipped=m.status == Status.SKIPPED,
            )
        rows.extend(found)
    return rows


def selection(rows: list[dict[str, Any]]) -> SelectionDocument:
    """PBO, SPA/StepM against the baselines, IQM and P(A > B) of the sweep (never raises: refusals are reasons)."""
    if any(r.get("universe") for r in rows):  # units: symbol × window (SPY/w01 ...), see sweep_report
        return universe_selection(rows, seed=0)
    return selection_from_rows(rows, seed=0)


def report(out: Path) -> None:
    """The sweep's report.html; a failure is shown, never fatal."""
    try:
        path = build_sweep_report(out)
    except Exception as e:  # the sweep's results are written already
        stages.emit(False, "Sweep report", f"{type(e).__name__}: {e}")
        return
    stages.emit(True, "Sweep report", str(path))


def print_selection(sel: dict[str, Any]) -> None:
    """One line per statistic under the sweep table: which config, how sure."""
    if sel.get("status") not in (DocumentState.OK, None) and sel.get("reason"):  # a selection document's state
        print(f"selection statistics: not computed ({sel['reason']})")
        return
    best = sel.get("best_config")
    verdict = sel.get("verdict")
    pbo = sel.get("pbo") or {}
    parts = [f"best config {best}: {verdict}" if best else "no best config"]
    if pbo.get("pbo") is not None:
        parts.append(f"PBO {pbo['pbo']:.2f} (S={pbo.get('n_partitions')}, N={pbo.get('n_trials')})")
    elif pbo.get("reason"):
        parts.append(f"PBO refused ({pbo['reason']})")
    for name, test in (sel.get("data_snooping") or {}).items():
        if test.get("spa_pvalue") is not None:
            parts.append(f"SPA p vs {name.replace('_', ' ')} {test['spa_pvalue']:.3f}")
    print("selection: " + "; ".join(parts), flush=True)


def run_sweep(patterns: list[str], seeds: list[int], request: RunRequest) -> int:
    """`wf sweep`: plan the members, run them on one pool, write sweep.json / sweep.csv, print the table.

    ``request`` holds the CLI's parsed flags: every member sets up with ``request.setup`` (its own config and
    seed) and runs with ``request.driver`` (its own folder under ``output_dir``).
    """
    options = request.driver
    out = rf.check_output_dir(options.output_dir)
    if not patterns:
        raise InputError("no configs: pass --configs PATH... (files or quoted globs)")
    members = plan(expand_configs(patterns), seeds, out)
    if options.overwrite:
        rf.check_clearable(out)  # --overwrite of a folder that is not ours: refused, nothing written or deleted
    rf.create(out)
    with rf.FolderLock(out, "sweep"):
        _refuse_existing(members, out, options)
        code, rows, extra = _run_and_write(members, out, request)
    _print_outcome(members, rows, extra, code, out)
    return code


def _refuse_existing(members: list[Member], out: Path, options: DriverOptions) -> None:
    for m in members:  # a member folder that is a link out of the sweep folder: refused before anything is written
        fsguard.check_no_escape(out, m.output_dir, "the sweep folder")
    existing = [m.name for m in members if (m.output_dir / "summary.json").exists()]
    if existing and not (options.resume or options.overwrite):
        raise FolderError(
            f"--output-dir {out}: members {', '.join(existing)} already ran; pass --resume or --overwrite"
        )


def _run_and_write(
    members: list[Member], out: Path, request: RunRequest
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    options = request.driver

    def start_executor(threads: int) -> Any:  # as `wf run`: the worker thread limits from training.torch_threads
        return executors.make_executor(
            options.executor, options.workers, ray_address=options.ray_address, threads=threads
        )

    pool: dict[str, Any] = {}
    code = execute(members, request, start_executor, pool)
    rows = rows_for(members)
    extra = compare.sweep_statistics(rows)
    extra["pool"] = pool
    extra["selection"] = selection(rows)
    compare.write_results(out, rows, extra)
    if not options.no_report:
        report(out)
    return code, rows, extra


def _print_outcome(
    members: list[Member], rows: list[dict[str, Any]], extra: dict[str, Any], code: int, out: Path
) -> None:
    print(compare.format_table(compare.sort_rows(rows)), flush=True)
    print_selection(extra["selection"])
    done = sum(m.status in (Status.COMPLETED, Status.SKIPPED) for m in members)
    note = " (interrupted; rerun with --resume)" if code == EXIT_INTERRUPTED else ""
    pool = extra.get("pool") or {}
    use = (
        f", pool of {pool['workers']} idle {pool['idle_share']:.0%} of {pool['wall_seconds']:,.0f} s"
        if pool.get("busy_seconds")
        else ""
    )
    stages.emit(code == EXIT_OK, "Sweep", f"{done}/{len(members)} members completed{use}{note} — {out / 'sweep.json'}")
