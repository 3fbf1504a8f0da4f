"""Bar validation: errors for what cannot be trusted, counted repairs for the rest.

Errors (exit 3, first offending timestamps listed): NaN/inf prices, non-positive prices,
high < low, duplicate timestamps, unsorted rows, negative volume.
Repairs / notes (counted in the dry-run output and in the summary's data section):
open or close outside [low, high] (odd-lot prints in vendor data; the bundled sample has
194) widens high/low to include them; bars outside the regular session are dropped;
zero-volume bars and missing volume are counted (missing volume is summed as 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.errors import DataError

OHLC = ("open", "high", "low", "close")


def _first(index: pd.Index, mask: np.ndarray, n: int = 3) -> str:
    hits = index[mask][:n]
    more = int(mask.sum()) - len(hits)
    text = ", ".join(str(t) for t in hits)
    return text + (f" (+{more} more)" if more > 0 else "")


def check_bars(frame: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Raise :class:`DataError` on untrustworthy bars; return the (repaired) frame and counts.

    ``frame`` has a DatetimeIndex and lower-case OHLCV columns.
    """
    if frame.empty:
        raise DataError(f"{origin}: no bars; check the symbol, the date range and the file")
    idx = frame.index
    ts = idx.asi8
    unsorted = np.zeros(len(idx), dtype=bool)
    unsorted[1:] = ts[1:] < ts[:-1]
    if unsorted.any():
        raise DataError(
            f"{origin}: rows are not sorted by time (first out-of-order rows at {_first(idx, unsorted)}); "
            "sort the file by timestamp"
        )
    dupes = np.zeros(len(idx), dtype=bool)
    dupes[1:] = ts[1:] == ts[:-1]
    if dupes.any():
        raise DataError(f"{origin}: duplicate timestamps at {_first(idx, dupes)}; keep one row per timestamp")
    prices = frame.loc[:, list(OHLC)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(prices)
    if bad.any():
        rows = bad.any(axis=1)
        cols = [c for c, b in zip(OHLC, bad.any(axis=0), strict=True) if b]
        raise DataError(f"{origin}: NaN/inf in {', '.join(cols)} at {_first(idx, rows)}; fix or drop those rows")
    if (prices <= 0).any():
        rows = (prices <= 0).any(axis=1)
        raise DataError(f"{origin}: non-positive prices at {_first(idx, rows)}; fix or drop those rows")
    o, h, low, c = prices.T
    tol = 1e-9 * np.maximum(1.0, h)
    hl = h < low - tol
    if hl.any():
        raise DataError(f"{origin}: high < low at {_first(idx, hl)}; the high/low columns may be swapped")
    outside = (c > h + tol) | (c < low - tol) | (o > h + tol) | (o < low - tol)
    if outside.any():
        frame = frame.copy()
        frame["high"] = np.maximum(h, np.maximum(o, c))
        frame["low"] = np.minimum(low, np.minimum(o, c))
    vol = frame["volume"].to_numpy(dtype=np.float64)
    counts = {
        "zero_volume_bars": int((vol == 0).sum()),
        "missing_volume_bars": int((~np.isfinite(vol)).sum()),
        "ohlc_widened_bars": int(outside.sum()),
    }
    if (vol < 0).any():
        raise DataError(f"{origin}: negative volume at {_first(idx, vol < 0)}; fix those bars")
    return frame, counts
