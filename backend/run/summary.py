"""summary.json of one run (docs/outputs.md): the first document, its window entries, the gates and the run's status.

The run driver (:class:`backend.run.driver.RunDriver`) builds the document here before any window runs, folds
each window's result into it as it lands (:class:`SummaryFile` rewrites it) and settles the run's
status and exit code at the end with :func:`run_status`. The document's shape is :class:`RunSummary` with a
:class:`WindowEntry` per window (TypedDicts: they type the keys only; the JSON's key order is the order the builders
write them in). Statuses are :class:`~backend.core.status.Status` members, plain strings once read back from disk.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from backend.core.errors import EXIT_ARTIFACTS, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from backend.core.jsonio import write_json
from backend.core.status import STAGE_OK, StageStatus, Status, SummaryStatus
from backend.run import folder as rf
from backend.run.window_setup import Setup, windows_hash
from backend.walkforward.windows import Window

SCHEMA_VERSION = 1


class WindowGates(TypedDict):
    """A window's result against ``evaluation.gates``: each gate set (None: undefined, e.g. a NaN Sharpe)."""

    checks: dict[str, bool | None]
    passed: bool


class BundleHashes(TypedDict):
    """SHA-256 of the window's bundle files (model.zip, obs_stats.npz, ...) and of its evaluation outputs."""

    files: dict[str, str] | None
    outputs: dict[str, str] | None


class WindowEntry(TypedDict):
    """One window of ``windows``: spans and sizes, then its results (null until it completes)."""

    id: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_bars: int
    test_bars: int
    train_sessions: int
    test_sessions: int
    status: SummaryStatus  # pending | training | completed | failed | interrupted (a tune trial's: also pruned)
    training: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    baselines: dict[str, Any] | None
    beats: dict[str, Any] | None
    cost_sensitivity: dict[str, Any] | None
    diagnostics: dict[str, Any] | None
    benchmark: dict[str, Any] | None
    gates: WindowGates | None
    bundle: BundleHashes | None
    error: dict[str, str] | None  # stage, type, message


class StageRecord(TypedDict):
    """One stage of ``stages`` (``window_setup``, ``window_<id>``, ``report``, ``summary``)."""

    status: StageStatus
    seconds: float


class ExecutorRecord(TypedDict):
    kind: str  # local | ray
    workers: int


class GateTally(TypedDict):
    """How many windows passed their gates, of those checked (only when a gate is set)."""

    windows_passed: int
    windows_checked: int


class RunSummary(TypedDict):
    """summary.json of one run folder (docs/outputs.md)."""

    schema_version: int
    status: SummaryStatus  # running | completed | partial | failed | interrupted (a pruned tune trial: pruned)
    symbol: str
    interval: str
    source: str
    synthetic: bool
    config_hash: str
    data_hash: str
    windows_hash: str
    config_path: str | None
    algorithm: str
    backend: str
    seed: int
    annualisation: dict[str, Any]
    executor: ExecutorRecord
    data: dict[str, Any]  # the bars' provenance and the loader's report
    benchmark: dict[str, Any] | None
    stages: dict[str, StageRecord]
    windows: list[WindowEntry]
    aggregate: dict[str, Any] | None
    statistics: dict[str, Any] | None
    warnings: list[str]
    unmapped_legacy_keys: list[str]
    started_at: str
    finished_at: str | None
    seconds: float | None
    gates: NotRequired[GateTally]  # added at the end when a gate is set
    error: NotRequired[dict[str, str]]  # the report could not be written (exit 6)
    tune_trial: NotRequired[dict[str, Any]]  # a `wf tune` trial's folder: its study, number, state, value


class SummaryFile:
    """summary.json, rewritten atomically whenever something lands."""

    def __init__(self, path: Path, doc: RunSummary):
        self.path, self.doc = path, doc
        self.started = time.perf_counter()

    def save(self) -> None:
        write_json(self.path, self.doc)

    def stage(self, name: str, status: StageStatus, seconds: float) -> None:
        self.doc["stages"][name] = {"status": status, "seconds": round(seconds, 3)}
        self.save()

    def window(self, window_id: str) -> WindowEntry:
        return next(w for w in self.doc["windows"] if w["id"] == window_id)


def summary_document(
    s: Setup, entries: list[WindowEntry], *, config_hash: str, data_hash: str, executor: str, workers: int
) -> RunSummary:
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
        "stages": {"window_setup": {"status": STAGE_OK, "seconds": round(s.seconds, 3)}},
        "windows": entries,
        "aggregate": None,
        "statistics": None,
        "warnings": list(s.loaded.warnings),
        "unmapped_legacy_keys": s.loaded.unmapped,
        "started_at": rf.now(),
        "finished_at": None,
        "seconds": None,
    }


def window_entry(w: Window, s: Setup) -> WindowEntry:
    """A window's entry before it runs: its spans and sizes, status ``pending``, every result still null."""
    d = w.describe(s.market.timestamps, s.timezone)
    return {
        "id": w.id,
        "train_start": d["train_start"],
        "train_end": d["train_end"],
        "test_start": d["test_start"],
        "test_end": d["test_end"],
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


def gates(cfg: Any, evaluation: dict[str, Any], beats: dict[str, Any]) -> WindowGates | None:
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


def run_status(*, interrupted: bool, fatal: bool, done: int, total: int, failures: list[int]) -> tuple[Status, int]:
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


def task_seconds(doc: Any) -> float:
    """Seconds a run's window tasks were busy: its ``window_<id>`` stages (Window Setup excluded)."""
    stages = doc.get("stages") or {}
    return float(sum(v["seconds"] for k, v in stages.items() if k.startswith("window_") and k != "window_setup"))


def pool_use(busy_seconds: float, wall_seconds: float, workers: int) -> dict[str, float | int]:
    """How busy a pool of ``workers`` was over ``wall_seconds``: the workers' idle share (0 = always busy)."""
    capacity = workers * wall_seconds
    idle = max(0.0, 1.0 - busy_seconds / capacity) if capacity > 0 else 0.0
    return {
        "workers": workers,
        "wall_seconds": round(wall_seconds, 1),
        "busy_seconds": round(busy_seconds, 1),
        "idle_share": round(idle, 3),
    }
