"""Regular sessions from an exchange calendar, session filtering and resampling.

Bars are labelled by their start time. A bar belongs to the session whose
[open, close) contains its timestamp; half days (13:00 close), holidays and DST come from
``exchange_calendars``. Resampling bins bars from the session open (09:30, 09:35, ... for
5m; 09:30, 10:30, ..., 15:30 for 1h) and never crosses the overnight gap.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from backend.errors import DataError, InputError

INTERVAL_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
NS_PER_MIN = 60_000_000_000


@lru_cache(maxsize=8)
def _calendar(name: str):
    import exchange_calendars as xcals

    try:
        return xcals.get_calendar(name)
    except xcals.errors.InvalidCalendarName as e:
        raise InputError(f"data.calendar = {name!r} is not a known exchange calendar (try 'XNYS')") from e


def _cache_file(calendar: str, first_year: int, last_year: int) -> Path | None:
    try:
        import platformdirs

        version = metadata.version("exchange-calendars")
    except Exception:
        return None
    folder = Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness")) / "calendars"
    return folder / f"{calendar}-{version}-{first_year}-{last_year}.npz"


def session_bounds(calendar: str, first: pd.Timestamp, last: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (UTC ns) of every session of the calendar years spanned by [first, last].

    Computed with exchange_calendars once and cached per calendar, library version and years
    (importing and building a calendar takes about half a second; the dry-run needs ~1 s).
    """
    y0, y1 = first.tz_convert("UTC").year, last.tz_convert("UTC").year
    path = _cache_file(calendar, y0, y1)
    if path is not None and path.exists():
        try:
            with np.load(path) as cached:
                return cached["open"], cached["close"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: compute again
    cal = _calendar(calendar)
    start = max(pd.Timestamp(f"{y0}-01-01"), cal.first_session)
    end = min(pd.Timestamp(f"{y1}-12-31"), cal.last_session)
    if start > end:
        raise DataError(
            f"the bars ({first} -> {last}) lie outside the {calendar} calendar "
            f"({cal.first_session.date()} -> {cal.last_session.date()})"
        )
    sched = cal.schedule.loc[start:end, ["open", "close"]]
    opens = pd.DatetimeIndex(sched["open"].array).as_unit("ns").asi8
    closes = pd.DatetimeIndex(sched["close"].array).as_unit("ns").asi8
    if path is not None:
        try:
            from backend.jsonio import write_atomic

            def save(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.savez(fh, open=opens, close=closes)

            write_atomic(path, save)
        except Exception:
            pass
    return opens, closes


def filter_sessions(frame: pd.DataFrame, calendar: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, int]]:
    """Keep bars inside regular sessions.

    Returns the filtered frame, the per-bar session open and close (UTC ns int64) and counts.
    """
    ts = frame.index.as_unit("ns").asi8  # UTC ns
    opens, closes = session_bounds(calendar, frame.index[0], frame.index[-1])
    pos = np.searchsorted(opens, ts, side="right") - 1
    valid = pos >= 0
    pos_c = np.clip(pos, 0, len(opens) - 1)
    inside = valid & (ts >= opens[pos_c]) & (ts < closes[pos_c])
    counts = {"bars_outside_session_dropped": int((~inside).sum())}
    if not inside.any():
        raise DataError(f"no bar falls inside a regular {calendar} session; check the time zone of the timestamps")
    return frame[inside], opens[pos_c[inside]], closes[pos_c[inside]], counts


def resample(
    frame: pd.DataFrame, session_open: np.ndarray, session_close: np.ndarray, interval: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Aggregate bars into ``interval`` bins anchored at each session's open."""
    minutes = INTERVAL_MINUTES[interval]
    ts = frame.index.as_unit("ns").asi8
    if minutes == 1:
        step = np.diff(ts)
        if len(step) and np.any((step % NS_PER_MIN) != 0):
            raise DataError("bars are not on a 1-minute grid; cannot use interval 1m")
    width = minutes * NS_PER_MIN
    bins = session_open + ((ts - session_open) // width) * width
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    cols = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
    vol = np.nan_to_num(cols["volume"], nan=0.0)
    ends = np.r_[starts[1:], len(ts)] - 1
    out = pd.DataFrame(
        {
            "open": cols["open"][starts],
            "high": np.maximum.reduceat(cols["high"], starts),
            "low": np.minimum.reduceat(cols["low"], starts),
            "close": cols["close"][ends],
            "volume": np.add.reduceat(vol, starts),
        },
        index=pd.DatetimeIndex(bins[starts].astype("datetime64[ns]"), tz="UTC").tz_convert(frame.index.tz),
    )
    out.index.name = "timestamp"
    return out, session_open[starts], session_close[starts]
