"""Market calendars: where sessions begin and end, and how many bars make a year.

``data.calendar`` is one of

* an **exchange_calendars name** (``XNYS``, ``XLON``, ``XTKS``, ``CMES``, …): regular sessions,
  holidays, half days and DST from the library. A session is named by its exchange date.
* ``24/7`` (crypto): a session every day.
* ``24/5`` (FX): a session every Monday to Friday.

For ``24/7`` and ``24/5`` there is no exchange close, so ``data.session_cut`` says where one
session ends and the next begins: ``"HH:MM"`` wall-clock time in ``data.timezone`` (DST-aware:
``17:00`` with ``America/New_York`` is 21:00 UTC in summer, 22:00 UTC in winter), or null for
00:00 UTC. "Flat at the close" means flat at that cut. A session is named by the date on which
it ends: with a 17:00 New York cut, Monday's FX session runs Sunday 17:00 → Monday 17:00 (the
FX value-date convention); with a 00:00 cut a session covers exactly the day it is named by.
``24/5`` keeps the sessions named Monday–Friday, so with a 17:00 New York cut the FX week runs
Sunday 17:00 → Friday 17:00. These sessions are generated here, without exchange_calendars;
holidays of 24/x markets are not modelled (days without bars simply have no session in the data).

:func:`annualisation` is the one table of bars per year every Sharpe and Sortino is annualised
with (see its docstring for the basis of each figure).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import platformdirs

from backend.core.errors import DataError, InputError
from backend.core.intervals import interval_minutes
from backend.core.jsonio import load_json, write_atomic, write_json

CONTINUOUS_SESSIONS_PER_YEAR = {"24/7": 365, "24/5": 260}
CONTINUOUS_WEEKDAYS = {"24/7": 7, "24/5": 5}  # sessions named Monday (0) … up to this weekday, exclusive
REFERENCE_YEARS = (2015, 2024)  # exchange calendars: sessions per year and session shape measured here
_NAME = re.compile(r"^[A-Za-z0-9_]{2,32}$")
_CUT = re.compile(r"^(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class SessionTable:
    """Sessions of a calendar: open and close (UTC ns, close exclusive) and name (datetime64[D])."""

    open: np.ndarray
    close: np.ndarray
    label: np.ndarray


def is_continuous(calendar: str) -> bool:
    """True for ``24/7`` and ``24/5`` (sessions generated here, cut by ``data.session_cut``)."""
    return calendar in CONTINUOUS_SESSIONS_PER_YEAR


def parse_cut(session_cut: str | None) -> tuple[int, int] | None:
    """``"HH:MM"`` → (hour, minute); None stays None (= 00:00 UTC)."""
    if session_cut is None:
        return None
    m = _CUT.match(session_cut) if isinstance(session_cut, str) else None
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise InputError(
            f"data.session_cut = {session_cut!r}: expected HH:MM (24-hour wall-clock time in data.timezone), "
            'e.g. "17:00"; null means 00:00 UTC'
        )
    return int(m[1]), int(m[2])


def check_calendar(calendar: str, session_cut: str | None = None, build: bool = False) -> None:
    """Refuse an unknown calendar or a session cut it cannot use (InputError, exit 2).

    An exchange calendar's name is checked by its form here and by exchange_calendars when
    its sessions are first built (``build=True`` builds it now; that costs ~0.5 s, which the
    session cache otherwise saves).
    """
    if is_continuous(calendar):
        parse_cut(session_cut)
        return
    if not isinstance(calendar, str) or not _NAME.match(calendar):
        raise _unknown_calendar(calendar)
    if session_cut is not None:
        raise InputError(
            f"data.session_cut = {session_cut!r} applies to the 24/7 and 24/5 calendars only; {calendar} sessions "
            "end at the exchange's close. Set data.session_cut to null (env.forced_exit_minutes flattens earlier)"
        )
    if build:
        exchange_calendar(calendar)


def describe_cut(calendar: str, session_cut: str | None, timezone: str) -> str:
    """Where a session ends, in words (for provenance and `wf data show`)."""
    if not is_continuous(calendar):
        return f"the {calendar} close"
    return f"{session_cut} {timezone}" if session_cut else "00:00 UTC"


def _unknown_calendar(name: str) -> InputError:
    import exchange_calendars as xcals  # heavy: about 0.5 s; a cached session table never imports it

    names = [*CONTINUOUS_SESSIONS_PER_YEAR, *xcals.get_calendar_names(include_aliases=True)]
    close = difflib.get_close_matches(str(name).upper(), names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return InputError(
        f"data.calendar = {name!r} is not a known calendar; {hint}use an exchange_calendars name (XNYS, XLON, "
        "XTKS, CMES, …: exchange_calendars.get_calendar_names() lists them), '24/7' (crypto) or '24/5' (FX)"
    )


@lru_cache(maxsize=16)
def exchange_calendar(name: str, start_year: int | None = None, end_year: int | None = None) -> Any:
    """The exchange_calendars calendar ``name``, optionally built for [start_year, end_year] only."""
    if is_continuous(name) or not isinstance(name, str) or not _NAME.match(name):
        raise _unknown_calendar(name)
    import exchange_calendars as xcals  # heavy: about 0.5 s; a cached session table never imports it

    try:
        if start_year is None:
            return xcals.get_calendar(name)
        return xcals.get_calendar(name, start=f"{start_year}-01-01", end=f"{end_year}-12-31")
    except xcals.errors.InvalidCalendarName:
        raise _unknown_calendar(name) from None
    except (ValueError, xcals.errors.CalendarError) as e:
        raise DataError(
            f"the {name} calendar cannot be built for {start_year}-{end_year}: {e}; use bars inside its range"
        ) from e


def _cache_folder() -> Path:
    return Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness")) / "calendars"


def _version() -> str | None:
    try:
        return metadata.version("exchange-calendars")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return None


def _exchange_table(calendar: str, y0: int, y1: int) -> SessionTable:
    """Sessions of the calendar years y0..y1, cached per calendar, library version and years.

    Importing and building a calendar takes about half a second; the dry-run needs ~1 s.
    """
    if not _NAME.match(calendar):
        raise _unknown_calendar(calendar)
    folder, version = _cache_folder(), _version()
    path = folder / f"{calendar}-{version}-{y0}-{y1}.npz" if folder and version else None
    if path is not None and path.exists():
        try:
            with np.load(path) as cached:
                return SessionTable(cached["open"], cached["close"], cached["label"].astype("datetime64[D]"))
        except (OSError, ValueError, KeyError, EOFError):
            pass  # unreadable or older cache: compute again
    cal = exchange_calendar(calendar, y0, y1)
    sched = cal.schedule.loc[:, ["open", "close"]]
    opens = pd.DatetimeIndex(sched["open"].array).as_unit("ns").asi8
    closes = pd.DatetimeIndex(sched["close"].array).as_unit("ns").asi8
    labels = pd.DatetimeIndex(sched.index).tz_localize(None).to_numpy().astype("datetime64[D]")
    if path is not None:
        try:

            def save(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.savez(fh, open=opens, close=closes, label=labels.astype(np.int64))

            write_atomic(path, save, root=path.parent.parent)  # never through a link leaving the cache
        except Exception:
            pass
    return SessionTable(opens, closes, labels)


def _continuous_table(
    calendar: str, first: pd.Timestamp, last: pd.Timestamp, session_cut: str | None, timezone: str
) -> SessionTable:
    hm = parse_cut(session_cut)
    zone = timezone if hm else "UTC"
    hour, minute = hm or (0, 0)
    lo = first.tz_convert(zone).tz_localize(None).normalize() - pd.Timedelta(days=2)
    hi = last.tz_convert(zone).tz_localize(None).normalize() + pd.Timedelta(days=3)
    days = pd.date_range(lo, hi, freq="D")
    cuts_local = days + pd.Timedelta(hours=hour, minutes=minute)
    cuts = (
        cuts_local.tz_localize(zone, ambiguous=np.ones(len(days), dtype=bool), nonexistent="shift_forward")
        .as_unit("ns")
        .asi8
    )
    # a session is named by the day it ends on; a 00:00 cut ends it at the next midnight
    names = days[:-1] if (hour, minute) == (0, 0) else days[1:]
    keep = np.asarray(names.day_of_week < CONTINUOUS_WEEKDAYS[calendar])
    labels = names.to_numpy().astype("datetime64[D]")
    return SessionTable(cuts[:-1][keep], cuts[1:][keep], labels[keep])


def session_table(
    calendar: str,
    first: pd.Timestamp,
    last: pd.Timestamp,
    session_cut: str | None = None,
    timezone: str = "UTC",
) -> SessionTable:
    """Every session of ``calendar`` that can hold a bar in [first, last] (tz-aware timestamps)."""
    if is_continuous(calendar):
        return _continuous_table(calendar, first, last, session_cut, timezone)
    if session_cut is not None:
        check_calendar(calendar, session_cut)  # raises: exchange sessions end at the exchange close
    y0 = (first.tz_convert("UTC") - pd.Timedelta(days=2)).year
    y1 = (last.tz_convert("UTC") + pd.Timedelta(days=2)).year
    return _exchange_table(calendar, y0, y1)


# ----------------------------------------------------------------------------- annualisation


def _bins_in_session(length_min: int, breaks: tuple[tuple[int, int], ...], width: int) -> int:
    """Bins of ``width`` minutes, anchored at the open, that hold trading time (as the resampler makes them)."""
    minutes = np.arange(length_min)
    for b0, b1 in breaks:
        minutes = minutes[(minutes < b0) | (minutes >= b1)]
    return len(np.unique(minutes // width))


@lru_cache(maxsize=32)
def _exchange_profile(calendar: str) -> dict[str, Any]:
    """Sessions per year and the regular session's shape over REFERENCE_YEARS (cached on disk)."""
    folder, version = _cache_folder(), _version()
    path = folder / f"{calendar}-{version}-profile.json" if folder and version and _NAME.match(calendar) else None
    if path is not None and path.exists():
        try:
            return load_json(path, "calendar profile")
        except InputError:
            pass
    y0, y1 = REFERENCE_YEARS
    try:
        cal = exchange_calendar(calendar, y0, y1)
    except DataError:  # a calendar younger than the reference years: its own complete years
        cal = exchange_calendar(calendar)
        y0, y1 = cal.first_session.year + 1, cal.last_session.year - 1
    sched = cal.schedule
    sched = sched[(sched.index.year >= y0) & (sched.index.year <= y1)]
    if sched.empty:
        raise DataError(f"the {calendar} calendar has no complete year of sessions to annualise with")
    years = sched.index.year.unique()
    opens = pd.DatetimeIndex(sched["open"].array)
    length = ((pd.DatetimeIndex(sched["close"].array) - opens) // pd.Timedelta(minutes=1)).astype(int)
    if "break_start" in sched and sched["break_start"].notna().any():
        b0 = ((pd.DatetimeIndex(sched["break_start"].array) - opens) // pd.Timedelta(minutes=1)).fillna(-1)
        b1 = ((pd.DatetimeIndex(sched["break_end"].array) - opens) // pd.Timedelta(minutes=1)).fillna(-1)
    else:
        b0 = b1 = pd.Index(np.full(len(sched), -1))
    shapes = pd.Series(list(zip(np.asarray(length), np.asarray(b0, dtype=int), np.asarray(b1, dtype=int), strict=True)))
    regular = shapes.mode().iloc[0]
    profile = {
        "calendar": calendar,
        "years": [int(years.min()), int(years.max())],
        "sessions_per_year_mean": len(sched) / len(years),
        "session_minutes": int(regular[0]),
        "breaks": [[int(regular[1]), int(regular[2])]] if regular[1] >= 0 else [],
    }
    if path is not None:
        try:
            write_json(path, profile, path.parent.parent)
        except Exception:
            pass
    return profile


def annualisation(calendar: str, interval: str, session_cut: str | None = None) -> dict[str, Any]:
    """Bars per year for annualising Sharpe/Sortino on ``calendar`` at ``interval``: the one table.

    * exchange calendars: sessions per year = the mean number of sessions a calendar year held
      over REFERENCE_YEARS (2015–2024), rounded (XNYS: 251.6 → 252, XLON 253, XTKS 244);
      bars per session = the bins the resampler makes of the most common session (XNYS: 390
      minutes → 78 at 5m, 7 at 1h; lunch breaks excluded);
    * ``24/5``: 260 sessions (52 weeks × 5) of 24 h; ``24/7``: 365 sessions of 24 h
      (so hourly FX has 6,240 bars a year, hourly crypto 8,760).

    Returns ``calendar``, ``interval``, ``session_cut``, ``sessions_per_year``,
    ``bars_per_session``, ``bars_per_year`` and ``basis`` (how the figures were obtained).
    """
    width = interval_minutes(interval)
    if is_continuous(calendar):
        parse_cut(session_cut)
        spy = CONTINUOUS_SESSIONS_PER_YEAR[calendar]
        bps = math.ceil(24 * 60 / width)
        basis = f"{calendar}: {spy} sessions of 24 h a year, cut at " + (
            f"{session_cut} in data.timezone" if session_cut else "00:00 UTC"
        )
    else:
        check_calendar(calendar, session_cut)
        prof = _exchange_profile(calendar)
        spy = round(prof["sessions_per_year_mean"])
        breaks = tuple(tuple(b) for b in prof["breaks"])
        bps = _bins_in_session(prof["session_minutes"], breaks, width)
        y0, y1 = prof["years"]
        basis = (
            f"{calendar}: mean {prof['sessions_per_year_mean']:.1f} sessions a year {y0}-{y1} (exchange_calendars "
            f"{_version()}), regular session {prof['session_minutes']} min"
            + (f" less a {breaks[0][1] - breaks[0][0]} min break" if breaks else "")
        )
    return {
        "calendar": calendar,
        "interval": interval,
        "session_cut": session_cut,
        "sessions_per_year": spy,
        "bars_per_session": bps,
        "bars_per_year": spy * bps,
        "basis": basis,
    }
