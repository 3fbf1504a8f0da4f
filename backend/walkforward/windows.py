"""Train/test windows: the window file format, and the public names of the walk-forward layer.

A window file is either a bare list (the earlier harness's format) or an object with
``windows`` (and optionally ``timezone``, ``embargo_bars``). Dates are ISO dates
(``2019-01-25``) or ISO datetimes (``2019-01-25T15:55``, ``2019-01-25 15:55:00-05:00``) in the
exchange time zone; anything else (``01/25/2019``, ``today``, ``2019-02``) is an error quoting
the value (the dates and the two window types: ``backend/walkforward/spec.py``). Window ids
become folder names: they must be safe names and must not collide with the run folder's own
entries (``tensorboard``, ``replay``, its files, anything starting with '.'). Test spans must not
overlap.

Automatic windows live in ``backend/walkforward/auto.py``, the resolution of specs against the
bars in ``backend/walkforward/resolution.py``; their public names are importable from here.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from backend.core.errors import InputError
from backend.core.jsonio import MAX_CONFIG_BYTES, MAX_KEYS, load_json
from backend.walkforward.auto import auto_windows
from backend.walkforward.resolution import resolve, trim_train
from backend.walkforward.spec import (
    FIELDS,
    ISO_DATE,
    ISO_DATETIME,
    Window,
    WindowSpec,
    hint_range,
    parse_day,
    spec_from_text,
    windows_document,
)

# fields of windows.resolved.json that are informational (the file can be read back as input)
MAX_WINDOWS = 10_000  # a window file with more is refused before parsing its spans
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


def _check_order(spec: WindowSpec, where: str) -> None:
    """Each span ends after it starts; the test span starts after training ends."""
    text = spec.text
    if spec.train_end <= spec.train_start:
        raise InputError(f"{where}: train_end {text['train_end']} is not after train_start {text['train_start']}")
    if spec.test_end <= spec.test_start:
        raise InputError(f"{where}: test_end {text['test_end']} is not after test_start {text['test_start']}")
    if spec.test_start < spec.train_end:
        raise InputError(
            f"{where}: test_start {text['test_start']} is not after train_end {text['train_end']}; "
            "the test span must start after training ends"
        )


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
    spec = spec_from_text(wid, item, tz, f"{where}.")
    _check_order(spec, where)
    return spec


def _check_no_overlap(specs: list[WindowSpec], origin: str) -> None:
    ordered = sorted(specs, key=lambda s: s.test_start)
    for a, b in itertools.pairwise(ordered):
        if b.test_start < a.test_end:
            raise InputError(
                f"{origin}: the test spans of {a.id} and {b.id} overlap; out-of-sample spans must not overlap "
                "(the stitched out-of-sample curve would count bars twice)"
            )


def parse_windows(raw: Any, origin: str, default_tz: str = "America/New_York") -> tuple[list[WindowSpec], int, str]:
    """Validate a window document; returns specs, embargo bars and the time zone."""
    items, embargo, tz = _parse_header(raw, origin, default_tz) if isinstance(raw, dict) else (raw, 0, default_tz)
    if not isinstance(items, list) or not items:
        raise InputError(f"{origin}: expected a non-empty list of windows")
    if len(items) > MAX_WINDOWS:
        raise InputError(
            f"{origin}: {len(items)} windows, over the cap of {MAX_WINDOWS}; split the study into several runs"
        )
    specs: list[WindowSpec] = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        spec = _parse_item(item, f"{origin}: windows[{k}]", f"w{k + 1:02d}", tz)
        if spec.id in seen:
            raise InputError(f"{origin}: windows[{k}].id: duplicate window id {spec.id!r}; ids must be unique")
        seen.add(spec.id)
        specs.append(spec)
    _check_no_overlap(specs, origin)
    return specs, embargo, tz


def load_windows(path: str | Path, default_tz: str = "America/New_York") -> tuple[list[WindowSpec], int, str]:
    raw = load_json(path, "window file", max_keys=MAX_KEYS, max_bytes=MAX_CONFIG_BYTES)
    return parse_windows(raw, str(path), default_tz)


__all__ = [
    "FIELDS",
    "ISO_DATE",
    "ISO_DATETIME",
    "RESERVED_IDS",
    "RESOLVED_INFO",
    "SAFE_ID",
    "Window",
    "WindowSpec",
    "asdict",
    "auto_windows",
    "check_id",
    "hint_range",
    "load_windows",
    "parse_day",
    "parse_windows",
    "resolve",
    "trim_train",
    "windows_document",
]
