"""The stitched out-of-sample curve of a run: every window's test bars in time order, each bar once.

Computed from the windows' per-bar series in memory (results of this run) or read back
losslessly from equity.csv (windows finished earlier, --resume), never from rounded text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.core.errors import DataError
from backend.evaluation.statistics import summary_statistics


def _trajectory(columns: dict[str, np.ndarray], prefix: str):
    from backend.evaluation.simulate import Trajectory  # heavy: gymnasium (the env); the run driver imports this module

    n = len(columns["net_return"])
    return Trajectory(
        start=0,
        returns=np.asarray(columns[prefix + "return" if prefix else "net_return"], np.float64),
        positions=np.asarray(columns[prefix + "position"], np.float64),
        held=np.asarray(columns[prefix + "held"], np.float64),
        costs=np.asarray(columns[prefix + "cost"], np.float64),
        trade_costs=np.asarray(columns[prefix + "trade_cost"], np.float64),
        traded=np.asarray(columns[prefix + "traded"], np.float64),
        actions=np.full(n, np.nan),
        session_id=np.asarray(columns["session"], np.int64),
    )


def stitch(series: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate windows' series in time order; a bar that appears twice is an error, never counted twice."""
    if not series:
        return {}
    keys = [k for k in series[0] if k != "timestamp"]
    order = np.argsort([str(s["timestamp"][0]) if len(s["timestamp"]) else "" for s in series], kind="stable")
    parts = [series[i] for i in order]
    stamps = np.concatenate([np.asarray(p["timestamp"], dtype=object) for p in parts])
    if len(set(stamps.tolist())) != len(stamps):
        raise DataError(
            "the test spans of the windows share bars; the stitched out-of-sample curve would count them twice"
        )
    out = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}
    out["timestamp"] = stamps
    return out


def stitched(series: list[dict[str, Any]], periods_per_year: float, cfg: Any) -> tuple[dict | None, dict | None]:
    """Metrics of the stitched curve (agent and intraday buy-and-hold) and its statistics (PSR, Sharpe CI)."""
    if not series:
        return None, None
    cols = stitch(series)
    capital = cfg.env.initial_capital
    agent = _trajectory(cols, "").metrics(periods_per_year, capital)
    bh = _trajectory(cols, "buy_and_hold_").metrics(periods_per_year, capital)
    stats = summary_statistics(cols["net_return"].astype(np.float64), periods_per_year, seed=cfg.evaluation.seed)
    return {**agent, "windows": len(series), "buy_and_hold": bh}, stats
