"""The walk-forward run as a list of named stages: Window Setup → (Training → Evaluation) per window → Summary.

Nothing here imports torch or stable-baselines3 at module level: the dry-run path stays light.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backend import stages
from backend.config import Config, LoadedConfig, config_dict, config_hash, load_config
from backend.data.loader import Bars, load_bars
from backend.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    ArtifactError,
    DataError,
    EvaluationError,
    HarnessError,
    InputError,
    TrainingError,
)
from backend.features import MarketArrays, check_feature_names
from backend.jsonio import load_json, write_json, write_text
from backend.windows import (
    Window,
    WindowSpec,
    auto_windows,
    hint_range,
    load_windows,
    parse_day,
    resolve,
    windows_document,
)

SCHEMA_VERSION = 1


@dataclass
class RunOptions:
    """Everything `wf run` accepts (CLI flags map one to one)."""

    symbol: str | None = None
    windows: str | None = None
    start: str | None = None
    end: str | None = None
    train_days: int | None = None
    test_days: int | None = None
    step_days: int | None = None
    mode: str = "rolling"
    embargo_bars: int | None = None
    config: str | None = None
    source: str | None = None
    data: str | None = None
    interval: str | None = None
    cache_dir: str | None = None
    benchmark: str | None = None
    output_dir: str | None = None
    dry_run: bool = False
    quiet: bool = False
    stochastic: bool = False
    seed: int | None = None
    timesteps: int | None = None
    sets: list[str] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    no_report: bool = False
    prefix: str = ""  # stage-marker prefix (sweep member name)

    def overrides(self) -> list[str]:
        out = list(self.sets)
        if self.seed is not None:
            out.append(f"training.seed={self.seed}")
        if self.timesteps is not None:
            out.append(f"training.total_timesteps={self.timesteps}")
        if self.stochastic:
            out.append("evaluation.deterministic=false")
        return out


@dataclass
class Setup:
    """The result of the Window Setup stage."""

    loaded: LoadedConfig
    bars: Bars
    market: MarketArrays
    windows: list[Window]
    embargo: int
    timezone: str
    seconds: float = 0.0
    benchmark: Any = None  # backend.data.benchmark.Benchmark | None

    @property
    def cfg(self) -> Config:
        return self.loaded.config


def setup(opts: RunOptions) -> Setup:
    """Config → data → windows, validated; no torch."""
    started = time.perf_counter()
    if opts.data and opts.source not in (None, "file"):
        raise InputError(f"--data implies --source file, but --source {opts.source} was given; drop one")
    loaded = load_config(
        opts.config,
        overrides=opts.overrides(),
        data_overrides={
            "symbol": opts.symbol,
            "source": "file" if opts.data else opts.source,
            "path": opts.data,
            "interval": opts.interval,
            "cache_dir": opts.cache_dir,
            "benchmark_symbol": opts.benchmark,
        },
    )
    cfg = loaded.config
    check_feature_names(cfg.env.features)
    auto = any(v is not None for v in (opts.train_days, opts.test_days, opts.start, opts.end))
    if opts.windows and auto:
        raise InputError("--windows and automatic windows (--start/--end/--train-days/--test-days) exclude each other")
    specs: list[WindowSpec] | None = None
    embargo, tz = 0, cfg.data.timezone
    if opts.windows:
        specs, embargo, tz = load_windows(opts.windows, cfg.data.timezone)
    elif not auto and not opts.dry_run:
        raise InputError("no windows: pass --windows FILE, or --train-days and --test-days (with --start/--end)")
    elif auto and (opts.train_days is None or opts.test_days is None):
        raise InputError("automatic windows need both --train-days and --test-days (in trading sessions)")
    if opts.embargo_bars is not None:
        if opts.embargo_bars < 0:
            raise InputError("--embargo-bars must be >= 0")
        embargo = opts.embargo_bars
    start, end = parse_day(opts.start, "--start"), parse_day(opts.end, "--end")
    hint = hint_range(specs) if specs else ((start, end) if start and end else None)
    bars = load_bars(cfg.data, hint)
    market = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close)
    origin = opts.windows or "automatic windows"
    if specs is None and not auto:  # dry-run without windows: describe the data only
        return Setup(loaded, bars, market, [], embargo, tz, time.perf_counter() - started, None)
    if specs is None:
        days = sorted({d.date() for d in bars.frame.index})
        specs = auto_windows(
            days, start or days[0], end or days[-1], opts.train_days, opts.test_days, opts.step_days, opts.mode, tz
        )
        if embargo:
            # keep the test span where it is and cut the train span short (no leakage)
            specs = [_trim_train(s, market, embargo) for s in specs]
    windows = resolve(specs, market.timestamps, market.session_id, embargo, origin)
    benchmark = None
    if cfg.data.benchmark_symbol:
        from backend.data.benchmark import load_benchmark

        benchmark = load_benchmark(cfg.data, bars, hint)
        if benchmark.warning:
            loaded.warnings.append(benchmark.warning)
    return Setup(loaded, bars, market, windows, embargo, tz, time.perf_counter() - started, benchmark)


def _trim_train(spec: WindowSpec, market: MarketArrays, embargo: int) -> WindowSpec:
    import pandas as pd

    test_idx = int(np.searchsorted(market.timestamps, spec.test_start.as_unit("ns").value))
    cut = test_idx - embargo
    if cut <= 0:
        raise DataError(f"window {spec.id}: the embargo of {embargo} bars leaves no train bars")
    new_end = pd.Timestamp(int(market.timestamps[cut]), tz="UTC").tz_convert(spec.train_end.tz)
    return WindowSpec(
        spec.id, spec.train_start, min(spec.train_end, new_end), spec.test_start, spec.test_end, spec.text
    )


def windows_hash(s: Setup) -> str:
    import hashlib
    import json

    doc = windows_document(s.windows, s.market.timestamps, s.timezone, s.embargo)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def window_setup_detail(s: Setup) -> str:
    if not s.windows:
        return (
            f"no windows given; data: {s.bars.report['bars']:,} bars in {s.bars.report['sessions']:,} sessions "
            f"({s.bars.provenance['first_bar'][:10]} -> {s.bars.provenance['last_bar'][:10]})"
        )
    train = sum(w.train_bars for w in s.windows)
    test = sum(w.test_bars for w in s.windows)
    n = len(s.windows)
    text = f"{n} window{'s' if n != 1 else ''}, {train:,} train bars, {test:,} test bars"
    if s.bars.synthetic:
        text += " (SYNTHETIC data — tests and sanity checks only)"
    if s.benchmark is not None:
        text += (
            f"; benchmark {s.benchmark.symbol}"
            if s.benchmark.close is not None
            else f"; benchmark {s.benchmark.symbol} unavailable (see warnings)"
        )
    return text


def dry_run_table(s: Setup) -> str:
    rep = s.bars.report
    repairs = ", ".join(
        f"{k.replace('_', ' ')} {v:,}"
        for k, v in rep.items()
        if k.endswith(("dropped", "widened_bars", "volume_bars", "single_bar_sessions", "gap_bars", "with_gaps")) and v
    )
    prov = s.bars.provenance
    lines = [
        f"data: {prov['source']} {prov['symbol']} {prov['interval']}, {rep['bars']:,} bars in {rep['sessions']:,} "
        f"sessions, {prov['first_bar']} -> {prov['last_bar']} (hash {prov['content_hash']})",
    ]
    if repairs:
        lines.append(f"data repairs/notes: {repairs}")
    if s.loaded.legacy:
        lines.append(
            f"config: earlier-harness format ({s.loaded.path}); "
            + (f"not implemented: {', '.join(s.loaded.unmapped)}" if s.loaded.unmapped else "every key mapped")
        )
    for w in s.loaded.warnings:
        lines.append(f"warning: {w}")
    header = f"{'id':<8}{'train':<25}{'sessions':>9}{'bars':>8}   {'test':<25}{'sessions':>9}{'bars':>8}"
    if s.windows:
        lines.append(header)
    for w in s.windows:
        d = w.describe(s.market.timestamps, s.timezone)
        lines.append(
            f"{w.id:<8}{d['train_start'][:10] + ' -> ' + d['train_end'][:10]:<25}{w.train_sessions:>9}"
            f"{w.train_bars:>8}   {d['test_start'][:10] + ' -> ' + d['test_end'][:10]:<25}{w.test_sessions:>9}"
            f"{w.test_bars:>8}"
        )
    if s.embargo:
        lines.append(f"embargo: {s.embargo} bars between train and test")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- run folder


def prepare_output(path: str, resume: bool, overwrite: bool) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {path}: is a file; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output-dir {path}: cannot create the folder ({e.strerror}); choose another path") from e
    if not os.access(out, os.W_OK):
        raise InputError(f"--output-dir {path}: not writable; choose another folder")
    if (out / "summary.json").exists() and not (resume or overwrite):
        raise InputError(
            f"--output-dir {path}: already holds a run (summary.json); pass --resume to continue it, "
            "--overwrite to replace it, or choose another folder"
        )
    return out


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (KeyboardInterrupt), so the summary stays true."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Summary:
    """summary.json, rewritten atomically whenever a stage finishes."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path, self.doc = path, doc

    def save(self) -> None:
        write_json(self.path, self.doc)

    def stage(self, name: str, status: str, seconds: float, **extra: Any) -> None:
        self.doc["stages"][name] = {"status": status, "seconds": round(seconds, 3), **extra}
        self.save()


def _window_entry(w: Window, s: Setup) -> dict[str, Any]:
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
        "status": "pending",
        "training": None,
        "evaluation": None,
        "baselines": None,
        "beats": None,
        "cost_sensitivity": None,
        "diagnostics": None,
        "benchmark": None,
        "gates": None,
        "error": None,
    }


def _gates(cfg: Config, evaluation: dict[str, Any], beats: dict[str, Any]) -> dict[str, Any] | None:
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


def _can_resume(entry: dict[str, Any] | None, out: Path, wid: str) -> bool:
    if not entry or entry.get("status") != "completed":
        return False
    from backend.training import bundle

    try:
        meta = bundle.read_metadata(out / wid)
        bundle.verify_files(out / wid, meta)
    except EvaluationError:
        return False
    return (out / wid / "evaluation.json").exists() and (out / wid / "equity.csv").exists()


def _aggregate(
    out: Path, entries: list[dict[str, Any]], interval: str, capital: float, seed: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Metrics and statistics (PSR, bootstrap CI of Sharpe) of the stitched out-of-sample curve."""
    import pandas as pd

    from backend.evaluation import metrics
    from backend.evaluation.statistics import summary_statistics

    frames = []
    for sid, e in enumerate(entries):
        if e["status"] == "completed":
            f = pd.read_csv(out / e["id"] / "equity.csv")
            f["window"] = sid
            frames.append(f)
    if not frames:
        return None, None
    eq = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    sessions = pd.to_datetime(eq["timestamp"].str.slice(0, 10)).astype("int64").to_numpy()
    agent = metrics.compute(
        eq["net_return"].to_numpy(),
        eq["position"].to_numpy(),
        eq["cost"].to_numpy(),
        eq["traded"].to_numpy(),
        sessions,
        interval,
        capital,
    )
    bh = metrics.compute(
        eq["buy_and_hold_return"].to_numpy(),
        eq["buy_and_hold_position"].to_numpy(),
        eq["buy_and_hold_cost"].to_numpy(),
        eq["buy_and_hold_traded"].to_numpy(),
        sessions,
        interval,
        capital,
    )
    stats = summary_statistics(eq["net_return"].to_numpy(), metrics.bars_per_year(interval), seed=seed)
    return {**agent, "windows": len(frames), "buy_and_hold": bh}, stats


def execute(opts: RunOptions, s: Setup) -> int:
    """Train and evaluate every window; returns the exit code."""
    cfg = s.cfg
    prefix = opts.prefix
    assert opts.output_dir is not None
    out = prepare_output(opts.output_dir, opts.resume, opts.overwrite)
    chash = config_hash(cfg)
    dhash = s.bars.data_hash()
    previous: dict[str, dict[str, Any]] = {}
    if opts.resume and (out / "summary.json").exists():
        try:
            old = load_json(out / "summary.json", "summary")
        except InputError:
            old = {}
        if old.get("config_hash") == chash and old.get("data_hash") == dhash:
            previous = {w["id"]: w for w in old.get("windows", []) if isinstance(w, dict) and "id" in w}
    started = time.perf_counter()
    write_json(out / "config.resolved.json", config_dict(cfg))
    write_json(out / "windows.resolved.json", windows_document(s.windows, s.market.timestamps, s.timezone, s.embargo))
    write_text(out / "command.txt", _command())
    write_json(out / "environment.json", _environment())
    summary = Summary(
        out / "summary.json",
        {
            "schema_version": SCHEMA_VERSION,
            "status": "running",
            "symbol": s.bars.symbol,
            "interval": cfg.data.interval,
            "source": s.bars.source,
            "synthetic": s.bars.synthetic,
            "config_hash": chash,
            "data_hash": dhash,
            "windows_hash": windows_hash(s),
            "config_path": s.loaded.path,
            "data": {**s.bars.provenance, "report": s.bars.report},
            "benchmark": (
                {"symbol": s.benchmark.symbol, "available": s.benchmark.close is not None, **s.benchmark.info}
                if s.benchmark
                else None
            ),
            "stages": {"window_setup": {"status": "ok", "seconds": round(s.seconds, 3)}},
            "windows": [_window_entry(w, s) for w in s.windows],
            "aggregate": None,
            "warnings": list(s.loaded.warnings),
            "unmapped_legacy_keys": s.loaded.unmapped,
            "started_at": _now(),
            "finished_at": None,
            "seconds": None,
        },
    )
    summary.save()

    from backend.features import compute_features
    from backend.training.tb import log_evaluation, log_hparams
    from backend.training.trainer import train_window
    from backend.training.walk_forward_eval import evaluation_document, headline, replay_bundle, write_replay_files

    features = compute_features(s.market, cfg.env.features)
    failures: list[int] = []
    interrupted = False
    previous_model: Path | None = None
    with sigterm_as_interrupt():
        for k, w in enumerate(s.windows):
            entry = summary.doc["windows"][k]
            wdir = out / w.id
            if opts.resume and _can_resume(previous.get(w.id), out, w.id):
                summary.doc["windows"][k] = previous[w.id]
                summary.save()
                stages.emit(True, f"Training [{w.id}]", "skipped, completed earlier (--resume)", prefix)
                stages.emit(True, f"Evaluation [{w.id}]", headline(previous[w.id]["evaluation"]), prefix)
                previous_model = wdir / "model.zip"
                continue
            # Training
            t0 = time.perf_counter()
            entry["status"] = "training"
            summary.save()
            tb_dir = out / "tensorboard" / w.id
            if tb_dir.exists():
                shutil.rmtree(tb_dir, ignore_errors=True)
            try:
                wdir.mkdir(parents=True, exist_ok=True)
                for stale in ("metadata.json", "evaluation.json"):
                    (wdir / stale).unlink(missing_ok=True)
                bar = _progress_bar(opts.quiet, cfg.training.total_timesteps, w.id)
                try:
                    result = train_window(
                        cfg,
                        s.market,
                        features,
                        w,
                        wdir,
                        tb_dir,
                        dhash,
                        s.bars.provenance,
                        previous_model if cfg.training.warm_start else None,
                        bar,
                    )
                finally:
                    if bar is not None:
                        bar.close()
            except KeyboardInterrupt:
                entry.update(
                    status="interrupted",
                    error={"stage": "training", "type": "KeyboardInterrupt", "message": "interrupted during training"},
                )
                stages.emit(False, f"Training [{w.id}]", "interrupted (Ctrl-C / SIGTERM); rerun with --resume", prefix)
                interrupted = True
                break
            except ArtifactError as e:
                _abort(summary, entry, "training", e)
                raise
            except Exception as e:
                err = e if isinstance(e, HarnessError) else TrainingError(f"{type(e).__name__}: {e}")
                entry.update(status="failed", error={"stage": "training", "type": type(e).__name__, "message": str(e)})
                failures.append(TrainingError.exit_code if not isinstance(err, HarnessError) else err.exit_code)
                summary.stage(f"training_{w.id}", "failed", time.perf_counter() - t0)
                stages.emit(False, f"Training [{w.id}]", f"{type(e).__name__}: {e}", prefix)
                continue
            entry["training"] = {
                "timesteps": result.timesteps,
                "seconds": round(result.seconds, 3),
                "steps_per_second": round(result.steps_per_second, 1),
                "model_path": f"{w.id}/model.zip",
            }
            summary.stage(f"training_{w.id}", "ok", time.perf_counter() - t0)
            stages.emit(
                True,
                f"Training [{w.id}]",
                f"{result.timesteps:,} steps, {result.seconds:.1f} s, {result.steps_per_second:,.0f} steps/s",
                prefix,
            )
            previous_model = result.model_path
            # Evaluation
            t0 = time.perf_counter()
            try:
                rep = replay_bundle(wdir, cfg, s.market, features, w, cfg.data.interval, s.benchmark)
                doc = evaluation_document(rep, w, s.market.timestamps, s.timezone)
                write_replay_files(wdir, rep, s.market, s.timezone, doc, cfg.env.initial_capital)
            except KeyboardInterrupt:
                entry.update(
                    status="interrupted",
                    error={
                        "stage": "evaluation",
                        "type": "KeyboardInterrupt",
                        "message": "interrupted during evaluation",
                    },
                )
                stages.emit(False, f"Evaluation [{w.id}]", "interrupted; rerun with --resume", prefix)
                interrupted = True
                break
            except ArtifactError as e:
                _abort(summary, entry, "evaluation", e)
                raise
            except Exception as e:
                entry.update(
                    status="failed", error={"stage": "evaluation", "type": type(e).__name__, "message": str(e)}
                )
                failures.append(EvaluationError.exit_code)
                summary.stage(f"evaluation_{w.id}", "failed", time.perf_counter() - t0)
                stages.emit(False, f"Evaluation [{w.id}]", f"{type(e).__name__}: {e}", prefix)
                continue
            entry.update(
                status="completed",
                evaluation=rep.evaluation,
                baselines=rep.baselines,
                beats=rep.beats,
                cost_sensitivity=rep.cost_sensitivity,
                diagnostics=rep.diagnostics,
                benchmark=rep.benchmark,
                gates=_gates(cfg, rep.evaluation, rep.beats),
            )
            summary.stage(f"evaluation_{w.id}", "ok", time.perf_counter() - t0)
            for warning in rep.diagnostics["warnings"]:
                summary.doc["warnings"].append(f"{w.id}: {warning}")
                print(f"warning: {w.id}: {warning}", file=sys.stderr, flush=True)
            if cfg.training.tensorboard:
                log_evaluation(tb_dir, rep.evaluation, rep.baselines, cfg.training.total_timesteps)
            stages.emit(True, f"Evaluation [{w.id}]", headline(rep.evaluation), prefix)

    entries = summary.doc["windows"]
    done = sum(e["status"] == "completed" for e in entries)
    summary.doc["aggregate"], summary.doc["statistics"] = _aggregate(
        out, entries, cfg.data.interval, cfg.env.initial_capital, cfg.evaluation.seed
    )
    gated = [e["gates"]["passed"] for e in entries if e.get("gates")]
    if gated:
        summary.doc["gates"] = {"windows_passed": int(sum(gated)), "windows_checked": len(gated)}
    if interrupted:
        status, code = "interrupted", EXIT_INTERRUPTED
    elif done == len(entries):
        status, code = "completed", EXIT_OK
    elif done > 0:
        status, code = "partial", EXIT_PARTIAL
    else:
        status, code = "failed", failures[0] if failures else EXIT_PARTIAL
    if cfg.training.tensorboard and done:
        log_hparams(out / "tensorboard", cfg, summary.doc["aggregate"])
    summary.doc.update(status=status, finished_at=_now(), seconds=round(time.perf_counter() - started, 3))
    summary.save()
    if not opts.no_report and done:
        _report(out, summary, prefix)
    summary.stage("summary", "ok", 0.0)
    stages.emit(True, "Summary", f"{summary.path}" + ("" if status == "completed" else f" (status {status})"), prefix)
    return code


def _abort(summary: Summary, entry: dict[str, Any], stage: str, error: Exception) -> None:
    """An artifact could not be written: stop, but leave a summary that says so (if it can be written)."""
    entry.update(status="failed", error={"stage": stage, "type": type(error).__name__, "message": str(error)})
    summary.doc.update(status="failed", finished_at=_now())
    try:
        summary.save()
    except ArtifactError:
        pass  # the disk refuses even the summary; the previous summary.json stays intact


def _report(out: Path, summary: Summary, prefix: str) -> None:
    """report.html + PNGs; a failure is shown and recorded but does not change the exit code."""
    t0 = time.perf_counter()
    try:
        from backend.evaluation.report import build_report

        path = build_report(out)
    except ArtifactError:
        raise
    except Exception as e:
        summary.doc["warnings"].append(f"report failed: {type(e).__name__}: {e}")
        summary.stage("report", "failed", time.perf_counter() - t0)
        stages.emit(False, "Report", f"{type(e).__name__}: {e}", prefix)
        return
    summary.stage("report", "ok", time.perf_counter() - t0)
    stages.emit(True, "Report", str(path), prefix)


def _progress_bar(quiet: bool, total: int, wid: str):
    import sys

    if quiet or not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"train {wid}", unit="step", leave=False, dynamic_ncols=True)


def _command() -> str:
    from backend.runinfo import command_line

    return command_line()


def _environment() -> dict[str, Any]:
    from backend.runinfo import environment

    return environment()
