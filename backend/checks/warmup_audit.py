"""The declared warm-up of every feature, proved at every test bar on the code that runs.

A feature declares how many past bars it reads (``register_feature(..., warmup=)``; ``session`` with bars before
the session for session-anchored ones). The tune accounting of what trials read, and the rule that a window's
features do not depend on where the loaded history starts, both rest on that declaration. A user function that
reads further back than it declares would make both wrong without any look-ahead, so the audit checks it: for
every test bar t and every built-in or user feature, the real ``compute_features`` on the bars from the declared
first bar to t only must give the value of the whole history at t, bit for bit.

TA-Lib specs are computed by the harness's own per-session memory rule (tested in the suite), file columns read
nothing back, and context specs count their warm-up in their own series' bars: those kinds are not re-checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.features import builtin, specs
from backend.features.builtin import MarketArrays, compute_features


@dataclass
class WarmupFinding:
    feature: str
    bar: int
    declared: str


def declared_first_bar(spec: specs.FeatureSpec, market: MarketArrays, starts: np.ndarray, t: int) -> int:
    """The first bar the feature at t may read, by its declaration (never before 0)."""
    w, prev = specs.warmup(spec)
    if w != builtin.SESSION:
        return max(0, t - int(w))
    first = int(starts[np.searchsorted(starts, t, side="right") - 1])
    return max(0, first - int(prev))


def _same(a: float, b: float) -> bool:
    return bool(np.float64(a).tobytes() == np.float64(b).tobytes()) or (bool(np.isnan(a)) and bool(np.isnan(b)))


def _declared(spec: specs.FeatureSpec) -> str:
    w, prev = specs.warmup(spec)
    return f"session + {prev} bars before it" if w == builtin.SESSION else f"{w} bars"


def first_undeclared_read(
    market: MarketArrays, names: list[str], full: np.ndarray, bars: range
) -> WarmupFinding | None:
    """The first (feature, bar) whose value changes when only the declared warm-up precedes it, or None."""
    starts, _ = market.session_bounds()
    checked = [(j, s) for j, s in enumerate(specs.parse_all(names)) if s.kind == "builtin"]
    for t in bars:
        for j, spec in checked:
            lo = declared_first_bar(spec, market, starts, t)
            got = compute_features(market.take(lo, t + 1), [names[j]])[-1, 0]
            if not _same(float(got), float(full[t, j])):
                return WarmupFinding(names[j], t, _declared(spec))
    return None
