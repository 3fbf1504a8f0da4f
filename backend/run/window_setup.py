"""Window Setup: config → data → windows, validated, and the dry-run table. No torch here.

The dry-run path (``wf run --dry-run``) imports nothing heavier than pandas and
exchange_calendars: torch, stable_baselines3, gymnasium and JAX are imported by the window
tasks only.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import Config, LoadedConfig, expand_symbol_path, load_config
from backend.core.errors import DataError, InputError
from backend.core.intervals import INTERVAL_MINUTES
from backend.data.benchmark import Benchmark, load_benchmark
from backend.data.loader import Bars, load_bars
from backend.features.builtin import MarketArrays, check_feature_names, warmup_bars
from backend.features.context import extras_fingerprint
from backend.features.context import prepare as prepare_market
from backend.features.specs import nonbuiltin_identity
from backend.features.user import absolute_entries
from backend.features.user import install_entries as install_feature_modules
from backend.run.options import SetupOptions
from backend.training.algorithms import SPECS, check_backend, unused_settings
from backend.walkforward.windows import (
    Window,
    WindowSpec,
    auto_windows,
    hint_range,
    load_windows,
    parse_day,
    resolve,
    trim_train,
    windows_document,
)


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
    benchmark: Benchmark | None = None

    @property
    def cfg(self) -> Config:
        return self.loaded.config

    @property
    def annualisation(self) -> dict[str, Any]:
        """How Sharpe and Sortino are annualised here: bars per year of the calendar and interval in use."""
        return self.bars.annualisation()

    @property
    def periods_per_year(self) -> float:
        return float(self.annualisation["bars_per_year"])


def load_run_config(opts: SetupOptions) -> LoadedConfig:
    """The config file with the flags applied, validated (``data.path``'s ``{symbol}`` still unexpanded)."""
    if opts.data and opts.source not in (None, "file"):
        raise InputError(f"--data implies --source file, but --source {opts.source} was given; drop one")
    if opts.symbol is not None and opts.symbols is not None:
        raise InputError("--symbol and --symbols exclude each other: --symbols runs one member per symbol; drop one")
    return load_config(
        opts.config,
        overrides=opts.overrides(),
        flags=opts.flags(),
        data_overrides={
            "symbol": opts.symbol,
            "source": "file" if opts.data else opts.source,
            "path": opts.data,
            "interval": opts.interval,
            "cache_dir": opts.cache_dir,
            "benchmark_symbol": opts.benchmark,
        },
    )


def _one_symbol(loaded: LoadedConfig) -> LoadedConfig:
    """A single-symbol config: data.symbols refused (universes: backend.run.universe); {symbol} expanded."""
    cfg = loaded.config
    if cfg.data.symbols:
        raise InputError(
            f"data.symbols lists {len(cfg.data.symbols)} symbols ({', '.join(cfg.data.symbols)}), but this command "
            f"runs one; pass --symbol {cfg.data.symbols[0]} (wf run and wf sweep run every symbol)"
        )
    path = expand_symbol_path(cfg.data.path, cfg.data.symbol)
    if path != cfg.data.path:
        data = cfg.data.model_copy(update={"path": path})
        loaded = LoadedConfig(
            cfg.model_copy(update={"data": data}), loaded.path, loaded.warnings, loaded.unmapped, loaded.legacy,
            loaded.given,
        )  # fmt: skip
    return loaded


def setup(opts: SetupOptions, loaded: LoadedConfig | None = None) -> Setup:
    """Config → data → windows, validated; no torch. ``loaded``: the config already read (else read here).

    The stage's steps, in order (each raises its own errors, so the first problem found is the one reported):
    the config checked (:func:`_checked_config`), where the windows come from (:func:`_window_plan`), the bars and
    their features' inputs (:func:`_load_market`), the windows resolved against them (:func:`_resolved_windows`)
    and the benchmark (:func:`_load_benchmark`).
    """
    started = time.perf_counter()
    loaded, base_dir = _checked_config(opts, loaded)
    plan = _window_plan(opts, loaded.config.data.timezone)
    bars, market = _load_market(loaded, plan.hint, base_dir)
    if plan.specs is None and not plan.auto:  # dry-run without windows: describe the data only
        return Setup(loaded, bars, market, [], plan.embargo, plan.timezone, time.perf_counter() - started, None)
    windows = _resolved_windows(opts, plan, loaded, bars, market)
    benchmark = _load_benchmark(loaded, bars, plan.hint)
    return Setup(loaded, bars, market, windows, plan.embargo, plan.timezone, time.perf_counter() - started, benchmark)


@dataclass
class _WindowPlan:
    """Where the windows come from: a window file's specs, or automatic windows (``auto``) over ``start``..``end``."""

    specs: list[WindowSpec] | None
    auto: bool
    embargo: int
    timezone: str
    start: date | None
    end: date | None
    hint: tuple[date, date] | None  # the days the windows need, when known before the data (loading may cut to it)
    origin: str  # the window file, or "automatic windows" (error messages name it)


def _checked_config(opts: SetupOptions, loaded: LoadedConfig | None) -> tuple[LoadedConfig, Path | None]:
    """The config of one symbol, its feature modules installed, its feature names and backend checked; the folder
    its relative feature module paths are read from."""
    loaded = _one_symbol(loaded if loaded is not None else load_run_config(opts))
    cfg = loaded.config
    base_dir = Path(opts.config).resolve().parent if opts.config else None
    cfg.env.feature_modules = absolute_entries(cfg.env.feature_modules, base_dir)  # as loaded, wherever read from
    install_feature_modules(cfg.env.feature_modules, base_dir)
    context_symbols = [c.symbol.upper() for c in cfg.data.context]
    check_feature_names(cfg.env.features, columns=list(cfg.data.columns), context=context_symbols)
    check_backend(cfg.agent.backend)
    ignored = ignored_settings_warning(loaded)
    if ignored:
        loaded.warnings.append(ignored)
    return loaded, base_dir


def _window_plan(opts: SetupOptions, timezone: str) -> _WindowPlan:
    """--windows FILE or automatic windows (--train-days/--test-days, --start/--end), checked; --embargo-bars."""
    auto = any(v is not None for v in (opts.train_days, opts.test_days, opts.start, opts.end))
    if opts.windows and auto:
        raise InputError("--windows and automatic windows (--start/--end/--train-days/--test-days) exclude each other")
    specs: list[WindowSpec] | None = None
    embargo, tz = 0, timezone
    if opts.windows:
        specs, embargo, tz = load_windows(opts.windows, timezone)
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
    return _WindowPlan(specs, auto, embargo, tz, start, end, hint, opts.windows or "automatic windows")


def _load_market(
    loaded: LoadedConfig, hint: tuple[date, date] | None, base_dir: Path | None
) -> tuple[Bars, MarketArrays]:
    """The bars, validated, as arrays with their context series and extra columns; the data hash covers both."""
    cfg = loaded.config
    bars = load_bars(cfg.data, hint)
    market = MarketArrays.from_bars(
        bars.frame, bars.session_open, bars.session_close, INTERVAL_MINUTES[cfg.data.interval]
    )
    market, feature_notes = prepare_market(market, cfg, bars, hint, base_dir)
    loaded.warnings.extend(feature_notes)
    identity = nonbuiltin_identity(list(cfg.env.features))
    if identity:  # in the summary's data provenance (the config hash and bundles carry it too)
        bars.provenance["feature_identity"] = identity
    if market.context:  # the context series' content joins the data hash (resume, bundles, replay compare it)
        fold_context_hash(bars, extras_fingerprint(replace(market, feature_sources=())))
    return bars, market


def _resolved_windows(
    opts: SetupOptions, plan: _WindowPlan, loaded: LoadedConfig, bars: Bars, market: MarketArrays
) -> list[Window]:
    """The windows as bar ranges of ``market``: each span inside the data and playable; a short warm-up noted."""
    specs = plan.specs
    if specs is None:
        assert opts.train_days is not None and opts.test_days is not None  # checked by _window_plan
        days = list(bars.session_dates())
        specs = auto_windows(
            days,
            start=plan.start or days[0],
            end=plan.end or days[-1],
            train_days=opts.train_days,
            test_days=opts.test_days,
            step_days=opts.step_days,
            mode=opts.mode,
            tz=plan.timezone,
        )
        if plan.embargo:
            # keep the test span where it is and cut the train span short (no leakage)
            specs = [trim_train(s, market.timestamps, plan.embargo) for s in specs]
    windows = resolve(specs, market.timestamps, market.session_id, plan.embargo, plan.origin, bars=bars)
    cfg = loaded.config
    check_episodes(windows, market, forced_exit=cfg.env.forced_exit_minutes, origin=plan.origin)
    short = warmup_warning(windows, market, list(cfg.env.features))
    if short:
        loaded.warnings.append(short)
    return windows


def _load_benchmark(loaded: LoadedConfig, bars: Bars, hint: tuple[date, date] | None) -> Benchmark | None:
    """data.benchmark_symbol's bars on the traded sessions (None without one); unavailable: a warning, no error."""
    cfg = loaded.config
    if not cfg.data.benchmark_symbol:
        return None
    benchmark = load_benchmark(cfg.data, bars, hint)
    if benchmark.warning:
        loaded.warnings.append(benchmark.warning)
    return benchmark


def fold_context_hash(bars: Bars, context_hash: str) -> None:
    """``data_hash`` = hash(traded bars, context series): a changed context file is never silently reused.

    The traded bars' own hash stays in ``provenance["bars_hash"]``; ``content_hash`` (= ``data_hash()``) becomes the
    hash of both, so resume, a bundle's ``data_hash`` and the replay's data check all see the context's content.
    """
    own = bars.provenance.get("bars_hash") or bars.provenance["content_hash"]
    bars.provenance["bars_hash"] = own
    bars.provenance["context_hash"] = context_hash
    bars.provenance["content_hash"] = hashlib.sha256(f"{own}+{context_hash}".encode()).hexdigest()[:16]


def warmup_warning(windows: list[Window], market: MarketArrays, names: list[str]) -> str | None:
    """A note when the loaded history holds fewer bars before the first train start than the features' declared
    warm-up: the first train bars' features are then computed from a shorter history than they need."""
    if not windows:
        return None
    starts, stops = market.session_bounds()
    need = warmup_bars(names, int((stops - starts).max()) if len(starts) else 0)
    first = min(windows, key=lambda w: w.train_start)
    if first.train_start >= need:
        return None
    return (
        f"window {first.id}: the loaded history holds {first.train_start} bar(s) before its train start, the features "
        f"declare a warm-up of {need}; its first train bars' features are computed from a shorter history (load "
        "earlier data, e.g. an earlier data.start, for features independent of where the history starts)"
    )


def check_episodes(windows: list[Window], market: MarketArrays, *, forced_exit: float | None, origin: str) -> None:
    """Every span must hold one playable session: two bars that end by the forced exit (exit 3 at Window Setup)."""
    if forced_exit is None:
        return
    ends = market.bar_end_minutes() <= forced_exit + 1e-9
    for w in windows:
        for span, (lo, hi) in (("train", (w.train_start, w.train_end)), ("test", (w.test_start, w.test_end))):
            sid = market.session_id[lo:hi][ends[lo:hi]]
            counts = np.unique(sid, return_counts=True)[1] if len(sid) else np.array([0])
            if counts.max() < 2:
                raise DataError(
                    f"{origin}: window {w.id}: no session of its {span} span has two bars that end within "
                    f"env.forced_exit_minutes = {forced_exit:g} of the open, so nothing can be traded; raise "
                    "forced_exit_minutes or use a finer interval"
                )


def ignored_settings_warning(loaded: LoadedConfig) -> str | None:
    """One line naming every setting the chosen algorithm does not use that the config spells out or changes."""
    cfg = loaded.config
    spec = SPECS[cfg.agent.algorithm]
    keys = [f"sac.{k}" for k in spec.unused_shared if f"sac.{k}" in loaded.given]
    keys += [k for k in unused_settings(cfg) if k not in keys]
    if not keys:
        return None
    raw = cfg.model_dump(mode="json")

    def value(key: str) -> Any:
        node: Any = raw
        for part in key.split("."):
            node = node[part]
        return node

    why = {f"sac.{k}": reason for k, reason in spec.unused_shared.items()}
    parts = [f"{k}={value(k)!r} ({why.get(k, 'another algorithm' + chr(39) + 's setting')})" for k in keys]
    return f"agent.algorithm={cfg.agent.algorithm} does not use: " + "; ".join(parts) + " (kept in the config, ignored)"


def windows_hash(s: Setup) -> str:
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
    for note in rep.get("notes", []):
        lines.append(f"data note: {note}")
    ann = s.annualisation
    lines.append(
        f"calendar: {ann['calendar']}, sessions end {prov.get('session_end', 'at the close')}; Sharpe annualised with "
        f"{ann['bars_per_year']:,} bars a year ({ann['sessions_per_year']} sessions x {ann['bars_per_session']} bars)"
    )
    if s.loaded.legacy:
        lines.append(
            f"config: earlier-harness format ({s.loaded.path}); "
            + (f"not implemented: {', '.join(s.loaded.unmapped)}" if s.loaded.unmapped else "every key mapped")
        )
    for note in s.loaded.warnings:
        lines.append(f"warning: {note}")
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
