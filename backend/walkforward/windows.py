"""Train/test windows: window files (both formats), automatic windows, resolution to bars.

A window file is either a bare list (the earlier harness's format) or an object with
``windows`` (and optionally ``timezone``, ``embargo_bars``). Dates are ISO dates
(``2019-01-25``) or ISO datetimes (``2019-01-25T15:55``, ``2019-01-25 15:55:00-05:00``) in the
exchange time zone; anything else (``01/25/2019``, ``today``, ``2019-02``) is an error quoting
the value. A date names a session: a date-only start is the open of the session of that name,
a date-only end is inclusive (the whole session) — on 24/x calendars cut at 17:00 the session
named Monday starts on Sunday evening. An explicit datetime end is inclusive too.

Resolution turns dates into bar index ranges [start, end) and checks them against the data
before anything trains: a window reaching outside the data (a session of the calendar inside
the window holds no bars because it lies before the first or after the last bar) is a
DataError (exit 3) naming the window, the field and the data's range; so is a span that holds
no bars, or one whose sessions all have fewer than 2 bars (no episode can be played on it).
Window ids become folder names: they must be safe names and must not collide with the run
folder's own entries (``tensorboard``, ``replay``, its files, anything starting with '.').
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.core.errors import DataError, InputError
from backend.core.jsonio import load_json

FIELDS = ("train_start", "train_end", "test_start", "test_end")
# fields of windows.resolved.json that are informational (the file can be read back as input)
RESOLVED_INFO = {"train_bars", "test_bars", "train_sessions", "test_sessions", "as_given"}
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")  # a folder name: up to 200 characters
# names the run folder uses itself (compared case-insensitively: some file systems ignore case)
RESERVED_IDS = frozenset(
    {
        "tensorboard",
        "replay",
        "summary.json",
        "config.resolved.json",
        "windows.resolved.json",
        "command.txt",
        "environment.json",
        "report.html",
        "aggregate.png",
        "sweep.json",
        "sweep.csv",
        "trials",
        "final",
        "best_config.json",
        "tune_summary.json",
        "study.db",
    }
)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class WindowSpec:
    """A window as written: timestamps in the exchange zone, ends exclusive."""

    id: str
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # exclusive
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # exclusive
    text: dict[str, str]  # the values as given, for reports
    date_only: frozenset[str] = frozenset()  # fields given as dates: resolved by session name


@dataclass(frozen=True)
class Window:
    """A window resolved against bars: index ranges [start, end)."""

    id: str
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    train_sessions: int
    test_sessions: int
    spec: WindowSpec

    @property
    def train_bars(self) -> int:
        return self.train_end - self.train_start

    @property
    def test_bars(self) -> int:
        return self.test_end - self.test_start

    def describe(self, timestamps: np.ndarray, tz: str) -> dict[str, Any]:
        def stamp(i: int) -> str:
            return pd.Timestamp(int(timestamps[i]), tz="UTC").tz_convert(tz).isoformat()

        return {
            "id": self.id,
            "train_start": stamp(self.train_start),
            "train_end": stamp(self.train_end - 1),
            "test_start": stamp(self.test_start),
            "test_end": stamp(self.test_end - 1),
            "train_bars": self.train_bars,
            "test_bars": self.test_bars,
            "train_sessions": self.train_sessions,
            "test_sessions": self.test_sessions,
            "as_given": self.spec.text,
        }


def parse_day(text: str | None, flag: str) -> date | None:
    """A command-line date: ISO YYYY-MM-DD only (or None)."""
    if text is None:
        return None
    value = str(text).strip()
    if not ISO_DATE.match(value):
        raise InputError(f"{flag} {text!r}: expected an ISO date like 2019-01-02 (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InputError(f"{flag} {text!r}: not a valid date ({e}); expected YYYY-MM-DD") from e


def _is_date_only(text: str) -> bool:
    return bool(ISO_DATE.match(text.strip()))


def _parse_time(value: Any, where: str, tz: str, end: bool) -> pd.Timestamp:
    if isinstance(value, bool) or not isinstance(value, str):
        raise InputError(f'{where}: expected an ISO date string like "2019-01-02", got {value!r}')
    text = value.strip()
    if not (ISO_DATE.match(text) or ISO_DATETIME.match(text)):
        raise InputError(
            f"{where}: {value!r} is not an ISO date or datetime; write YYYY-MM-DD (a whole session) or "
            "YYYY-MM-DDTHH:MM[:SS] (exchange time zone, optional offset)"
        )
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: {value!r} is not a valid date or datetime ({e}); use YYYY-MM-DD") from e
    if ts is pd.NaT:
        raise InputError(f"{where}: {value!r} is not a valid date")
    if _is_date_only(text):  # local midnight (calendar days: DST days have 23 or 25 hours)
        day = ts + pd.Timedelta(days=1) if end else ts  # a date-only end includes that whole day
        return day.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    if end:
        ts = ts + pd.Timedelta(1, "ns")  # an explicit end time is inclusive
    return ts


def check_id(window_id: str, where: str, what: str = "window id") -> str:
    """A window id (or sweep member name) that is a safe folder name and not one the run folder uses itself."""
    if not SAFE_ID.match(window_id) or window_id in (".", ".."):
        raise InputError(
            f"{where}: {what} {window_id!r} is not a safe folder name (letters, digits, '_', '-', '.'; "
            "no '/', no leading '.', at most 200 characters); rename it"
        )
    if window_id.lower() in RESERVED_IDS:
        raise InputError(
            f"{where}: {what} {window_id!r} is a name the run folder uses itself "
            f"({', '.join(sorted(RESERVED_IDS))}); rename it, e.g. w_{window_id.split('.')[0]}"
        )
    return window_id


def _parse_header(raw: dict[str, Any], origin: str, default_tz: str) -> tuple[Any, int, str]:
    """The object form's top level: the window list, embargo bars and time zone."""
    unknown = set(raw) - {"windows", "timezone", "embargo_bars", "description"}
    if unknown:
        raise InputError(
            f"{origin}: unknown top-level key(s) {sorted(unknown)}; allowed: windows, timezone, embargo_bars"
        )
    if "windows" not in raw:
        raise InputError(f"{origin}: missing 'windows' (a list of windows)")
    tz = raw.get("timezone", default_tz)
    if not isinstance(tz, str):
        raise InputError(f"{origin}: 'timezone' must be a string like \"America/New_York\"")
    try:
        pd.Timestamp("2020-01-01", tz=tz)
    except Exception as e:
        raise InputError(f"{origin}: 'timezone' {tz!r} is not a known time zone") from e
    embargo = raw.get("embargo_bars", 0)
    if isinstance(embargo, bool) or not isinstance(embargo, int) or embargo < 0:
        raise InputError(f"{origin}: 'embargo_bars' must be a non-negative integer, got {embargo!r}")
    return raw["windows"], embargo, tz


def _parse_item(item: Any, where: str, default_id: str, tz: str) -> WindowSpec:
    """One window object → a spec (fields, id and order checked)."""
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in item]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    extra = set(item) - set(FIELDS) - {"id"} - RESOLVED_INFO
    if extra:
        raise InputError(f"{where}: unknown field(s) {sorted(extra)}; allowed: id, {', '.join(FIELDS)}")
    wid = item.get("id", default_id)
    if not isinstance(wid, str):
        raise InputError(f"{where}.id: expected a string, got {wid!r}")
    check_id(wid, f"{where}.id")
    ts = {f: _parse_time(item[f], f"{where}.{f}", tz, end=f.endswith("_end")) for f in FIELDS}
    if ts["train_end"] <= ts["train_start"]:
        raise InputError(f"{where}: train_end {item['train_end']} is not after train_start {item['train_start']}")
    if ts["test_end"] <= ts["test_start"]:
        raise InputError(f"{where}: test_end {item['test_end']} is not after test_start {item['test_start']}")
    if ts["test_start"] < ts["train_end"]:
        raise InputError(
            f"{where}: test_start {item['test_start']} is not after train_end {item['train_end']}; "
            "the test span must start after training ends"
        )
    return WindowSpec(
        wid,
        ts["train_start"],
        ts["train_end"],
        ts["test_start"],
        ts["test_end"],
        {f: str(item[f]) for f in FIELDS},
        frozenset(f for f in FIELDS if _is_date_only(item[f])),
    )


def parse_windows(raw: Any, origin: str, default_tz: str = "America/New_York") -> tuple[list[WindowSpec], int, str]:
    """Validate a window document; returns specs, embargo bars and the time zone."""
    items, embargo, tz = _parse_header(raw, origin, default_tz) if isinstance(raw, dict) else (raw, 0, default_tz)
    if not isinstance(items, list) or not items:
        raise InputError(f"{origin}: expected a non-empty list of windows")
    specs: list[WindowSpec] = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        spec = _parse_item(item, f"{origin}: windows[{k}]", f"w{k + 1:02d}", tz)
        if spec.id in seen:
            raise InputError(f"{origin}: windows[{k}].id: duplicate window id {spec.id!r}; ids must be unique")
        seen.add(spec.id)
        specs.append(spec)
    ordered = sorted(specs, key=lambda s: s.test_start)
    for a, b in itertools.pairwise(ordered):
        if b.test_start < a.test_end:
            raise InputError(
                f"{origin}: the test spans of {a.id} and {b.id} overlap; out-of-sample spans must not overlap "
                "(the stitched out-of-sample curve would count bars twice)"
            )
    return specs, embargo, tz


def load_windows(path: str | Path, default_tz: str = "America/New_York") -> tuple[list[WindowSpec], int, str]:
    return parse_windows(load_json(path, "window file"), str(path), default_tz)


def auto_windows(
    session_dates: list[date],
    start: date,
    end: date,
    train_days: int,
    test_days: int,
    step_days: int | None,
    mode: str,
    tz: str,
) -> list[WindowSpec]:
    """Rolling (fixed-length train) or anchored (expanding train) windows, in sessions.

    ``session_dates`` are the names of the sessions that hold bars (``Bars.session_dates()``).
    A step shorter than the test span would make test spans overlap: refused (InputError).
    """
    if train_days < 1 or test_days < 1:
        raise InputError("--train-days and --test-days must be at least 1 (trading sessions)")
    step = step_days or test_days
    if step < 1:
        raise InputError("--step-days must be at least 1")
    if mode not in ("rolling", "anchored"):
        raise InputError(f"--mode {mode!r}: use rolling or anchored")
    days = [d for d in session_dates if start <= d <= end]
    if len(days) < train_days + test_days:
        raise DataError(
            f"automatic windows: {len(days)} sessions between {start} and {end}, fewer than "
            f"--train-days {train_days} + --test-days {test_days}"
        )
    specs = []
    first_test = train_days
    k = 0
    while first_test + test_days <= len(days):
        train_lo = 0 if mode == "anchored" else first_test - train_days
        text = {
            "train_start": days[train_lo].isoformat(),
            "train_end": days[first_test - 1].isoformat(),
            "test_start": days[first_test].isoformat(),
            "test_end": days[first_test + test_days - 1].isoformat(),
        }
        ts = {f: _parse_time(v, f, tz, end=f.endswith("_end")) for f, v in text.items()}
        k += 1
        specs.append(
            WindowSpec(
                f"w{k:02d}",
                ts["train_start"],
                ts["train_end"],
                ts["test_start"],
                ts["test_end"],
                text,
                frozenset(FIELDS),
            )
        )
        first_test += step
    if step < test_days and len(specs) > 1:
        a, b = specs[0], specs[1]
        raise InputError(
            f"automatic windows: --step-days {step} is shorter than --test-days {test_days}, so the test spans of "
            f"{a.id} ({a.text['test_start']} -> {a.text['test_end']}) and {b.id} ({b.text['test_start']} -> "
            f"{b.text['test_end']}) overlap (the stitched out-of-sample curve would count sessions twice); "
            f"use --step-days {test_days} or more (the default is --test-days)"
        )
    return specs


def trim_train(spec: WindowSpec, timestamps: np.ndarray, embargo: int) -> WindowSpec:
    """End the train span ``embargo`` bars before the test span's first bar (the test span stays put)."""
    test_idx = int(np.searchsorted(timestamps, spec.test_start.as_unit("ns").value))
    cut = test_idx - embargo
    if cut <= 0:
        raise DataError(f"window {spec.id}: the embargo of {embargo} bars leaves no train bars")
    new_end = pd.Timestamp(int(timestamps[cut]), tz="UTC").tz_convert(spec.train_end.tz)
    if new_end >= spec.train_end:
        return spec
    return replace(spec, train_end=new_end, date_only=spec.date_only - {"train_end"})


def _session_names(timestamps: np.ndarray, session_id: np.ndarray, tz: Any) -> np.ndarray:
    """Without the bars' own session names: each session is named by the local date of its last bar."""
    starts = np.flatnonzero(np.r_[True, session_id[1:] != session_id[:-1]])
    ends = np.r_[starts[1:], len(timestamps)] - 1
    last = pd.DatetimeIndex(timestamps[ends].astype("datetime64[ns]"), tz="UTC").tz_convert(tz)
    names = last.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
    return np.repeat(names, np.diff(np.r_[starts, len(timestamps)]))


def _day(spec: WindowSpec, name: str) -> np.datetime64:
    """The session a date-only field names."""
    return np.datetime64(spec.text[name].strip(), "D")


@dataclass(frozen=True)
class _Data:
    """What resolution needs to know about the bars."""

    timestamps: np.ndarray
    session_id: np.ndarray
    names: np.ndarray  # per bar, datetime64[D]
    bars: Any  # backend.data.loader.Bars or None

    def missing(self, spec: WindowSpec, name: str) -> list[str]:
        """Calendar sessions inside the window's field ``name`` that lie before the first / after the last bar."""
        first_name, last_name = self.names[0], self.names[-1]
        ts = getattr(spec, name)
        start = name.endswith("_start")
        if name in spec.date_only:
            day = _day(spec, name)
            lo, hi = (day, first_name - 1) if start else (last_name + 1, day)
        else:
            local = ts if start else ts - pd.Timedelta(1, "ns")
            day = np.datetime64(local.tz_localize(None).date(), "D")
            # on a 24/x calendar an instant after the cut belongs to the next day's session
            reach = day + 1 if self.bars is not None else day
            lo, hi = (day, first_name - 1) if start else (last_name + 1, reach)
        if hi < lo:
            return []
        if self.bars is None:  # no calendar at hand: weekdays stand for sessions
            days = np.arange(lo, hi + 1, dtype="datetime64[D]")
            days = days[np.is_busday(days)]
            return [str(d) for d in days]
        from backend.core import calendars

        b = self.bars
        table = calendars.session_table(
            b.calendar,
            pd.Timestamp(str(lo), tz="UTC") - pd.Timedelta(days=1),
            pd.Timestamp(str(hi), tz="UTC") + pd.Timedelta(days=2),
            b.session_cut,
            b.timezone,
        )
        sel = (table.label >= lo) & (table.label <= hi)
        if name not in spec.date_only:  # a datetime: only sessions the instant reaches into
            value = ts.as_unit("ns").value
            first_open, last_close = int(self.bars.session_open[0]), int(self.bars.session_close[-1])
            sel &= (table.close > value) & (table.open < first_open) if start else (table.open < value)
            if not start:
                sel &= table.open >= last_close
        return [str(d) for d in table.label[sel]]


def _outside_error(origin: str, spec: WindowSpec, name: str, missing: list[str], data: _Data) -> DataError:
    cal = f"{data.bars.calendar} " if data.bars is not None else ""
    side = "before the first" if name.endswith("_start") else "after the last"
    days = missing[0] if len(missing) == 1 else f"{missing[0]} … {missing[-1]}"
    return DataError(
        f"{origin}: window {spec.id}: {name} {spec.text[name]} lies outside the data (sessions {data.names[0]} -> "
        f"{data.names[-1]}): {len(missing)} {cal}session(s) it asks for ({days}) lie {side} bar; move the window "
        "inside the data or load bars that cover it"
    )


def resolve(
    specs: list[WindowSpec],
    timestamps: np.ndarray,
    session_id: np.ndarray,
    embargo_bars: int,
    origin: str,
    *,
    bars: Any = None,
) -> list[Window]:
    """Map specs to bar ranges and check them against the data.

    Pass ``bars`` (``backend.data.loader.Bars``, aligned with ``timestamps``) so that dates
    resolve by session name and "outside the data" is judged with the bars' calendar; without
    it, sessions are named by the local date of their last bar and weekdays stand for sessions.
    Errors: a window reaching outside the data, a span without bars, a span whose sessions all
    have fewer than 2 bars (DataError, exit 3); an embargo that does not fit (InputError, exit 2).
    """
    if (
        bars is not None
        and getattr(bars, "session_date", None) is not None
        and len(bars.session_date) == len(timestamps)
    ):
        names = np.asarray(bars.session_date, dtype="datetime64[D]")
    else:
        bars = None
        tz = specs[0].train_start.tz if specs else "UTC"
        names = _session_names(timestamps, session_id, tz)
    data = _Data(timestamps, session_id, names, bars)
    out = []
    for spec in specs:
        for name in FIELDS:
            missing = data.missing(spec, name)
            if missing:
                raise _outside_error(origin, spec, name, missing, data)
        idx = {}
        for name in FIELDS:
            ts = getattr(spec, name)
            if name in spec.date_only:
                side = "left" if name.endswith("_start") else "right"
                idx[name] = int(np.searchsorted(names, _day(spec, name), side=side))
            else:
                idx[name] = int(np.searchsorted(timestamps, ts.as_unit("ns").value, side="left"))
        spans = {"train": (idx["train_start"], idx["train_end"]), "test": (idx["test_start"], idx["test_end"])}
        for span, (lo, hi) in spans.items():
            given = f"{spec.text[span + '_start']} -> {spec.text[span + '_end']}"
            where = f"{origin}: window {spec.id}: the {span} span {given}"
            if hi <= lo:
                raise DataError(
                    f"{where} holds no bars (data cover sessions {names[0]} -> {names[-1]}); move the window onto "
                    "sessions with bars"
                )
            per_session = np.bincount(session_id[lo:hi] - session_id[lo])
            if per_session.max() < 2:
                raise DataError(
                    f"{where} ({span}_start..{span}_end) holds {hi - lo} bar(s) in {int((per_session > 0).sum())} "
                    "session(s), none with 2 bars or more, so no episode can be played on it; widen the span or use "
                    "a finer interval"
                )
        gap = idx["test_start"] - idx["train_end"]
        if gap < 0:
            raise InputError(
                f"{origin}: window {spec.id}: the test span starts inside the train span's last session "
                f"({spec.text['train_end']} / {spec.text['test_start']}); start the test span after training ends"
            )
        if gap < embargo_bars:
            raise InputError(
                f"{origin}: window {spec.id}: only {gap} bars between train end and test start, fewer than "
                f"embargo_bars {embargo_bars}; end training earlier or lower embargo_bars"
            )
        n_sessions = {k: len(np.unique(session_id[lo:hi])) for k, (lo, hi) in spans.items()}
        out.append(
            Window(
                spec.id,
                idx["train_start"],
                idx["train_end"],
                idx["test_start"],
                idx["test_end"],
                n_sessions["train"],
                n_sessions["test"],
                spec,
            )
        )
    return out


def hint_range(specs: list[WindowSpec]) -> tuple[date, date]:
    lo = min(s.train_start for s in specs).date()
    hi = max(s.test_end - pd.Timedelta(1, "ns") for s in specs).date()
    return lo, hi


def windows_document(windows: list[Window], timestamps: np.ndarray, tz: str, embargo: int) -> dict[str, Any]:
    return {"timezone": tz, "embargo_bars": embargo, "windows": [w.describe(timestamps, tz) for w in windows]}


__all__ = [
    "Window",
    "WindowSpec",
    "asdict",
    "auto_windows",
    "load_windows",
    "parse_windows",
    "resolve",
    "trim_train",
]
