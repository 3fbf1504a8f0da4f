"""One window is the unit of work: ``run_window(task) -> WindowResult``.

A :class:`WindowTask` holds everything one window needs — the resolved config, the window,
the bars (or, on Ray, a reference to them in the object store), the seed (in the config) and
the warm-start source — and :func:`run_window` trains, replays, writes the window's folder and
turns any failure into a status, an error and an exit code, in one place. Drivers (`wf run`,
`--seeds`, `wf sweep`, `wf tune`, `wf audit`) only plan tasks, dispatch them on an executor
(:mod:`backend.run.executors`) and fold the results into their summaries.

A task with ``root=None`` works in a scratch folder of its own and returns every file it
wrote as bytes (``WindowResult.artifacts``), so that on a cluster nothing needs a shared disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import Config
from backend.core import fsguard
from backend.core.errors import (
    EXIT_ARTIFACTS,
    EXIT_EVALUATION,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TRAINING,
    ArtifactError,
    HarnessError,
)
from backend.core.progress import TrainingBar
from backend.core.status import Status
from backend.features.builtin import MarketArrays, compute_features
from backend.features.context import extras_fingerprint
from backend.training.bundle import backend_record, sha256_file
from backend.training.tb import log_evaluation
from backend.training.warm_start import WarmStart
from backend.walkforward.windows import Window

TENSORBOARD = "tensorboard"
OUTPUT_FILES = ("evaluation.json", "equity.csv", "trades.csv")  # a window's replay files, hashed in the summary
SCRATCH_ENV = "WF_SCRATCH_DIR"  # where remote tasks make their scratch folders (default: the system temp dir)


@dataclass
class WindowTask:
    run: str  # the run's name (sweep member / seed folder), for messages
    config: Config
    window: Window
    position: tuple[int, int]  # (k, n): window k of n in this run
    embargo: int
    timezone: str
    data_hash: str
    provenance: dict[str, Any]
    periods_per_year: float
    market: MarketArrays | None = None  # None when the executor ships the bars separately (Ray object store)
    benchmark: Any = None  # backend.data.benchmark.Benchmark | None
    warm_start: WarmStart | None = None
    root: Path | None = None  # None: work in a scratch folder and return the files as artifacts
    progress: bool = False  # a tqdm bar (in-process runs on a terminal only)

    @property
    def key(self) -> tuple[str, str]:
        return (self.run, self.window.id)


@dataclass
class WindowResult:
    run: str
    window_id: str
    status: Status  # completed | failed | interrupted (skipped: a halted tune trial's window, never run)
    exit_code: int
    error: dict[str, str] | None = None
    training: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    baselines: dict[str, Any] | None = None
    beats: dict[str, Any] | None = None
    cost_sensitivity: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    bundle_files: dict[str, str] | None = None
    output_files: dict[str, str] | None = None  # SHA-256 of evaluation.json, equity.csv, trades.csv
    series: dict[str, np.ndarray] | None = None  # equity.csv's columns, in memory (the stitched aggregate)
    artifacts: dict[str, bytes] = field(default_factory=dict)  # relative path -> content (root=None tasks)
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)  # host, pid and scratch folder of the process that ran it

    @property
    def key(self) -> tuple[str, str]:
        return (self.run, self.window_id)


_FEATURES: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}


def features_for(market: MarketArrays, names: list[str], data_hash: str) -> np.ndarray:
    """Features of the bars, computed once per process per (data, feature list).

    The user's feature modules travel inside ``market`` (``feature_sources``), so a worker without a shared disk
    (Ray) executes the very source the driver read; ``compute_features`` installs it before computing."""
    key = (data_hash + extras_fingerprint(market), tuple(names))  # context series and user-module code too
    if key not in _FEATURES:
        if len(_FEATURES) >= 4:
            _FEATURES.pop(next(iter(_FEATURES)))
        _FEATURES[key] = compute_features(market, names)
    return _FEATURES[key]


def run_window(task: WindowTask, market: MarketArrays | None = None, stop: Any = None) -> WindowResult:
    """Train and replay one window; never raises for a window's own failure (it becomes the result)."""
    market = task.market if task.market is not None else market
    assert market is not None, "a task needs its bars"
    started = time.perf_counter()
    scratch = task.root is None
    if task.root is None:
        try:
            root = scratch_folder()
        except OSError as e:
            out = WindowResult(task.run, task.window.id, Status.FAILED, EXIT_ARTIFACTS)
            where = os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()
            return _failed(
                out, "training", Status.FAILED, EXIT_ARTIFACTS, "ArtifactError", f"scratch folder {where}: {e}"
            )
    else:
        root = task.root
    try:
        result = _train_and_replay(task, market, root, stop)
        if scratch:
            result.artifacts = collect_artifacts(root, task.window.id)
    finally:
        if scratch:
            shutil.rmtree(root, ignore_errors=True)  # a fresh mkdtemp folder: rmtree removes links inside as links
    result.seconds = time.perf_counter() - started
    result.worker = {"host": socket.gethostname(), "pid": os.getpid(), "scratch": str(root) if scratch else None}
    return result


def scratch_folder() -> Path:
    """A fresh scratch folder under $WF_SCRATCH_DIR (created if missing) or the system temp dir."""
    base = os.environ.get(SCRATCH_ENV)
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="wf-task-", dir=base))


def window_paths(root: Path, window_id: str) -> tuple[Path, Path]:
    return root / window_id, root / TENSORBOARD / window_id


def _fresh_window_folder(root: Path, window_id: str) -> tuple[Path, Path]:
    """The window's folder and TensorBoard folder, emptied of stale files; never through a link out of ``root``.

    A link on the way that leaves the run folder is a FolderError (exit 2) naming it; a link in the window
    folder that leaves it is removed as a link (its target untouched), so nothing is written through it.
    """
    wdir, tb_dir = window_paths(root, window_id)
    fsguard.check_no_escape(root, wdir, "the run folder")
    fsguard.check_no_escape(root, tb_dir, "the run folder")
    try:
        fsguard.remove(root, tb_dir, "the run folder")
        fsguard.remove(root, wdir / "replay", "the run folder")  # a replay of an older model would be stale
    except OSError:
        pass  # as before: a stale folder that cannot be removed does not stop the window
    fsguard.make_dirs(root, wdir, "the run folder")
    fsguard.drop_escaping_links(root, wdir)
    for stale in ("metadata.json", "evaluation.json"):
        (wdir / stale).unlink(missing_ok=True)
    return wdir, tb_dir


def _train_and_replay(task: WindowTask, market: MarketArrays, root: Path, stop: Any) -> WindowResult:
    cfg, w = task.config, task.window
    out = WindowResult(task.run, w.id, Status.FAILED, EXIT_TRAINING)
    features = features_for(market, list(cfg.env.features), task.data_hash)
    try:
        wdir, tb_dir = _fresh_window_folder(root, w.id)
        trained = train_task(task, market, features, wdir=wdir, tb_dir=tb_dir, stop=stop)
    except KeyboardInterrupt:
        return _failed(
            out, "training", Status.INTERRUPTED, EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted during training"
        )
    except Exception as e:  # every failure of the window becomes its result
        code = EXIT_ARTIFACTS if isinstance(e, ArtifactError) else _code(e, EXIT_TRAINING)
        return _failed(out, "training", Status.FAILED, code, type(e).__name__, str(e))
    out.training = {
        "timesteps": trained.timesteps,
        "seconds": round(trained.seconds, 3),
        "steps_per_second": round(trained.steps_per_second, 1),
        "model_path": f"{w.id}/model.zip",
        "warm_start_from": task.warm_start.window_id if task.warm_start else None,
        **backend_record(trained.model_path.parent),  # the backend that trained (auto: the choice, measured)
    }
    out.bundle_files = trained.files
    try:
        _replay(task, market, features, wdir, tb_dir, out)
    except KeyboardInterrupt:
        return _failed(
            out,
            "evaluation",
            Status.INTERRUPTED,
            EXIT_INTERRUPTED,
            "KeyboardInterrupt",
            "interrupted during evaluation",
        )
    except Exception as e:
        code = EXIT_ARTIFACTS if isinstance(e, ArtifactError) else _code(e, EXIT_EVALUATION)
        return _failed(out, "evaluation", Status.FAILED, code, type(e).__name__, str(e))
    out.status, out.exit_code = Status.COMPLETED, EXIT_OK
    return out


def _code(error: Exception, default: int) -> int:
    return error.exit_code if isinstance(error, HarnessError) else default


def _failed(out: WindowResult, stage: str, status: Status, code: int, kind: str, message: str) -> WindowResult:
    out.status, out.exit_code = status, code
    out.error = {"stage": stage, "type": kind, "message": message}
    return out


def train_task(task: WindowTask, market: MarketArrays, features: np.ndarray, *, wdir: Path, tb_dir: Path, stop: Any):
    """The training half of a window task (also what `wf audit` trains with): the trainer with the task's inputs."""
    from backend.training.trainer import train_window  # heavy: gymnasium

    bar = _progress_bar(task) if task.progress else None
    try:
        return train_window(
            task.config,
            market,
            features,
            task.window,
            out_dir=wdir,
            tb_dir=tb_dir,
            data_hash=task.data_hash,
            provenance=task.provenance,
            embargo=task.embargo,
            warm_start=task.warm_start,
            progress_bar=bar,
            stop=stop,
        )
    finally:
        if bar is not None:
            bar.close()


def _replay(
    task: WindowTask, market: MarketArrays, features: np.ndarray, wdir: Path, tb_dir: Path, out: WindowResult
) -> None:
    from backend.evaluation.replay import (  # heavy: gymnasium
        equity_frame,
        evaluation_document,
        replay_bundle,
        write_replay_files,
    )

    cfg = task.config
    rep = replay_bundle(wdir, cfg, market, features, task.window, task.periods_per_year, benchmark=task.benchmark)
    doc = evaluation_document(rep, task.window, market.timestamps, task.timezone)
    write_replay_files(wdir, rep, market, task.timezone, doc, cfg.env.initial_capital)
    if cfg.training.tensorboard:
        log_evaluation(tb_dir, rep.evaluation, rep.baselines, cfg.training.total_timesteps)
    frame = equity_frame(rep, market, task.timezone, cfg.env.initial_capital)
    out.series = {c: frame[c].to_numpy() for c in frame.columns}
    out.output_files = {name: sha256_file(wdir / name) for name in OUTPUT_FILES}
    out.evaluation, out.baselines, out.beats = rep.evaluation, rep.baselines, rep.beats
    out.cost_sensitivity, out.diagnostics, out.benchmark = rep.cost_sensitivity, rep.diagnostics, rep.benchmark


def _progress_bar(task: WindowTask):
    """The window's training bar (a terminal only): window k of n, ETA from the rate after learning starts."""
    k, n = task.position
    name = f"{task.run} " if task.run else ""
    bar = TrainingBar(
        task.config.training.total_timesteps,
        task.config.sac.learning_starts,
        f"{name}window {k} of {n} ({task.window.id})",
    )
    return bar if bar.bar is not None else None


def collect_artifacts(root: Path, window_id: str) -> dict[str, bytes]:
    """Every file a task wrote (its window folder and TensorBoard folder), keyed by path relative to the run."""
    out: dict[str, bytes] = {}
    for folder in window_paths(root, window_id):
        if folder.exists():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out
