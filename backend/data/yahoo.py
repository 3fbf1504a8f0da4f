"""yfinance provider with Yahoo's intraday limits, a Parquet cache, retries and a timeout.

``Ticker.history`` is used (single-level columns; ``yf.download`` returns MultiIndex
columns). The module attribute :data:`fetch_history` is the only function that touches
the network; tests replace it.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from backend.errors import DataError
from backend.jsonio import load_json, write_atomic, write_json

# interval -> (how far back Yahoo serves it in days, longest span per request in days)
LIMITS: dict[str, tuple[int, int | None]] = {
    "1m": (30, 8),
    "2m": (60, None),
    "5m": (60, None),
    "15m": (60, None),
    "30m": (60, None),
    "90m": (60, None),
    "60m": (730, None),
    "1h": (730, None),
}
YAHOO_HOST = ("query2.finance.yahoo.com", 443)
REQUEST_TIMEOUT_S = 10.0
RETRIES = 3
BACKOFF_S = 2.0


def default_cache_dir() -> Path:
    """$WF_CACHE_DIR/bars, else the user's cache dir (e.g. ~/.cache/wf-harness/bars)."""
    import os

    import platformdirs

    return Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness")) / "bars"


def check_limits(interval: str, start: date, end: date, today: date | None = None) -> None:
    """Refuse, before any request, what Yahoo will not serve."""
    if interval not in LIMITS:
        raise DataError(f"yfinance: interval {interval!r} is not served intraday; use one of {', '.join(LIMITS)}")
    back, _ = LIMITS[interval]
    today = today or datetime.now(UTC).date()
    oldest = today - timedelta(days=back)
    if start < oldest:
        raise DataError(
            f"yfinance serves {interval} bars only for the last {back} days (from {oldest}); "
            f"asked from {start}. Use a later start, a coarser interval (1h: 730 days), "
            "--data FILE with your own bars, or --source sample"
        )
    if end < start:
        raise DataError(f"yfinance: end {end} is before start {start}")


def chunks(interval: str, start: date, end: date) -> list[tuple[date, date]]:
    """Split [start, end] (inclusive) into request-sized spans."""
    per = LIMITS[interval][1]
    if per is None:
        return [(start, end)]
    out, cur = [], start
    while cur <= end:
        last = min(end, cur + timedelta(days=per - 1))
        out.append((cur, last))
        cur = last + timedelta(days=1)
    return out


def _network_reachable(timeout: float = 5.0) -> bool:
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(YAHOO_HOST, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)  # DNS lookups ignore socket timeouts
    return bool(result and result[0])


def _yf_history(symbol: str, start: date, end: date, interval: str, cache_dir: Path) -> pd.DataFrame:
    import yfinance as yf

    (cache_dir / "yfinance-tz").mkdir(parents=True, exist_ok=True)
    yf.set_tz_cache_location(str(cache_dir / "yfinance-tz"))
    ticker = yf.Ticker(symbol)
    return ticker.history(
        start=start.isoformat(),
        end=(end + timedelta(days=1)).isoformat(),
        interval=interval,
        prepost=False,
        actions=False,
        auto_adjust=True,
        raise_errors=True,
        timeout=REQUEST_TIMEOUT_S,
    )


def fetch_history(symbol: str, start: date, end: date, interval: str, cache_dir: Path) -> pd.DataFrame:
    """One request, bounded by a hard timeout (yfinance can hang behind a dead proxy)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["frame"] = _yf_history(symbol, start, end, interval, cache_dir)
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(REQUEST_TIMEOUT_S * 2)
    if thread.is_alive():
        raise TimeoutError(f"yfinance did not answer within {REQUEST_TIMEOUT_S * 2:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["frame"]


def _is_rate_limit(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return ("rate" in text and "limit" in text) or "too many requests" in text or "429" in text


def _cache_paths(cache_dir: Path, symbol: str, interval: str) -> tuple[Path, Path]:
    stem = f"{symbol.upper()}_{interval}"
    return cache_dir / f"{stem}.parquet", cache_dir / f"{stem}.manifest.json"


def read_cache(cache_dir: Path, symbol: str, interval: str) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    data, manifest = _cache_paths(cache_dir, symbol, interval)
    if not data.exists() or not manifest.exists():
        return None, {}
    meta = load_json(manifest, "cache manifest")
    frame = pd.read_parquet(data, engine="pyarrow")
    return frame, meta


def _covered(meta: dict[str, Any], start: date, end: date) -> bool:
    for lo, hi in meta.get("ranges", []):
        if date.fromisoformat(lo) <= start and end <= date.fromisoformat(hi):
            return True
    return False


def _merge_ranges(ranges: list[list[str]]) -> list[list[str]]:
    spans = sorted((date.fromisoformat(a), date.fromisoformat(b)) for a, b in ranges)
    merged: list[list[date]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [[a.isoformat(), b.isoformat()] for a, b in merged]


def load(
    symbol: str,
    interval: str,
    start: date,
    end: date,
    cache_dir: Path,
    timezone: str,
    today: date | None = None,
    needed_from: date | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Bars for [start, end] from the cache, fetching (and caching) what is missing.

    ``needed_from`` (≥ start) is the first day that must be there; the days before it are
    extra history that is used when cached but never fetched for.
    """
    from backend.data import sources

    cache_dir = Path(cache_dir)
    cached, meta = read_cache(cache_dir, symbol, interval)
    if cached is not None and _covered(meta, needed_from or start, end):
        return cached, {**meta, "cache_hit": True}
    check_limits(interval, start, end, today)
    if fetch_history is _DEFAULT_FETCH and not _network_reachable():
        raise DataError(
            f"yfinance: the network is unreachable (no connection to {YAHOO_HOST[0]}); "
            "use --data FILE with your own bars or --source sample (SPY 2017-2019)"
        )
    parts = []
    for lo, hi in chunks(interval, start, end):
        frame = _fetch_with_retries(symbol, lo, hi, interval, cache_dir)
        if frame is not None and not frame.empty:
            parts.append(frame)
    if not parts:
        raise DataError(
            f"yfinance returned no {interval} bars for {symbol} between {start} and {end}; "
            "check the symbol and dates (nothing was cached)"
        )
    fresh = pd.concat([sources.normalise_columns(p, f"yfinance {symbol}", timezone) for p in parts])
    if cached is not None:
        fresh = pd.concat([cached, fresh])
    fresh = fresh[~fresh.index.duplicated(keep="last")].sort_index()
    ranges = _merge_ranges([*meta.get("ranges", []), [start.isoformat(), end.isoformat()]])
    data_path, manifest_path = _cache_paths(cache_dir, symbol, interval)
    write_atomic(data_path, lambda tmp: fresh.to_parquet(tmp, engine="pyarrow", compression="zstd"))
    manifest = {
        "source": "yfinance",
        "symbol": symbol.upper(),
        "interval": interval,
        "adjustment": "auto_adjust",
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ranges": ranges,
        "first_bar": str(fresh.index[0]),
        "last_bar": str(fresh.index[-1]),
        "rows": len(fresh),
        "content_hash": sources.content_hash(fresh),
    }
    write_json(manifest_path, manifest)
    return fresh, {**manifest, "cache_hit": False}


def _fetch_with_retries(symbol: str, start: date, end: date, interval: str, cache_dir: Path) -> pd.DataFrame | None:
    last: BaseException | None = None
    for attempt in range(RETRIES):
        try:
            return fetch_history(symbol, start, end, interval, cache_dir)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            last = e
            if not _is_rate_limit(e) or attempt == RETRIES - 1:
                break
            time.sleep(BACKOFF_S * 2**attempt)
    raise DataError(f"yfinance request for {symbol} {interval} {start}..{end} failed: {type(last).__name__}: {last}")


_DEFAULT_FETCH = fetch_history
