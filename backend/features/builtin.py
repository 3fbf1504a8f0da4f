"""Causal features, computed once per symbol/interval as float32 arrays.

Every feature at bar t uses bars <= t only (tests perturb the future and check this), and
only its own window of bars: rolling statistics sum their last ``window`` values in a fixed
order and session features restart at each session, never a cumulative sum over the whole
history. So a feature at bar t is bit-identical whatever the first loaded bar is, once its
warm-up is past (a replay from a cache loaded another day reproduces exactly). Features are
computed on the whole loaded history and sliced per window: causality makes that safe, and
normalisation statistics are fitted per window on the train span only (see
:func:`fit_normalisation`).

Add a feature with :func:`register_feature`; its function receives a :class:`MarketArrays`
and returns an array with one value per bar (NaN allowed during warm-up; it becomes 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from backend.core.errors import InputError


@dataclass(frozen=True)
class MarketArrays:
    """Per-bar arrays of one symbol at one interval (index = bar number)."""

    timestamps: np.ndarray  # int64 UTC ns, bar start
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    session_id: np.ndarray  # int64, increasing by one per session
    minutes_from_open: np.ndarray  # float64, bar start - session open
    session_minutes: np.ndarray  # float64, length of this bar's session
    bar_minutes: float  # nominal bar width (the interval); a session's last bar may be shorter
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # extra numeric file columns (known at bar close)
    context: dict[str, Any] = field(default_factory=dict)  # SYMBOL -> backend.features.context.ContextSeries
    feature_sources: tuple[tuple[str, str], ...] = ()  # (module name, source) of env.feature_modules, shipped along

    @classmethod
    def from_bars(cls, frame, session_open: np.ndarray, session_close: np.ndarray, bar_minutes: float) -> MarketArrays:
        """Arrays of a validated bar frame (UTC-convertible index of bar starts, OHLCV columns).

        ``session_open`` / ``session_close`` are per bar, UTC ns; ``bar_minutes`` is the
        interval's width in minutes (``backend.core.intervals.INTERVAL_MINUTES[interval]``).
        """
        if not bar_minutes > 0:
            raise ValueError(f"bar_minutes must be positive, got {bar_minutes!r}")
        ts = frame.index.as_unit("ns").asi8
        new_session = np.r_[True, session_open[1:] != session_open[:-1]]
        return cls(
            timestamps=ts,
            open=frame["open"].to_numpy(np.float64),
            high=frame["high"].to_numpy(np.float64),
            low=frame["low"].to_numpy(np.float64),
            close=frame["close"].to_numpy(np.float64),
            volume=np.nan_to_num(frame["volume"].to_numpy(np.float64), nan=0.0),
            session_id=np.cumsum(new_session) - 1,
            minutes_from_open=(ts - session_open) / 60e9,
            session_minutes=(session_close - session_open) / 60e9,
            bar_minutes=float(bar_minutes),
        )

    def take(self, start: int, end: int) -> MarketArrays:
        """The bars [start, end) as their own arrays (as if the history had been loaded from there).

        File columns are cut the same way; a context series keeps only its bars that ENDED at or before the
        end of bar ``end - 1`` (what was known then), so a misaligned context shows in the audit.
        """
        cut = {
            f.name: getattr(self, f.name)[start:end]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        cut["session_id"] = cut["session_id"] - (cut["session_id"][0] if len(cut["session_id"]) else 0)
        cut["columns"] = {k: v[start:end] for k, v in self.columns.items()}
        if self.context and end > start:
            known = int(self.bar_end_ns()[end - 1])
            cut["context"] = {k: c.until(known) for k, c in self.context.items()}
        return replace(self, **cut)

    def bar_end_ns(self) -> np.ndarray:
        """UTC ns of the end of every bar (its close): start + width, cut at the session's close."""
        return self.timestamps + np.round((self.bar_end_minutes() - self.minutes_from_open) * 60e9).astype(np.int64)

    def bar_end_minutes(self) -> np.ndarray:
        """Minutes from the session open to the end of every bar (its close)."""
        return np.minimum(self.minutes_from_open + self.bar_minutes, self.session_minutes)

    def __len__(self) -> int:
        return len(self.close)

    def session_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """First bar index of each session and one past its last bar."""
        starts = np.flatnonzero(np.r_[True, self.session_id[1:] != self.session_id[:-1]])
        return starts, np.r_[starts[1:], len(self.session_id)]


FeatureFn = Callable[[MarketArrays], np.ndarray]
FEATURES: dict[str, FeatureFn] = {}
FEATURE_DOCS: dict[str, str] = {}
SESSION = "session"
"""Warm-up of a feature that reads back to its session's first bar (and, with ``session_prev_bars``, a few bars
of the session before): bounded by the longest session, whatever the bar count."""
FEATURE_WARMUP: dict[str, int | str] = {}
"""name -> how many bars before bar t the feature reads (0 = the bar itself only), or :data:`SESSION`."""
SESSION_PREV_BARS: dict[str, int] = {}
"""name -> bars of the *previous* session a :data:`SESSION` feature also reads (``gap``: its last close)."""


def register_feature(
    name: str, doc: str = "", *, warmup: int | str = 0, session_prev_bars: int = 0
) -> Callable[[FeatureFn], FeatureFn]:
    """Register ``fn(MarketArrays) -> (n_bars,)`` under ``name``.

    ``warmup`` declares how far back the feature reads: the value at bar t may depend on bars
    t - warmup .. t only (an int), or on the bars of t's session (:data:`SESSION`, plus
    ``session_prev_bars`` bars of the session before). The tune accounting of what a trial reads
    and the history-start test rely on it; a test checks every registered feature against it.
    """
    if not (warmup == SESSION or (isinstance(warmup, int) and warmup >= 0)):
        raise InputError(f"register_feature({name!r}): warmup must be an int >= 0 or 'session', got {warmup!r}")

    def deco(fn: FeatureFn) -> FeatureFn:
        FEATURES[name] = fn
        FEATURE_DOCS[name] = doc or (fn.__doc__ or "").strip()
        FEATURE_WARMUP[name] = warmup
        SESSION_PREV_BARS[name] = int(session_prev_bars)
        return fn

    return deco


def warmup_bars(names: list[str], session_bars: int) -> int:
    """The most bars before a bar t that any of ``names`` reads, with sessions of at most ``session_bars`` bars
    (any spec kind: TA-Lib's memory rule included; a context spec counts in its own series' bars)."""
    return PIPELINE["warmup"](names, session_bars)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k bars into the future (value at t is x[t-k]); NaN where unknown."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    out[k:] = x[:-k]
    return out


def _rolling_mean_std(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean/std (population) over the last ``window`` values (bars <= t); NaN before full.

    Each window is summed on its own, in a fixed order (two passes: mean, then squared
    deviations), so the value at t depends on those ``window`` values only — not on where
    the array starts, as a difference of global cumulative sums would.
    """
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    n = len(x)
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    m = n - window + 1
    if m <= 0:
        return mean, std
    acc = x[:m].copy()
    for k in range(1, window):
        np.add(acc, x[k : k + m], out=acc)
    mu = acc / window
    acc[:] = 0.0
    tmp = np.empty(m)
    for k in range(window):
        np.subtract(x[k : k + m], mu, out=tmp)
        np.multiply(tmp, tmp, out=tmp)
        np.add(acc, tmp, out=acc)
    mean[window - 1 :] = mu
    std[window - 1 :] = np.sqrt(acc / window)
    return mean, std


def _session_cumsum(m: MarketArrays, *xs: np.ndarray) -> np.ndarray:
    """Cumulative sums of each of ``xs`` restarting at every session (each session summed on its own).

    Returns an array of shape (len(xs), n_bars).
    """
    n = len(m)
    starts, ends = m.session_bounds()
    if n == 0:
        return np.zeros((len(xs), 0))
    lengths = ends - starts
    width = int(lengths.max())
    # bar i sits at row (session) r, column i - starts[r] of a (sessions, width) grid
    flat = np.arange(n) + np.repeat(np.arange(len(starts)) * width - starts, lengths)
    grid = np.zeros((len(xs), len(starts) * width))
    for k, x in enumerate(xs):
        grid[k, flat] = x
    cube = grid.reshape(len(xs), len(starts), width)
    np.cumsum(cube, axis=2, out=cube)
    return cube.reshape(len(xs), -1)[:, flat]


@register_feature("ret_1", "log return of the close over the last bar", warmup=1)
def _ret_1(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 1))


@register_feature("ret_5", "log return of the close over the last 5 bars", warmup=5)
def _ret_5(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 5))


@register_feature("ret_15", "log return of the close over the last 15 bars", warmup=15)
def _ret_15(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 15))


@register_feature("range_hl", "(high - low) / close of the current bar", warmup=0)
def _range(m: MarketArrays) -> np.ndarray:
    return (m.high - m.low) / m.close


@register_feature("body", "log(close / open) of the current bar", warmup=0)
def _body(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / m.open)


@register_feature("vol_20", "standard deviation of 1-bar log returns over the last 20 bars", warmup=20)
def _vol(m: MarketArrays) -> np.ndarray:
    return _rolling_mean_std(_ret_1(m), 20)[1]


@register_feature("volume_z", "z-score of log(1 + volume) against the last 20 bars", warmup=19)
def _volume_z(m: MarketArrays) -> np.ndarray:
    lv = np.log1p(m.volume)
    mean, std = _rolling_mean_std(lv, 20)
    return np.where(std > 1e-12, (lv - mean) / np.where(std > 1e-12, std, 1.0), 0.0)


@register_feature("vwap_dev", "close relative to the session's volume-weighted price so far", warmup=SESSION)
def _vwap_dev(m: MarketArrays) -> np.ndarray:
    typical = (m.high + m.low + m.close) / 3.0
    cpv, vol_so_far = _session_cumsum(m, typical * m.volume, m.volume)
    vwap = np.where(vol_so_far > 0, cpv / np.where(vol_so_far > 0, vol_so_far, 1.0), typical)
    return m.close / vwap - 1.0


@register_feature(
    "gap", "log of the session's first open over the previous session's last close", warmup=SESSION, session_prev_bars=1
)
def _gap(m: MarketArrays) -> np.ndarray:
    starts, ends = m.session_bounds()
    prev_close = np.r_[np.nan, m.close[starts[1:] - 1]]
    return np.repeat(np.log(m.open[starts] / prev_close), ends - starts)


@register_feature("time_of_day", "minutes since the open divided by the session's length", warmup=0)
def _tod(m: MarketArrays) -> np.ndarray:
    return m.minutes_from_open / np.maximum(m.session_minutes, 1.0)


PIPELINE: dict[str, Callable[..., Any]] = {}
"""``check`` and ``compute``, set by :mod:`backend.features.pipeline` (imported with the package): the spec kinds
(TA-Lib, columns, context, user modules) live above this module, which keeps these two import paths."""


def check_feature_names(
    names: list[str], *, columns: list[str] | None = None, context: list[str] | None = None
) -> None:
    """Every spec of ``env.features`` parses (backend.features.specs); InputError with a did-you-mean hint."""
    PIPELINE["check"](names, columns=columns, context=context)


def compute_features(market: MarketArrays, names: list[str]) -> np.ndarray:
    """(n_bars, n_features) float32; warm-up NaN becomes 0. Any spec kind (backend.features.specs)."""
    return PIPELINE["compute"](market, names)


def fit_normalisation(features: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over bars [start, end) — the train span only."""
    span = features[start:end].astype(np.float64)
    return span.mean(axis=0), span.var(axis=0)
