"""A benchmark series on the primary series' bars (`--benchmark SYMBOL` or `data.benchmark_symbol`).

The benchmark is loaded with the same source rules as the traded symbol (SPY → the bundled
sample, a .csv/.parquet path → file, anything else → the yfinance cache) and aligned to the
primary bars: each primary bar takes the benchmark's last close at or before it; primary bars
before the benchmark's first bar take that first close (a later value: the coverage warning
counts them). It feeds the intraday buy-and-hold benchmark line and relative metrics only, never
the agent; if it cannot be loaded the run goes on without it and says so (stage line, summary
warnings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import DataConfig
from backend.core.errors import HarnessError
from backend.data.loader import load_bars

MIN_COVERAGE = 0.95


@dataclass
class Benchmark:
    symbol: str
    close: np.ndarray | None  # aligned to the primary bars
    info: dict[str, Any]
    warning: str | None = None


def load_benchmark(cfg: DataConfig, primary: Any, hint: tuple[date, date] | None) -> Benchmark:
    target = cfg.benchmark_symbol or ""
    is_file = Path(target).suffix.lower() in (".csv", ".parquet", ".pq")
    sub = cfg.model_copy(
        update={
            "symbol": Path(target).stem.upper() if is_file else target.upper(),
            "source": "file" if is_file else "auto",
            "path": target if is_file else None,
            "benchmark_symbol": None,
        }
    )
    name = sub.symbol or target
    try:
        bars = load_bars(sub, hint)
    except HarnessError as e:
        return Benchmark(name, None, {}, f"benchmark {name} unavailable ({e}); relative metrics omitted")
    ts = primary.frame.index.as_unit("ns").asi8
    bts = bars.frame.index.as_unit("ns").asi8
    pos = np.searchsorted(bts, ts, side="right") - 1  # last benchmark bar at or before each primary bar
    exact = np.isin(ts, bts)
    if (pos < 0).any():
        first_ok = int(np.argmax(pos >= 0))
        pos[:first_ok] = max(pos[first_ok], 0)
    close = bars.frame["close"].to_numpy(np.float64)[np.maximum(pos, 0)]
    coverage = float(exact.mean())
    info = {**bars.provenance, "coverage": coverage, "filled_bars": int((~exact).sum())}
    warning = None
    if coverage < MIN_COVERAGE:
        warning = (
            f"benchmark {name} covers only {coverage:.0%} of the bars (the rest carry the last earlier close, or "
            "its first close before it starts); its line and relative metrics are approximate"
        )
    return Benchmark(name, close, info, warning)
