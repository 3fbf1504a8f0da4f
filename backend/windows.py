"""Train/test windows: window files (both formats), automatic windows, resolution to bars.

A window file is either a bare list (the earlier harness's format) or an object with
``windows`` (and optionally ``timezone``, ``embargo_bars``). Dates are ISO dates or
datetimes in the exchange time zone; a date-only end is inclusive (the whole session).
Resolution turns dates into bar index ranges [start, end) and checks them against the
data before anything trains.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import DataError, InputError
from backend.jsonio import load_json

FIELDS = ("train_start", "train_end", "test_start", "test_end")
# fields of windows.resolved.json that are informational (the file can be read back as input)
RESOLVED_INFO = {"train_bars", "test_bars", "train_sessions", "test_sessions", "as_given"}
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class WindowSpec:
    """A window as written: timestamps in the exchange zone, ends exclusive."""

    id: str
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # exclusive
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # exclusive
    text: dict[str, str]  # the values as given, for reports


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
    """A command-line date (YYYY-MM-DD) or None."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise InputError(f"{flag} {text!r}: expected a date like 2019-01-02") from e


def _is_date_only(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()))


def _parse_time(value: Any, where: str, tz: str, end: bool) -> pd.Timestamp:
    if isinstance(value, bool) or not isinstance(value, str):
        raise InputError(f'{where}: expected an ISO date string like "2019-01-02", got {value!r}')
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: {value!r} is not a valid date or datetime ({e}); use YYYY-MM-DD") from e
    if ts is pd.NaT:
        raise InputError(f"{where}: {value!r} is not a valid date")
    ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    if end and _is_date_only(value):
        ts = ts + pd.Timedelta(days=1)  # a date-only end includes that whole day
    elif end:
        ts = ts + pd.Timedelta(1, "ns")  # an explicit end time is inclusive
    return ts


def check_id(window_id: str, where: str) -> str:
    if not SAFE_ID.match(window_id) or window_id in (".", ".."):
        raise InputError(
            f"{where}: window id {window_id!r} is not a safe folder name (letters, digits, '_', '-', '.'; "
            "no '/', no leading '.'); rename it"
        )
    return window_id


def parse_windows(raw: Any, origin: str, default_tz: str = "America/New_York") -> tuple[list[WindowSpec], int, str]:
    """Validate a window document; returns specs, embargo bars and the time zone."""
    embargo, tz = 0, default_tz
    if isinstance(raw, dict):
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
        items = raw["windows"]
    else:
        items = raw
    if not isinstance(items, list) or not items:
        raise InputError(f"{origin}: expected a non-empty list of windows")
    specs: list[WindowSpec] = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        where = f"{origin}: windows[{k}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object with {', '.join(FIELDS)}")
        missing = [f for f in FIELDS if f not in item]
        if missing:
            raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
        extra = set(item) - set(FIELDS) - {"id"} - RESOLVED_INFO
        if extra:
            raise InputError(f"{where}: unknown field(s) {sorted(extra)}; allowed: id, {', '.join(FIELDS)}")
        wid = item.get("id", f"w{k + 1:02d}")
        if not isinstance(wid, str):
            raise InputError(f"{where}.id: expected a string, got {wid!r}")
        check_id(wid, f"{where}.id")
        if wid in seen:
            raise InputError(f"{where}.id: duplicate window id {wid!r}; ids must be unique")
        seen.add(wid)
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
        specs.append(
            WindowSpec(
                wid,
                ts["train_start"],
                ts["train_end"],
                ts["test_start"],
                ts["test_end"],
                {f: str(item[f]) for f in FIELDS},
            )
        )
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
    """Rolling (fixed-length train) or anchored (expanding train) windows, in sessions."""
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
            WindowSpec(f"w{k:02d}", ts["train_start"], ts["train_end"], ts["test_start"], ts["test_end"], text)
        )
        first_test += step
    return specs


def resolve(
    specs: list[WindowSpec], timestamps: np.ndarray, session_id: np.ndarray, embargo_bars: int, origin: str
) -> list[Window]:
    """Map specs to bar ranges; every span must hold bars, and test must follow train + embargo."""
    first = pd.Timestamp(int(timestamps[0]), tz="UTC")
    last = pd.Timestamp(int(timestamps[-1]), tz="UTC")
    out = []
    for spec in specs:
        idx = {}
        for name in FIELDS:
            ts = getattr(spec, name)
            idx[name] = int(np.searchsorted(timestamps, ts.as_unit("ns").value, side="left"))
        spans = {"train": (idx["train_start"], idx["train_end"]), "test": (idx["test_start"], idx["test_end"])}
        for span, (lo, hi) in spans.items():
            if hi <= lo:
                tz = spec.train_start.tz
                raise DataError(
                    f"{origin}: window {spec.id}: the {span} span {spec.text[span + '_start']} -> "
                    f"{spec.text[span + '_end']} holds no bars (data cover {first.tz_convert(tz).date()} "
                    f"-> {last.tz_convert(tz).date()}); move the window inside the data"
                )
        gap = idx["test_start"] - idx["train_end"]
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


__all__ = ["Window", "WindowSpec", "asdict", "auto_windows", "load_windows", "parse_windows", "resolve"]
