"""Session assignment, session filtering and resampling.

Bars are labelled by their start time. A bar belongs to the session whose [open, close)
contains its timestamp; sessions come from :mod:`backend.core.calendars` (exchange calendars:
half days, holidays and DST from ``exchange_calendars``; ``24/7`` / ``24/5``: cut at
``data.session_cut``). Resampling bins bars from the session open (09:30, 09:35, ... for 5m;
09:30, 10:30, ..., 15:30 for 1h on XNYS; 17:00, 18:00, ... for FX cut at 17:00) and never
crosses from one session into the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.core import calendars
from backend.core.errors import DataError
from backend.core.intervals import INTERVAL_MINUTES, NS_PER_MIN

__all__ = ["INTERVAL_MINUTES", "NS_PER_MIN", "Sessioned", "assign_sessions", "filter_sessions", "resample"]


@dataclass
class Sessioned:
    """Bars inside sessions, with each bar's session open/close (UTC ns) and name (datetime64[D])."""

    frame: pd.DataFrame
    open: np.ndarray
    close: np.ndarray
    label: np.ndarray
    counts: dict[str, int]


def session_bounds(calendar: str, first: pd.Timestamp, last: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (UTC ns) of every session of an exchange calendar around [first, last]."""
    table = calendars.session_table(calendar, first, last)
    return table.open, table.close


def assign_sessions(
    frame: pd.DataFrame,
    calendar: str,
    session_cut: str | None = None,
    timezone: str | None = None,
    origin: str = "bars",
) -> Sessioned:
    """Keep the bars inside sessions and tell each its session; the rest are dropped and counted."""
    ts = frame.index.as_unit("ns").asi8  # UTC ns
    tz = timezone or str(frame.index.tz or "UTC")
    table = calendars.session_table(calendar, frame.index[0], frame.index[-1], session_cut, tz)
    opens, closes = table.open, table.close
    pos = np.searchsorted(opens, ts, side="right") - 1
    valid = pos >= 0
    pos_c = np.clip(pos, 0, max(len(opens) - 1, 0))
    inside = valid & (ts >= opens[pos_c]) & (ts < closes[pos_c]) if len(opens) else np.zeros(len(ts), dtype=bool)
    counts = {"bars_outside_session_dropped": int((~inside).sum())}
    if not inside.any():
        where = calendars.describe_cut(calendar, session_cut, tz)
        raise DataError(
            f"{origin}: no bar falls inside a {calendar} session ({frame.index[0]} -> {frame.index[-1]}; sessions end "
            f"at {where}); check the time zone of the timestamps (data.timezone) and data.calendar"
        )
    keep = pos_c[inside]
    return Sessioned(frame[inside], opens[keep], closes[keep], table.label[keep], counts)


def filter_sessions(
    frame: pd.DataFrame, calendar: str, session_cut: str | None = None, timezone: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, int]]:
    """Keep bars inside sessions; returns the frame, per-bar session open and close (UTC ns) and counts."""
    s = assign_sessions(frame, calendar, session_cut, timezone)
    return s.frame, s.open, s.close, s.counts


def resample_sessioned(s: Sessioned, interval: str, columns: dict[str, str] | None = None) -> Sessioned:
    """Aggregate bars into ``interval`` bins anchored at each session's open (open first, high max,
    low min, close last, volume sum; each extra column of ``columns`` by its rule: last, sum, mean, max,
    min); a bin never spans two sessions."""
    frame, starts = _resample(s.frame, s.open, interval, columns or {})
    return Sessioned(frame, s.open[starts], s.close[starts], s.label[starts], s.counts)


def resample(
    frame: pd.DataFrame, session_open: np.ndarray, session_close: np.ndarray, interval: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Aggregate bars into ``interval`` bins anchored at each session's open."""
    out, starts = _resample(frame, session_open, interval)
    return out, session_open[starts], session_close[starts]


def _aggregate(x: np.ndarray, starts: np.ndarray, ends: np.ndarray, rule: str) -> np.ndarray:
    """One value per bin of ``x`` by ``rule``; NaN values are skipped (a bin of NaN only stays NaN)."""
    ok = np.isfinite(x)
    filled = np.where(ok, x, 0.0)
    count = np.add.reduceat(ok.astype(np.int64), starts)
    if rule == "last":
        idx = np.where(ok, np.arange(len(x)), -1)
        last = np.maximum.accumulate(idx)[ends]
        return np.where((last >= starts) & (count > 0), x[np.maximum(last, 0)], np.nan)
    if rule in ("sum", "mean"):
        total = np.add.reduceat(filled, starts)
        return np.where(count > 0, total / (np.maximum(count, 1) if rule == "mean" else 1), np.nan)
    pick = np.maximum if rule == "max" else np.minimum
    fill = -np.inf if rule == "max" else np.inf
    return np.where(count > 0, pick.reduceat(np.where(ok, x, fill), starts), np.nan)


def _resample(
    frame: pd.DataFrame, session_open: np.ndarray, interval: str, columns: dict[str, str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
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
            **{
                name: _aggregate(frame[name].to_numpy(dtype=np.float64), starts, ends, rule)
                for name, rule in (columns or {}).items()
            },
        },
        index=pd.DatetimeIndex(bins[starts].astype("datetime64[ns]"), tz="UTC").tz_convert(frame.index.tz),
    )
    out.index.name = "timestamp"
    return out, starts
