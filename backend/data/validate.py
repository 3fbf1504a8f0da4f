"""Bar validation with a report: errors for what cannot be trusted, counted repairs for the rest.

Errors (exit 3; every kind found is listed with its first offending timestamps, all in one
message): unsorted rows, duplicate timestamps, NaN/inf prices, non-positive prices,
high < low, negative volume, split-like jumps (a close-to-close move larger than
``data.max_jump``, the signature of an unadjusted split — supply split-adjusted bars or
raise ``data.max_jump``).

Repairs and notes, counted in the dry-run output and in the summary's ``data.report``:

* ``ohlc_widened_bars`` — open or close outside [low, high] (odd-lot prints in vendor data;
  the bundled sample has 194): high/low are widened to include them;
* ``bars_outside_session_dropped`` — bars outside the regular session (sessions.py);
* ``zero_volume_bars`` / ``missing_volume_bars`` — kept; missing volume counts as 0;
* ``gap_bars`` / ``sessions_with_gaps`` — bars missing inside sessions are counted, not
  filled: the env steps from the last bar before a gap to the first bar after it;
* ``single_bar_sessions`` — sessions with one bar cannot hold a trade; the env skips them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.core.errors import DataError

OHLC = ("open", "high", "low", "close")


def _first(index: pd.Index, mask: np.ndarray, n: int = 3) -> str:
    hits = index[mask][:n]
    more = int(mask.sum()) - len(hits)
    text = ", ".join(str(t) for t in hits)
    return text + (f" (+{more} more)" if more > 0 else "")


def check_bars(frame: pd.DataFrame, origin: str, max_jump: float | None = 0.25) -> tuple[pd.DataFrame, dict[str, int]]:
    """Raise :class:`DataError` listing every untrustworthy kind of bar; else return the repaired frame and counts.

    ``frame`` has a DatetimeIndex and lower-case OHLCV columns.
    """
    if frame.empty:
        raise DataError(f"{origin}: no bars; check the symbol, the date range and the file")
    idx = frame.index
    errors = _order_errors(idx)
    prices = frame.loc[:, list(OHLC)].to_numpy(dtype=np.float64)
    errors += _finite_errors(idx, prices)
    nonpos, hl, outside = _price_masks(prices)
    if nonpos.any():
        errors.append(f"non-positive prices at {_first(idx, nonpos)}; fix or drop those rows")
    if hl.any():
        errors.append(f"high < low at {_first(idx, hl)}; the high/low columns may be swapped")
    vol = frame["volume"].to_numpy(dtype=np.float64)
    if (vol < 0).any():
        errors.append(f"negative volume at {_first(idx, vol < 0)}; fix those bars")
    if max_jump is not None and not errors:
        errors += _jump_errors(idx, prices[:, 3], max_jump)
    if errors:
        raise DataError(f"{origin}: " + "; ".join(errors))
    counts = {
        "zero_volume_bars": int((vol == 0).sum()),
        "missing_volume_bars": int((~np.isfinite(vol)).sum()),
        "ohlc_widened_bars": int(outside.sum()),
    }
    return (_widened(frame, prices) if outside.any() else frame), counts


def _order_errors(idx: pd.Index) -> list[str]:
    """Rows out of time order, and duplicate timestamps (found on a stable sort, so both are reported)."""
    ts = idx.as_unit("ns").asi8
    errors: list[str] = []
    unsorted = np.zeros(len(idx), dtype=bool)
    unsorted[1:] = ts[1:] < ts[:-1]
    if unsorted.any():
        errors.append(
            f"rows are not sorted by time (first out-of-order rows at {_first(idx, unsorted)}); "
            "sort the file by timestamp"
        )
    order = np.argsort(ts, kind="stable")
    sorted_ts = ts[order]
    dup_sorted = np.zeros(len(idx), dtype=bool)
    dup_sorted[1:] = sorted_ts[1:] == sorted_ts[:-1]
    if dup_sorted.any():
        dupes = np.zeros(len(idx), dtype=bool)
        dupes[order[dup_sorted]] = True
        errors.append(f"duplicate timestamps at {_first(idx, dupes)}; keep one row per timestamp")
    return errors


def _finite_errors(idx: pd.Index, prices: np.ndarray) -> list[str]:
    bad = ~np.isfinite(prices)
    if not bad.any():
        return []
    cols = [c for c, b in zip(OHLC, bad.any(axis=0), strict=True) if b]
    return [f"NaN/inf in {', '.join(cols)} at {_first(idx, bad.any(axis=1))}; fix or drop those rows"]


def _price_masks(prices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with a non-positive price, with high < low, and with open or close outside [low, high]."""
    with np.errstate(invalid="ignore"):
        nonpos = np.asarray((prices <= 0).any(axis=1))  # an array (numpy types .any as bool | array)
        o, h, low, c = prices.T
        tol = 1e-9 * np.maximum(1.0, np.nan_to_num(h))
        hl = h < low - tol
        outside = (c > h + tol) | (c < low - tol) | (o > h + tol) | (o < low - tol)
    return nonpos, hl, outside


def _jump_errors(idx: pd.Index, close: np.ndarray, max_jump: float) -> list[str]:
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.abs(np.log(close[1:] / close[:-1]))
    jumps = np.r_[False, moves > np.log1p(max_jump)]
    if not jumps.any():
        return []
    return [
        f"split-like jumps of more than {max_jump:.0%} at {_first(idx, jumps)}; supply split-adjusted bars "
        "or raise data.max_jump (null disables the check)"
    ]


def _widened(frame: pd.DataFrame, prices: np.ndarray) -> pd.DataFrame:
    """A copy whose high/low include every open and close."""
    o, h, low, c = prices.T
    frame = frame.copy()
    frame["high"] = np.maximum(h, np.maximum(o, c))
    frame["low"] = np.minimum(low, np.minimum(o, c))
    return frame


def session_gaps(
    session_open: np.ndarray, session_close: np.ndarray, timestamps: np.ndarray, width_ns: int
) -> dict[str, int]:
    """Bars missing inside sessions (counted, not filled) and sessions with a single bar."""
    starts = np.flatnonzero(np.r_[True, session_open[1:] != session_open[:-1]])
    counts = np.diff(np.r_[starts, len(timestamps)])
    expected = np.ceil((session_close[starts] - session_open[starts]) / width_ns).astype(np.int64)
    missing = np.maximum(expected - counts, 0)
    return {
        "gap_bars": int(missing.sum()),
        "sessions_with_gaps": int((missing > 0).sum()),
        "single_bar_sessions": int((counts == 1).sum()),
    }
