"""Resolution: window specs → bar index ranges [start, end), checked against the data before anything trains.

A window reaching outside the data (a session of the calendar inside the window holds no bars because it
lies before the first or after the last bar) is a DataError (exit 3) naming the window, the field and the
data's range; so is a span that holds no bars, or one whose sessions all have fewer than 2 bars (no episode
can be played on it). A test span starting inside training, or an embargo that does not fit, is an
InputError (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from backend.core import calendars
from backend.core.errors import DataError, InputError
from backend.walkforward.spec import FIELDS, Window, WindowSpec


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


@dataclass(frozen=True)
class _Data:
    """What resolution needs to know about the bars."""

    timestamps: np.ndarray
    session_id: np.ndarray
    names: np.ndarray  # per bar, datetime64[D]
    bars: Any  # backend.data.loader.Bars or None

    @classmethod
    def of(cls, specs: list[WindowSpec], timestamps: np.ndarray, session_id: np.ndarray, bars: Any) -> _Data:
        """Session names from ``bars`` when they are aligned with ``timestamps``, else from the last bar's date."""
        if (
            bars is not None
            and getattr(bars, "session_date", None) is not None
            and len(bars.session_date) == len(timestamps)
        ):
            return cls(timestamps, session_id, np.asarray(bars.session_date, dtype="datetime64[D]"), bars)
        tz = specs[0].train_start.tz if specs else "UTC"
        return cls(timestamps, session_id, _session_names(timestamps, session_id, tz), None)

    def _asked_days(self, spec: WindowSpec, name: str) -> tuple[np.datetime64, np.datetime64]:
        """The session names [lo, hi] the field ``name`` asks for beyond the data's first / last session."""
        first_name, last_name = self.names[0], self.names[-1]
        start = name.endswith("_start")
        if name in spec.date_only:
            day = spec.day(name)
            return (day, first_name - 1) if start else (last_name + 1, day)
        ts = getattr(spec, name)
        local = ts if start else ts - pd.Timedelta(1, "ns")
        day = np.datetime64(local.tz_localize(None).date(), "D")
        # on a 24/x calendar an instant after the cut belongs to the next day's session
        reach = day + 1 if self.bars is not None else day
        return (day, first_name - 1) if start else (last_name + 1, reach)

    def _calendar_sessions(self, spec: WindowSpec, name: str, lo: np.datetime64, hi: np.datetime64) -> list[str]:
        """The bars' calendar's sessions in [lo, hi] that the field reaches into."""
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
            value = getattr(spec, name).as_unit("ns").value
            first_open, last_close = int(b.session_open[0]), int(b.session_close[-1])
            if name.endswith("_start"):
                sel &= (table.close > value) & (table.open < first_open)
            else:
                sel &= (table.open < value) & (table.open >= last_close)
        return [str(d) for d in table.label[sel]]

    def missing(self, spec: WindowSpec, name: str) -> list[str]:
        """Calendar sessions inside the window's field ``name`` that lie before the first / after the last bar."""
        lo, hi = self._asked_days(spec, name)
        if hi < lo:
            return []
        if self.bars is None:  # no calendar at hand: weekdays stand for sessions
            days = np.arange(lo, hi + 1, dtype="datetime64[D]")
            days = days[np.is_busday(days)]
            return [str(d) for d in days]
        return self._calendar_sessions(spec, name, lo, hi)

    def index(self, spec: WindowSpec) -> dict[str, int]:
        """Each field's bar index: date-only fields by session name, datetimes by timestamp."""
        idx = {}
        for name in FIELDS:
            if name in spec.date_only:
                side: Literal["left", "right"] = "left" if name.endswith("_start") else "right"
                idx[name] = int(np.searchsorted(self.names, spec.day(name), side=side))
            else:
                idx[name] = int(np.searchsorted(self.timestamps, getattr(spec, name).as_unit("ns").value, side="left"))
        return idx


def _outside_error(origin: str, spec: WindowSpec, name: str, missing: list[str], data: _Data) -> DataError:
    cal = f"{data.bars.calendar} " if data.bars is not None else ""
    side = "before the first" if name.endswith("_start") else "after the last"
    days = missing[0] if len(missing) == 1 else f"{missing[0]} … {missing[-1]}"
    return DataError(
        f"{origin}: window {spec.id}: {name} {spec.text[name]} lies outside the data (sessions {data.names[0]} -> "
        f"{data.names[-1]}): {len(missing)} {cal}session(s) it asks for ({days}) lie {side} bar; move the window "
        "inside the data or load bars that cover it"
    )


def _check_inside(origin: str, spec: WindowSpec, data: _Data) -> None:
    for name in FIELDS:
        missing = data.missing(spec, name)
        if missing:
            raise _outside_error(origin, spec, name, missing, data)


def _check_span(where: str, span: str, lo: int, hi: int, data: _Data) -> None:
    """A span holds bars, and at least one of its sessions holds 2 bars or more."""
    if hi <= lo:
        raise DataError(
            f"{where} holds no bars (data cover sessions {data.names[0]} -> {data.names[-1]}); move the window onto "
            "sessions with bars"
        )
    per_session = np.bincount(data.session_id[lo:hi] - data.session_id[lo])
    if per_session.max() < 2:
        raise DataError(
            f"{where} ({span}_start..{span}_end) holds {hi - lo} bar(s) in {int((per_session > 0).sum())} "
            "session(s), none with 2 bars or more, so no episode can be played on it; widen the span or use "
            "a finer interval"
        )


def _check_gap(origin: str, spec: WindowSpec, idx: dict[str, int], embargo_bars: int) -> None:
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


def _resolve_one(spec: WindowSpec, data: _Data, embargo_bars: int, origin: str) -> Window:
    _check_inside(origin, spec, data)
    idx = data.index(spec)
    spans = {"train": (idx["train_start"], idx["train_end"]), "test": (idx["test_start"], idx["test_end"])}
    for span, (lo, hi) in spans.items():
        given = f"{spec.text[span + '_start']} -> {spec.text[span + '_end']}"
        _check_span(f"{origin}: window {spec.id}: the {span} span {given}", span, lo, hi, data)
    _check_gap(origin, spec, idx, embargo_bars)
    n_sessions = {k: len(np.unique(data.session_id[lo:hi])) for k, (lo, hi) in spans.items()}
    return Window(
        spec.id,
        idx["train_start"],
        idx["train_end"],
        idx["test_start"],
        idx["test_end"],
        n_sessions["train"],
        n_sessions["test"],
        spec,
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
    data = _Data.of(specs, timestamps, session_id, bars)
    return [_resolve_one(spec, data, embargo_bars, origin) for spec in specs]
