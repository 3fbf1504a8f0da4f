"""`wf run --seeds N`: the same walk-forward with N seeds, and the spread of every metric.

Each seed runs into <output-dir>/s<seed>/ (a complete run folder). The top-level
summary.json lists the runs and reports, per window and for the stitched out-of-sample
curve, the mean, std, min and max of each metric across seeds — so a lucky seed cannot
pass as a result. Its ``aggregate`` is null on purpose: there is no single curve.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import LoadedConfig
from backend.core import fsguard, stages
from backend.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, FolderError
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.evaluation.metrics import METRIC_KEYS
from backend.run import executors
from backend.run import folder as rf
from backend.run.dispatch import run_drivers
from backend.run.driver import RunDriver
from backend.run.options import DriverOptions
from backend.run.window_setup import Setup

SPREAD_KEYS = [k for k in METRIC_KEYS if k not in ("n_bars", "n_sessions")]


def spread(values: list[float | None]) -> dict[str, Any]:
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(finite) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": values}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "n": len(finite),
        "values": values,
    }


def metric_spread(docs: list[dict[str, Any] | None]) -> dict[str, Any]:
    return {k: spread([(d or {}).get(k) for d in docs]) for k in SPREAD_KEYS}


def run_seeds(opts: DriverOptions, s: Setup, seeds: list[int]) -> int:
    """Every seed is a run folder <output-dir>/s<seed>/; all their windows share one executor."""
    out = rf.check_output_dir(opts.output_dir)
    if opts.overwrite:
        rf.check_clearable(out)  # --overwrite of a folder that is not ours: refused, nothing written or deleted
    rf.create(out)
    with ExitStack() as stack:
        stack.enter_context(rf.FolderLock(out, "multi-seed run"))
        if (out / "summary.json").exists() and not (opts.resume or opts.overwrite):
            raise FolderError(
                f"--output-dir {out}: already holds a run (summary.json); pass --resume to continue it, "
                "--overwrite to replace it, or choose another folder"
            )
        drivers = []
        for seed in seeds:
            cfg = s.cfg.model_copy(update={"training": s.cfg.training.model_copy(update={"seed": seed})})
            sub = dataclasses.replace(
                s, loaded=LoadedConfig(cfg, s.loaded.path, s.loaded.warnings, s.loaded.unmapped, s.loaded.legacy)
            )
            fsguard.check_no_escape(out, out / f"s{seed}", "the multi-seed folder")  # before anything is written
            name = f"{opts.prefix + '/' if opts.prefix else ''}s{seed}"
            sub_opts = dataclasses.replace(opts, output_dir=str(out / f"s{seed}"), prefix=name)
            drivers.append(stack.enter_context(RunDriver(sub_opts, sub, name)))
        executor = executors.make_executor(
            opts.executor, opts.workers, ray_address=opts.ray_address, threads=s.cfg.training.torch_threads
        )
        interrupted = run_drivers([(d, d.plan()) for d in drivers], executor, quiet=opts.quiet)
        codes = [d.finish(interrupted) for d in drivers]
        runs = [
            {"seed": seed, "path": f"s{seed}", "exit_code": code, "config_hash": d.config_hash}
            for seed, code, d in zip(seeds, codes, drivers, strict=True)
        ]
        return write_multi_seed(out, opts, runs=runs, codes=codes)


def write_multi_seed(out: Path, opts: DriverOptions, *, runs: list[dict[str, Any]], codes: list[int]) -> int:
    """The multi-seed summary.json of ``out`` over its seeds' run summaries (``runs``); returns the exit code."""
    summaries = [load_json(out / r["path"] / "summary.json", "summary") for r in runs]
    first = summaries[0]
    windows = []
    for k, w in enumerate(first["windows"]):
        per_seed = [sm["windows"][k] for sm in summaries]
        windows.append(
            {
                key: w[key]
                for key in ("id", "train_start", "train_end", "test_start", "test_end", "train_bars", "test_bars")
            }
            | {
                "status": Status.COMPLETED
                if all(x["status"] == Status.COMPLETED for x in per_seed)
                else Status.PARTIAL,
                "seed_spread": metric_spread([x.get("evaluation") for x in per_seed]),
            }
        )
    if EXIT_INTERRUPTED in codes:
        status, code = Status.INTERRUPTED, EXIT_INTERRUPTED
    elif all(c == EXIT_OK for c in codes):
        status, code = Status.COMPLETED, EXIT_OK
    elif any(c in (EXIT_OK, EXIT_PARTIAL) for c in codes):
        status, code = Status.PARTIAL, EXIT_PARTIAL
    else:
        status, code = Status.FAILED, codes[0]
    doc = {
        "schema_version": 1,
        "kind": "multi_seed",
        "status": status,
        "symbol": first["symbol"],
        "interval": first["interval"],
        "source": first["source"],
        "synthetic": first.get("synthetic", False),
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
        "data_hash": first["data_hash"],
        "windows": windows,
        "aggregate": None,
        "aggregate_spread": metric_spread([sm.get("aggregate") for sm in summaries]),
        "statistics_spread": {
            key: spread([(sm.get("statistics") or {}).get(key) for sm in summaries])
            for key in ("psr", "sharpe_ci_low", "sharpe_ci_high")
        },
        "warnings": [w for sm in summaries for w in sm.get("warnings", [])],
    }
    path = write_json(Path(out) / "summary.json", doc)
    sh = doc["aggregate_spread"]["sharpe"]
    stages.emit(
        True,
        "Seeds",
        f"{len(runs)} seeds; out-of-sample Sharpe mean {stages.fmt_num(sh['mean'])}, "
        f"std {stages.fmt_num(sh['std'])}, min {stages.fmt_num(sh['min'])}, max {stages.fmt_num(sh['max'])}",
        opts.prefix,
    )
    stages.emit(True, "Summary", str(path) + ("" if status == Status.COMPLETED else f" (status {status})"), opts.prefix)
    return code
