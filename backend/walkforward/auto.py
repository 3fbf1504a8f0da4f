"""Automatic windows: rolling (fixed-length train) or anchored (expanding train) windows counted in sessions.

The sessions are those that hold bars (``Bars.session_dates()``); every field is a session's date, so
the windows resolve by session name like date-only window files. A step shorter than the test span
would make test spans overlap: refused (InputError, exit 2) naming the first two windows.
"""

from __future__ import annotations

from datetime import date

from backend.core.errors import DataError, InputError
from backend.walkforward.spec import WindowSpec, spec_from_text


def _check_arguments(*, train_days: int, test_days: int, step_days: int | None, mode: str) -> int:
    """The step in sessions, after checking the command-line sizes and mode."""
    if train_days < 1 or test_days < 1:
        raise InputError("--train-days and --test-days must be at least 1 (trading sessions)")
    step = step_days or test_days
    if step < 1:
        raise InputError("--step-days must be at least 1")
    if mode not in ("rolling", "anchored"):
        raise InputError(f"--mode {mode!r}: use rolling or anchored")
    return step


def _check_overlap(specs: list[WindowSpec], step: int, test_days: int) -> None:
    if step < test_days and len(specs) > 1:
        a, b = specs[0], specs[1]
        raise InputError(
            f"automatic windows: --step-days {step} is shorter than --test-days {test_days}, so the test spans of "
            f"{a.id} ({a.text['test_start']} -> {a.text['test_end']}) and {b.id} ({b.text['test_start']} -> "
            f"{b.text['test_end']}) overlap (the stitched out-of-sample curve would count sessions twice); "
            f"use --step-days {test_days} or more (the default is --test-days)"
        )


def auto_windows(
    session_dates: list[date],
    *,
    start: date,
    end: date,
    train_days: int,
    test_days: int,
    step_days: int | None,
    mode: str,
    tz: str,
) -> list[WindowSpec]:
    """Rolling (fixed-length train) or anchored (expanding train) windows, in sessions.

    ``session_dates`` are the names of the sessions that hold bars (``Bars.session_dates()``). The rest is
    keyword-only: two dates and three session counts that must not be swappable by position.
    A step shorter than the test span would make test spans overlap: refused (InputError).
    """
    step = _check_arguments(train_days=train_days, test_days=test_days, step_days=step_days, mode=mode)
    days = [d for d in session_dates if start <= d <= end]
    if len(days) < train_days + test_days:
        raise DataError(
            f"automatic windows: {len(days)} sessions between {start} and {end}, fewer than "
            f"--train-days {train_days} + --test-days {test_days}"
        )
    specs = []
    for k, first_test in enumerate(range(train_days, len(days) - test_days + 1, step), start=1):
        train_lo = 0 if mode == "anchored" else first_test - train_days
        text = {
            "train_start": days[train_lo].isoformat(),
            "train_end": days[first_test - 1].isoformat(),
            "test_start": days[first_test].isoformat(),
            "test_end": days[first_test + test_days - 1].isoformat(),
        }
        specs.append(spec_from_text(f"w{k:02d}", text, tz))
    _check_overlap(specs, step, test_days)
    return specs
