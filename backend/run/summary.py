"""summary.json of one run (docs/outputs.md): the first document, its window entries, the gates and the run's status.

The run driver (:class:`backend.run.driver.RunDriver`) builds the document here before any window runs, folds
each window's result into it as it lands (:class:`backend.run.folder.Summary` writes it) and settles the run's
status and exit code at the end with :func:`run_status`.
"""

from __future__ import annotations

import math
from typing import Any

from backend.core.errors import EXIT_ARTIFACTS, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from backend.core.status import Status
from backend.run import folder as rf
from backend.run.window_setup import Setup, windows_hash
from backend.walkforward.windows import Window

SCHEMA_VERSION = 1


def summary_document(
    s: Setup, entries: list[dict[str, Any]], *, config_hash: str, data_hash: str, executor: str, workers: int
) -> dict[str, Any]:
    """The run's summary before any window ran: provenance, the window entries (pending), status ``running``."""
    cfg = s.cfg
    return {
        "schema_version": SCHEMA_VERSION,
        "status": Status.RUNNING,
        "symbol": s.bars.symbol,
        "interval": cfg.data.interval,
        "source": s.bars.source,
        "synthetic": s.bars.synthetic,
        "config_hash": config_hash,
        "data_hash": data_hash,
        "windows_hash": windows_hash(s),
        "config_path": s.loaded.path,
        "algorithm": cfg.agent.algorithm,
        "backend": cfg.agent.backend,
        "seed": cfg.training.seed,
        "annualisation": s.annualisation,
        "executor": {"kind": executor, "workers": workers},
        "data": {**s.bars.provenance, "report": s.bars.report},
        "benchmark": (
            {"symbol": s.benchmark.symbol, "available": s.benchmark.close is not None, **s.benchmark.info}
            if s.benchmark
            else None
        ),
        "stages": {"window_setup": {"status": "ok", "seconds": round(s.seconds, 3)}},
        "windows": entries,
        "aggregate": None,
        "statistics": None,
        "warnings": list(s.loaded.warnings),
        "unmapped_legacy_keys": s.loaded.unmapped,
        "started_at": rf.now(),
        "finished_at": None,
        "seconds": None,
    }


def window_entry(w: Window, s: Setup) -> dict[str, Any]:
    """A window's entry before it runs: its spans and sizes, status ``pending``, every result still null."""
    d = w.describe(s.market.timestamps, s.timezone)
    return {
        "id": w.id,
        **{k: d[k] for k in ("train_start", "train_end", "test_start", "test_end")},
        "train_bars": w.train_bars,
        "test_bars": w.test_bars,
        "train_sessions": w.train_sessions,
        "test_sessions": w.test_sessions,
        "status": Status.PENDING,
        "training": None,
        "evaluation": None,
        "baselines": None,
        "beats": None,
        "cost_sensitivity": None,
        "diagnostics": None,
        "benchmark": None,
        "gates": None,
        "bundle": None,
        "error": None,
    }


def gates(cfg: Any, evaluation: dict[str, Any], beats: dict[str, Any]) -> dict[str, Any] | None:
    """The window's result against ``evaluation.gates`` (None when no gate is set)."""
    g = cfg.evaluation.gates
    checks: dict[str, bool | None] = {}
    if g.min_trades is not None:
        checks["min_trades"] = evaluation["n_trades"] >= g.min_trades
    if g.min_sharpe is not None:
        sh = evaluation.get("sharpe")
        checks["min_sharpe"] = None if sh is None or (isinstance(sh, float) and math.isnan(sh)) else sh >= g.min_sharpe
    if g.max_drawdown is not None:
        checks["max_drawdown"] = -evaluation["max_drawdown"] <= g.max_drawdown
    if g.beat_buy_and_hold:
        checks["beat_buy_and_hold"] = beats.get("buy_and_hold")
    if not checks:
        return None
    return {"checks": checks, "passed": all(v is True for v in checks.values())}


def run_status(interrupted: bool, fatal: bool, done: int, total: int, failures: list[int]) -> tuple[str, int]:
    """The run's status and exit code from how its windows ended."""
    if fatal:
        return Status.FAILED, EXIT_ARTIFACTS
    if interrupted:
        return Status.INTERRUPTED, EXIT_INTERRUPTED
    if done == total:
        return Status.COMPLETED, EXIT_OK
    if done > 0:
        return Status.PARTIAL, EXIT_PARTIAL
    return Status.FAILED, (failures[0] if failures else EXIT_PARTIAL)
