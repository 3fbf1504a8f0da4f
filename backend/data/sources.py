"""Raw bar readers: bundled sample, CSV/Parquet files, synthetic bars.

Each returns a frame with a tz-aware DatetimeIndex (exchange time zone) and lower-case
columns open, high, low, close, volume. yfinance lives in :mod:`backend.data.yahoo`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from backend.errors import DataError, InputError

SAMPLE_PATH = Path(__file__).resolve().parent / "samples" / "SPY_1m_2017_2019.parquet"
SAMPLE_SYMBOL = "SPY"
OHLCV = ("open", "high", "low", "close", "volume")
TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "ts", "date_time")


@lru_cache(maxsize=2)
def _read_sample(path: str) -> pd.DataFrame:
    frame = pd.read_parquet(path, engine="pyarrow").set_index("timestamp")
    frame.index = frame.index.as_unit("ns")
    return frame


def read_sample() -> pd.DataFrame:
    """The bundled SPY 1-minute bars (read once per process)."""
    if not SAMPLE_PATH.exists():
        raise DataError(f"{SAMPLE_PATH}: bundled sample missing; reinstall the package or run scripts/build_sample.py")
    return _read_sample(str(SAMPLE_PATH))


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 (16 hex) of the bars' timestamps (UTC ns) and OHLCV as float64: the data hash."""
    import hashlib

    h = hashlib.sha256(frame.index.as_unit("ns").asi8.tobytes())
    for col in OHLCV:
        h.update(np.ascontiguousarray(frame[col].to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def normalise_columns(frame: pd.DataFrame, origin: str, timezone: str) -> pd.DataFrame:
    """Find the timestamp (column or index) and OHLCV columns, case-insensitively."""
    lower = {str(c).strip().lower(): c for c in frame.columns}
    if not isinstance(frame.index, pd.DatetimeIndex):
        time_col = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
        if time_col is None:
            raise DataError(
                f"{origin}: no timestamp column (looked for {', '.join(TIME_COLUMNS)}, any case) "
                "and the index is not a datetime index; name the time column 'timestamp'"
            )
        try:
            times = pd.to_datetime(frame[time_col], utc=False)
        except (ValueError, TypeError) as e:
            if "mixed time" not in str(e).lower():
                raise DataError(f"{origin}: column '{time_col}' does not parse as timestamps: {e}") from e
            # offsets that change with DST (-05:00 / -04:00): exact instants, converted below
            times = pd.to_datetime(frame[time_col], utc=True)
        frame = frame.drop(columns=[time_col])
        frame.index = pd.DatetimeIndex(times)
        lower = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in OHLCV if c not in lower]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)} (found {', '.join(map(str, frame.columns))}); "
            "columns open, high, low, close, volume are required (any case)"
        )
    out = pd.DataFrame({c: pd.to_numeric(frame[lower[c]], errors="coerce") for c in OHLCV}, index=frame.index)
    idx = out.index
    if idx.tz is None:
        idx = idx.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
    else:
        idx = idx.tz_convert(timezone)
    out.index = idx.as_unit("ns")
    out.index.name = "timestamp"
    return out


def read_file(path: str, timezone: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"--data {path}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p, engine="pyarrow")
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(p)
        else:
            raise InputError(f"--data {path}: unsupported file type '{suffix}'; use .csv or .parquet")
    except (OSError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise DataError(f"{path}: cannot read bars: {e}") from e
    try:
        return normalise_columns(frame, path, timezone)
    except (ValueError, TypeError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: {e}") from e


def synthetic_bars(
    start: str,
    end: str,
    calendar: str,
    timezone: str,
    seed: int = 0,
    drift: float = 0.0,
    vol: float = 0.0008,
    edge: float = 0.0,
) -> pd.DataFrame:
    """Deterministic 1-minute bars on the calendar's regular sessions.

    With ``edge = 0`` a pure random walk. With ``edge > 0`` a planted, learnable edge: the
    next bar's log return has mean ``edge × vol × sign(this bar's return)`` (each bar opens
    at the previous close, so this bar's return is its ``body`` feature, known at its close).
    For tests and sanity checks only; runs on it are labelled synthetic.
    """
    from backend.data.sessions import _calendar

    cal = _calendar(calendar)
    sessions = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    if len(sessions) == 0:
        raise DataError(f"synthetic source: no {calendar} sessions between {start} and {end}")
    sched = cal.schedule.loc[sessions]
    stamps = []
    for o, c in zip(sched["open"], sched["close"], strict=True):
        stamps.append(pd.date_range(o, c, freq="1min", inclusive="left"))
    idx = stamps[0].append(stamps[1:]) if len(stamps) > 1 else stamps[0]
    rng = np.random.default_rng(seed)
    n = len(idx)
    rets = drift + vol * rng.standard_normal(n)
    if edge:
        for t in range(1, n):  # sequential by construction: the edge depends on the last return
            rets[t] += edge * vol * (1.0 if rets[t - 1] > 0 else -1.0)
    close = 100.0 * np.exp(np.cumsum(rets))
    open_ = np.r_[100.0, close[:-1]]
    wiggle = np.abs(rng.standard_normal(n)) * vol * close * 0.5
    high = np.maximum(open_, close) + wiggle
    low = np.minimum(open_, close) - wiggle
    volume = rng.integers(1_000, 50_000, n).astype(np.float64)
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)
    frame.index = frame.index.tz_convert(timezone).as_unit("ns")
    frame.index.name = "timestamp"
    return frame
