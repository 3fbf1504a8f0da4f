"""Causal features, computed once per symbol/interval as float32 arrays.

Every feature at bar t uses bars <= t only (tests perturb the future and check this).
Features are computed on the whole loaded history and sliced per window: causality makes
that safe, and normalisation statistics are fitted per window on the train span only
(see :func:`fit_normalisation`).

Add a feature with :func:`register_feature`; its function receives a :class:`MarketArrays`
and returns an array with one value per bar (NaN allowed during warm-up; it becomes 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backend.errors import InputError


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
    minutes_from_open: np.ndarray  # float64
    session_minutes: np.ndarray  # float64, length of this bar's session

    @classmethod
    def from_bars(cls, frame, session_open: np.ndarray, session_close: np.ndarray) -> MarketArrays:
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
        )

    def __len__(self) -> int:
        return len(self.close)

    def session_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """First bar index of each session and one past its last bar."""
        starts = np.flatnonzero(np.r_[True, self.session_id[1:] != self.session_id[:-1]])
        return starts, np.r_[starts[1:], len(self.session_id)]


FeatureFn = Callable[[MarketArrays], np.ndarray]
FEATURES: dict[str, FeatureFn] = {}
FEATURE_DOCS: dict[str, str] = {}


def register_feature(name: str, doc: str = "") -> Callable[[FeatureFn], FeatureFn]:
    def deco(fn: FeatureFn) -> FeatureFn:
        FEATURES[name] = fn
        FEATURE_DOCS[name] = doc or (fn.__doc__ or "").strip()
        return fn

    return deco


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k bars into the future (value at t is x[t-k]); NaN where unknown."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    out[k:] = x[:-k]
    return out


def _rolling_mean_std(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean/std over the last ``window`` values (bars <= t); NaN before full."""
    x = np.nan_to_num(x, nan=0.0)
    c1 = np.cumsum(np.r_[0.0, x])
    c2 = np.cumsum(np.r_[0.0, x * x])
    n = len(x)
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    if n >= window:
        s1 = c1[window:] - c1[:-window]
        s2 = c2[window:] - c2[:-window]
        m = s1 / window
        var = np.maximum(s2 / window - m * m, 0.0)
        mean[window - 1 :] = m
        std[window - 1 :] = np.sqrt(var)
    return mean, std


@register_feature("ret_1", "log return of the close over the last bar")
def _ret_1(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 1))


@register_feature("ret_5", "log return of the close over the last 5 bars")
def _ret_5(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 5))


@register_feature("ret_15", "log return of the close over the last 15 bars")
def _ret_15(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / _shift(m.close, 15))


@register_feature("range_hl", "(high - low) / close of the current bar")
def _range(m: MarketArrays) -> np.ndarray:
    return (m.high - m.low) / m.close


@register_feature("body", "log(close / open) of the current bar")
def _body(m: MarketArrays) -> np.ndarray:
    return np.log(m.close / m.open)


@register_feature("vol_20", "standard deviation of 1-bar log returns over the last 20 bars")
def _vol(m: MarketArrays) -> np.ndarray:
    return _rolling_mean_std(_ret_1(m), 20)[1]


@register_feature("volume_z", "z-score of log(1 + volume) against the last 20 bars")
def _volume_z(m: MarketArrays) -> np.ndarray:
    lv = np.log1p(m.volume)
    mean, std = _rolling_mean_std(lv, 20)
    return np.where(std > 1e-12, (lv - mean) / np.where(std > 1e-12, std, 1.0), 0.0)


@register_feature("vwap_dev", "close relative to the session's volume-weighted price so far")
def _vwap_dev(m: MarketArrays) -> np.ndarray:
    typical = (m.high + m.low + m.close) / 3.0
    pv = typical * m.volume
    starts, ends = m.session_bounds()
    cpv = np.cumsum(pv)
    cv = np.cumsum(m.volume)
    offset_pv = np.repeat(np.r_[0.0, cpv[starts[1:] - 1]], ends - starts)
    offset_v = np.repeat(np.r_[0.0, cv[starts[1:] - 1]], ends - starts)
    vol_so_far = cv - offset_v
    vwap = np.where(vol_so_far > 0, (cpv - offset_pv) / np.where(vol_so_far > 0, vol_so_far, 1.0), typical)
    return m.close / vwap - 1.0


@register_feature("gap", "log of the session's first open over the previous session's last close")
def _gap(m: MarketArrays) -> np.ndarray:
    starts, ends = m.session_bounds()
    prev_close = np.r_[np.nan, m.close[starts[1:] - 1]]
    return np.repeat(np.log(m.open[starts] / prev_close), ends - starts)


@register_feature("time_of_day", "minutes since the open divided by the session's length")
def _tod(m: MarketArrays) -> np.ndarray:
    return m.minutes_from_open / np.maximum(m.session_minutes, 1.0)


def check_feature_names(names: list[str]) -> None:
    import difflib

    for name in names:
        if name not in FEATURES:
            close = difflib.get_close_matches(name, list(FEATURES), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(FEATURES)}"
            raise InputError(f"env.features: unknown feature '{name}'{hint}")


def compute_features(market: MarketArrays, names: list[str]) -> np.ndarray:
    """(n_bars, n_features) float32; warm-up NaN becomes 0."""
    check_feature_names(names)
    out = np.empty((len(market), len(names)), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(names):
            col = np.asarray(FEATURES[name](market), dtype=np.float64)
            if col.shape != (len(market),):
                raise ValueError(f"feature {name} returned shape {col.shape}, expected ({len(market)},)")
            out[:, j] = np.nan_to_num(col, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def fit_normalisation(features: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over bars [start, end) — the train span only."""
    span = features[start:end].astype(np.float64)
    return span.mean(axis=0), span.var(axis=0)
