"""`wf tune`'s nested walk-forward: validation sessions carved from the end of each train span, and objectives."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from backend.core.errors import DataError, InputError
from backend.evaluation import metrics
from backend.evaluation.statistics import moments
from backend.evaluation.trials import decode_returns, encode_returns  # noqa: F401  (re-exported)
from backend.features import warmup_bars
from backend.run.driver import Setup
from backend.walkforward.windows import Window, WindowSpec

OBJECTIVES: dict[str, str] = {
    "sharpe": "annualised Sharpe ratio of the stitched validation returns (default)",
    "sortino": "annualised Sortino ratio of the stitched validation returns",
    "total_return": "compounded return of the stitched validation returns",
    "return_over_drawdown": "total return / |max drawdown| of the stitched validation curve (Calmar-like)",
    "mean_window_sharpe": "mean of the windows' own annualised validation Sharpe ratios",
}

# ------------------------------------------------------------------------------------------ validation windows


def validation_windows(s: Setup, validation_days: int | None) -> list[Window]:
    """Inner windows: each outer train span minus its last validation sessions, scored on those sessions.

    Bar indices stay inside the outer train span: ``train_start <= inner train < validation <=
    outer train_end <= test_start``; the window's embargo bars lie between the inner train span and
    the validation sessions. Every validation bar is scored once: by default (a fifth of the train
    sessions, at least one) a window's validation sessions start after those of the window whose
    train span ends before its own; an explicit ``validation_days`` that makes them overlap is an
    InputError (exit 2). A train span too short to split is a DataError (exit 3).
    """
    if validation_days is not None and validation_days < 1:
        raise InputError(f"--validation-days must be at least 1, got {validation_days}")
    inner: dict[str, Window] = {}
    not_before = 0
    for w in sorted(s.windows, key=lambda w: (w.train_end, w.train_start)):
        cut = _split(w, s, validation_days, not_before if validation_days is None else 0)
        inner[w.id] = cut
        not_before = max(not_before, cut.test_end)
    for a, b in itertools.pairwise(sorted(inner.values(), key=lambda w: w.test_start)):
        if b.test_start < a.test_end:
            raise InputError(
                f"--validation-days {validation_days} makes the validation sessions of {a.id} and {b.id} overlap "
                "(each bar must be scored once): their train spans end fewer sessions apart; lower it, or leave it "
                "out (the default never overlaps)"
            )
    return [inner[w.id] for w in s.windows]


def _playable(session_id: np.ndarray, lo: int, hi: int) -> bool:
    return hi > lo and int(np.bincount(session_id[lo:hi] - session_id[lo]).max()) >= 2


def _validation_start(w: Window, s: Setup, days: int | None, not_before: int) -> tuple[int, int, int]:
    """First validation bar, validation sessions and train sessions of a window's split."""
    span = s.market.session_id[w.train_start : w.train_end]
    starts = w.train_start + np.flatnonzero(np.r_[True, span[1:] != span[:-1]])  # first bar of each session
    n = len(starts)
    v = days if days is not None else max(1, n // 5)
    if v >= n:
        raise DataError(
            f"window {w.id}: its train span holds {n} session(s); holding out the last {v} for validation leaves "
            "none to train on; use a longer train span" + (f" or --validation-days {n - 1} or less" if n > 1 else "")
        )
    k = max(n - v, int(np.searchsorted(starts, not_before)))
    if k >= n:
        raise InputError(
            f"window {w.id}: its train span ends where an earlier window's validation sessions end, so it has no "
            "session of its own to validate on (each bar is scored once); give windows different train ends"
        )
    return int(starts[k]), n - k, k


def _split(w: Window, s: Setup, days: int | None, not_before: int = 0) -> Window:
    sid = s.market.session_id
    val_start, v, n_before = _validation_start(w, s, days, not_before)
    train_end = val_start - s.embargo
    if not _playable(sid, w.train_start, train_end):
        raise DataError(
            f"window {w.id}: {n_before} train session(s) before the validation sessions, less an embargo of "
            f"{s.embargo} bars, leave no session of 2 bars or more to train on; use a longer train span or fewer "
            "--validation-days"
        )
    if not _playable(sid, val_start, w.train_end):
        raise DataError(
            f"window {w.id}: its last {v} train session(s) hold no session of 2 bars or more to validate on; "
            "raise --validation-days"
        )
    assert w.train_start < train_end <= val_start < w.train_end <= w.test_start, "validation outside the train span"
    ts, tz = s.market.timestamps, s.timezone

    def stamp(i: int) -> Any:
        return pd.Timestamp(int(ts[i]), tz="UTC").tz_convert(tz)

    text = {
        "train_start": stamp(w.train_start).isoformat(),
        "train_end": stamp(train_end - 1).isoformat(),
        "test_start": stamp(val_start).isoformat(),
        "test_end": stamp(w.train_end - 1).isoformat(),
    }
    spec = WindowSpec(w.id, stamp(w.train_start), stamp(train_end), stamp(val_start), stamp(w.train_end), text)
    n_train = len(np.unique(sid[w.train_start : train_end]))
    return Window(w.id, w.train_start, train_end, val_start, w.train_end, n_train, v, spec)


def read_behind(s: Setup) -> int:
    """Bars a span's episode reads before its first bar: the observation look-back (``env.lookback`` bars including
    the current one) plus the longest feature warm-up (:func:`backend.features.warmup_bars`; a SESSION feature reads
    back to its session's start, counted with the longest session present)."""
    sid = np.asarray(s.market.session_id)
    session_bars = int(np.unique(sid, return_counts=True)[1].max()) if len(sid) else 0
    return s.cfg.env.lookback - 1 + warmup_bars(list(s.cfg.env.features), session_bars)


def read_range(s: Setup, w: Window) -> tuple[int, int]:
    """The bars [start, end) a trial's inner window may read: its train span, the embargo gap, its validation span,
    and the look-back and warm-up behind the train span's first bar (a superset: the gap is counted whole)."""
    return max(0, w.train_start - read_behind(s)), w.test_end


def seen_test_bars(s: Setup, inner: list[Window]) -> dict[str, int]:
    """Test bars of each outer window that some trial may read: its train and validation spans, the embargo between
    them and the look-back / feature warm-up behind them (:func:`read_range`); empty when no trial reads a test bar."""
    used = np.zeros(len(s.market.timestamps), dtype=bool)
    for w in inner:
        lo, hi = read_range(s, w)
        used[lo:hi] = True
    seen = {w.id: int(used[w.test_start : w.test_end].sum()) for w in s.windows}
    return {k: v for k, v in seen.items() if v}


def validation_detail(inner: list[Window], embargo: int) -> str:
    parts = [f"{w.id}: {w.train_sessions} train + {w.test_sessions} validation sessions" for w in inner[:3]]
    more = f", … ({len(inner)} windows)" if len(inner) > 3 else ""
    gap = f", embargo {embargo} bars" if embargo else ""
    return f"trials validate on the last sessions of each train span ({'; '.join(parts)}{more}{gap})"


def validation_table(s: Setup, inner: list[Window]) -> str:
    """The dry-run view: what a trial trains and validates on, and the test span only the final run sees."""
    lines = [f"{'id':<8}{'trial train':<25}{'sess':>5}   {'validation':<25}{'sess':>5}   {'test (final run only)':<25}"]
    for outer, w in zip(s.windows, inner, strict=True):
        d, o = w.describe(s.market.timestamps, s.timezone), outer.describe(s.market.timestamps, s.timezone)
        lines.append(
            f"{w.id:<8}{d['train_start'][:10] + ' -> ' + d['train_end'][:10]:<25}{w.train_sessions:>5}   "
            f"{d['test_start'][:10] + ' -> ' + d['test_end'][:10]:<25}{w.test_sessions:>5}   "
            f"{o['test_start'][:10] + ' -> ' + o['test_end'][:10]:<25}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ objectives


def _ratio(value: float, r: np.ndarray) -> float:
    """An undefined ratio (no risk taken): 0 without gains (a flat agent), +inf with gains and no risk."""
    if math.isfinite(value):
        return value
    return math.inf if len(r) > 1 and float(np.sum(r)) > 0 else 0.0


def objective_value(name: str, parts: list[np.ndarray], periods_per_year: float) -> float:
    """A trial's score from its windows' validation returns (time order, each bar once); see OBJECTIVES."""
    if name == "mean_window_sharpe":
        return float(np.mean([_ratio(metrics.sharpe(p, periods_per_year), p) for p in parts]))
    r = np.concatenate(parts) if parts else np.zeros(0)
    if name == "sharpe":
        return _ratio(metrics.sharpe(r, periods_per_year), r)
    if name == "sortino":
        return _ratio(metrics.sortino(r, periods_per_year), r)
    if name == "total_return":
        return metrics.total_return(r)
    if name == "return_over_drawdown":
        mdd, _ = metrics.max_drawdown(r)
        total = metrics.total_return(r)
        return total / -mdd if mdd < 0 else _ratio(math.nan, r)
    raise InputError(f"--objective {name!r}: use one of {', '.join(OBJECTIVES)}")


def per_bar_sharpe(r: np.ndarray) -> float:
    """Per-bar Sharpe (the DSR's unit); a flat series scores 0."""
    sr = moments(r)[0]
    return 0.0 if math.isnan(sr) else sr
