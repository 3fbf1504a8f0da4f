"""yfinance provider with Yahoo's intraday limits, a Parquet cache, retries and a timeout.

``Ticker.history`` is used (single-level columns; ``yf.download`` returns MultiIndex
columns). The module attribute :data:`fetch_history` is the only function that touches
the network; tests replace it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import platformdirs

from backend.core import fsguard
from backend.core.errors import DataError, InputError
from backend.data import cache, sources

# harness interval -> (how far back Yahoo serves it in days, longest span per request in days)
LIMITS: dict[str, tuple[int, int | None]] = {
    "1m": (30, 8),
    "5m": (60, None),
    "15m": (60, None),
    "30m": (60, None),
    "1h": (730, None),
}
YAHOO_CODE = {"1h": "60m"}  # what yfinance calls a harness interval, where the names differ
YAHOO_HOST = ("query2.finance.yahoo.com", 443)
REQUEST_TIMEOUT_S = 10.0
RETRIES = 3
BACKOFF_S = 2.0


def default_cache_dir() -> Path:
    """$WF_CACHE_DIR/bars, else the user's cache dir (e.g. ~/.cache/wf-harness/bars)."""
    return Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness")) / "bars"


def check_limits(interval: str, start: date, end: date, today: date | None = None) -> None:
    """Refuse, before any request, what Yahoo will not serve."""
    if interval not in LIMITS:
        raise InputError(f"yfinance: interval {interval!r} is not served; use one of {', '.join(LIMITS)}")
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

    fsguard.make_dirs(cache_dir, cache_dir / "yfinance-tz", "the cache folder")
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


def read_cache(cache_dir: Path, symbol: str, interval: str) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The verified yfinance cache entry of ``symbol`` at ``interval`` (None if there is none)."""
    e = cache.entry(cache_dir, symbol, interval, "yfinance")
    with cache.locked(e):
        return cache.read(e)


def _covered(meta: dict[str, Any], start: date, end: date) -> bool:
    for lo, hi in meta.get("ranges", []):
        if date.fromisoformat(lo) <= start and end <= date.fromisoformat(hi):
            return True
    return False


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

    ``interval`` is a harness interval (1h, not 60m). ``needed_from`` (≥ start) is the first
    day that must be there; the days before it are extra history that is used when cached but
    never fetched for. The cache entry is read and written under its lock (backend.data.cache);
    the network is asked outside the lock.
    """
    e = cache.entry(cache_dir, symbol, interval, "yfinance")
    cached, meta = _read_own_entry(e, interval)
    if cached is not None and _covered(meta, needed_from or start, end):
        return cached, {**meta, "cache_hit": True}
    check_limits(interval, start, end, today)
    _check_network()
    code = YAHOO_CODE.get(interval, interval)
    fresh = _fetch_span(e.symbol, interval, code, start, end, Path(cache_dir), timezone)
    with cache.locked(e):
        cached, meta = cache.read(e)  # another process may have written meanwhile: merge with that
        merged = cache.merge(cached, fresh)
        ranges = cache.merge_ranges([*meta.get("ranges", []), [start.isoformat(), end.isoformat()]])
        manifest = cache.write(
            e,
            merged,
            {
                "source": "yfinance",
                "adjustment": "auto_adjust",
                "yahoo_interval": code,
                "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "ranges": ranges,
            },
        )
    return merged, {**manifest, "cache_hit": False}


def _read_own_entry(e: cache.Entry, interval: str) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The entry's bars and manifest, read under its lock; refused when it holds another source's bars."""
    with cache.locked(e):
        cached, meta = cache.read(e)
    if cached is not None and meta.get("source") != "yfinance":
        raise DataError(
            f"cache entry {e.data_path} holds {meta.get('source')!r} bars, not yfinance bars (an import of an "
            f"earlier version); delete it (wf data delete {e.symbol} --interval {interval} --cache-dir {e.folder}) "
            "and import the file again with wf data import"
        )
    return cached, meta


def _check_network() -> None:
    """Refuse at once when the real fetcher would time out (tests replace :data:`fetch_history`)."""
    if fetch_history is _DEFAULT_FETCH and not _network_reachable():
        raise DataError(
            f"yfinance: the network is unreachable (no connection to {YAHOO_HOST[0]}); "
            "use --data FILE with your own bars or --source sample (SPY 2017-2019)"
        )


def _fetch_span(
    symbol: str, interval: str, code: str, start: date, end: date, cache_dir: Path, timezone: str
) -> pd.DataFrame:
    """[start, end] fetched chunk by chunk, normalised, de-duplicated (the last row wins) and sorted."""
    parts = []
    for lo, hi in chunks(interval, start, end):
        frame = _fetch_with_retries(symbol, lo, hi, code, cache_dir)
        if frame is not None and not frame.empty:
            parts.append(frame)
    if not parts:
        raise DataError(
            f"yfinance returned no {interval} bars for {symbol} between {start} and {end}; "
            "check the symbol and dates (nothing was cached)"
        )
    fresh = pd.concat([sources.normalise_columns(p, f"yfinance {symbol}", timezone) for p in parts])
    return fresh[~fresh.index.duplicated(keep="last")].sort_index()


def _fetch_with_retries(symbol: str, start: date, end: date, interval: str, cache_dir: Path) -> pd.DataFrame | None:
    fsguard.check_no_escape(cache_dir, cache_dir / "yfinance-tz", "the cache folder")  # exit 2, not a failed request
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
