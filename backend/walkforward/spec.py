"""Windows as written and as resolved: the two window types and the ISO dates they are made of.

A date names a session: a date-only start is the open of the session of that name, a date-only end
is inclusive (the whole session) — on 24/x calendars cut at 17:00 the session named Monday starts on
Sunday evening. An explicit datetime end is inclusive too. Anything but ISO (``01/25/2019``,
``today``, ``2019-02``) is an InputError quoting the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from backend.core.errors import InputError

FIELDS = ("train_start", "train_end", "test_start", "test_end")
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

    def day(self, name: str) -> np.datetime64:
        """The session a date-only field names."""
        return np.datetime64(self.text[name].strip(), "D")


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


def is_date_only(text: str) -> bool:
    return bool(ISO_DATE.match(text.strip()))


def parse_time(value: Any, where: str, tz: str, end: bool) -> pd.Timestamp:
    """A window field: an ISO date (local midnight; an end date includes that day) or an ISO datetime."""
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
    if is_date_only(text):  # local midnight (calendar days: DST days have 23 or 25 hours)
        day = ts + pd.Timedelta(days=1) if end else ts  # a date-only end includes that whole day
        return day.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    if end:
        ts = ts + pd.Timedelta(1, "ns")  # an explicit end time is inclusive
    return ts


def spec_from_text(wid: str, text: dict[str, Any], tz: str, where: str = "") -> WindowSpec:
    """A spec from the four fields as written (present); ``where`` prefixes each field's name in errors."""
    ts = {f: parse_time(text[f], f"{where}{f}", tz, end=f.endswith("_end")) for f in FIELDS}
    return WindowSpec(
        wid,
        ts["train_start"],
        ts["train_end"],
        ts["test_start"],
        ts["test_end"],
        {f: str(text[f]) for f in FIELDS},
        frozenset(f for f in FIELDS if is_date_only(text[f])),
    )


def hint_range(specs: list[WindowSpec]) -> tuple[date, date]:
    lo = min(s.train_start for s in specs).date()
    hi = max(s.test_end - pd.Timedelta(1, "ns") for s in specs).date()
    return lo, hi


def windows_document(windows: list[Window], timestamps: np.ndarray, tz: str, embargo: int) -> dict[str, Any]:
    return {"timezone": tz, "embargo_bars": embargo, "windows": [w.describe(timestamps, tz) for w in windows]}
