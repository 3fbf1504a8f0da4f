"""Context series (``data.context``) and the market's extras (file columns, user modules) at Window Setup.

Alignment rule: bar t of the traded symbol sees the context bar j with the latest END (its close) at or before
the end of bar t; before the first such bar the value is NaN (0 in the observation) — never back-filled. The
coverage (bars with a context value) is reported per symbol. A daily context (``interval: "1d"``) is built from
the symbol's intraday bars at the traded interval: one bar per session (open first, high max, low min, close
last, volume sum) ending at the session's close; a file of daily rows (one per date) is read as such, each row
ending at its session's close (rows on non-session dates are dropped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from backend.core.intervals import INTERVAL_MINUTES
from backend.features import user
from backend.features.builtin import MarketArrays


@dataclass(frozen=True)
class ContextSeries:
    symbol: str
    market: MarketArrays
    end_ns: np.ndarray  # UTC ns of each context bar's end

    def until(self, known_ns: int) -> ContextSeries:
        """The bars that ended at or before ``known_ns`` (what was known then)."""
        k = int(np.searchsorted(self.end_ns, known_ns, side="right"))
        return ContextSeries(self.symbol, self.market.take(0, k) if k else self.market.take(0, 0), self.end_ns[:k])


def align_index(main: MarketArrays, ctx: ContextSeries) -> np.ndarray:
    """For each bar of ``main``, the index of the last context bar ended by its end (-1: none)."""
    return np.searchsorted(ctx.end_ns, main.bar_end_ns(), side="right") - 1


def aligned(main: MarketArrays, spec: Any, compute: Callable[[MarketArrays, Any], np.ndarray]) -> np.ndarray:
    ctx: ContextSeries = main.context[spec.name]
    values = compute(ctx.market, spec.inner) if len(ctx.market) else np.zeros(0)
    idx = align_index(main, ctx)
    out = np.full(len(main), np.nan)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def daily(market: MarketArrays) -> MarketArrays:
    """One bar per session of ``market`` (ending at the session's close)."""
    starts, ends = market.session_bounds()
    last = ends - 1
    return MarketArrays(
        timestamps=market.timestamps[starts],
        open=market.open[starts],
        high=np.maximum.reduceat(market.high, starts),
        low=np.minimum.reduceat(market.low, starts),
        close=market.close[last],
        volume=np.add.reduceat(market.volume, starts),
        session_id=np.arange(len(starts)),
        minutes_from_open=np.zeros(len(starts)),
        session_minutes=market.session_minutes[starts],
        bar_minutes=float(max(market.session_minutes[starts].max(initial=1.0), 1.0)),
    )


def daily_file(cfg: Any, path: str) -> MarketArrays | None:
    """A file of daily rows (at most one per date) as one bar per calendar session, ending at its close;
    None when the file is intraday (then its bars are aggregated per session)."""
    from backend.core import calendars  # lazy: wf eval's preflight loads features, no pandas
    from backend.data import sources  # lazy: wf eval's preflight loads features, no data code

    frame = sources.read_bar_file(path, cfg.data.timezone).frame
    dates = frame.index.tz_convert(cfg.data.timezone).normalize().tz_localize(None).values.astype("datetime64[D]")
    if len(np.unique(dates)) != len(dates):
        return None
    table = calendars.session_table(
        cfg.data.calendar, frame.index[0], frame.index[-1], cfg.data.session_cut, cfg.data.timezone
    )
    pos = np.searchsorted(table.label, dates)
    ok = (pos < len(table.label)) & (table.label[np.minimum(pos, len(table.label) - 1)] == dates)
    rows, pos = frame[ok], pos[ok]
    opens, closes = table.open[pos].astype(np.int64), table.close[pos].astype(np.int64)
    return MarketArrays(
        timestamps=opens,
        open=rows["open"].to_numpy(np.float64),
        high=rows["high"].to_numpy(np.float64),
        low=rows["low"].to_numpy(np.float64),
        close=rows["close"].to_numpy(np.float64),
        volume=np.nan_to_num(rows["volume"].to_numpy(np.float64), nan=0.0),
        session_id=np.arange(len(rows)),
        minutes_from_open=np.zeros(len(rows)),
        session_minutes=(closes - opens) / 60e9,
        bar_minutes=float(max(((closes - opens) / 60e9).max(initial=1.0), 1.0)),
    )


def load_context(cfg: Any, entry: Any, hint: Any) -> ContextSeries:
    """Load one ``data.context`` entry with the traded symbol's data settings (calendar, time zone, cache)."""
    from backend.data.loader import load_bars  # lazy: wf eval's preflight loads features, no data code

    if entry.interval == "1d" and entry.source == "file" and entry.path:
        market = daily_file(cfg, entry.path)
        if market is not None:
            return ContextSeries(entry.symbol.upper(), market, market.bar_end_ns())

    interval = cfg.data.interval if entry.interval == "1d" else entry.interval
    dcfg = cfg.data.model_copy(
        update={"symbol": entry.symbol, "source": entry.source, "path": entry.path, "interval": interval, "columns": {}}
    )
    bars = load_bars(dcfg, hint)
    market = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close, INTERVAL_MINUTES[interval])
    if entry.interval == "1d":
        market = daily(market)
    return ContextSeries(entry.symbol.upper(), market, market.bar_end_ns())


def prepare(market: MarketArrays, cfg: Any, bars: Any, hint: Any, base_dir: Any) -> tuple[MarketArrays, list[str]]:
    """The traded market with its file columns, context series and user-module sources; notes for the dry run."""
    notes: list[str] = []
    columns = {name: bars.frame[name].to_numpy(np.float64) for name in cfg.data.columns}
    sources = user.read_sources(list(cfg.env.feature_modules), base_dir)
    user.install(sources)
    context: dict[str, ContextSeries] = {}
    for entry in cfg.data.context:
        series = load_context(cfg, entry, hint)
        context[series.symbol] = series
        idx = align_index(market, series)
        notes.append(
            f"context {series.symbol} {entry.interval}: {int((idx >= 0).sum()):,} of {len(market):,} bars covered "
            f"({int((idx < 0).sum()):,} before its first ended bar: NaN -> 0, no back-fill)"
        )
    return replace(market, columns=columns, context=context, feature_sources=sources), notes


def extras_fingerprint(market: MarketArrays) -> str:
    """SHA-256 (16 hex) of what features read beyond the traded bars: context series and user-module sources
    (file columns are in the data hash already); '' when there are none. Keys the per-process feature cache."""
    if not market.context and not market.feature_sources:
        return ""
    h = hashlib.sha256()
    for name, source in market.feature_sources:
        h.update(name.encode() + b"\0" + source.encode() + b"\0")
    for symbol, c in sorted(market.context.items()):
        h.update(symbol.encode())
        for arr in (c.end_ns, c.market.open, c.market.high, c.market.low, c.market.close, c.market.volume):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]
