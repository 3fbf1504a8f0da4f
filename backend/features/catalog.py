"""What ``wf features`` shows: every available feature with its doc and warm-up, and a preview of a config's
features on its first train span (NaN share after warm-up, mean/std, strongest pairwise correlations)."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.features import builtin, specs
from backend.features import talib as ta
from backend.features.user import FEATURE_MODULE


def _warmup_text(name: str) -> str:
    w = builtin.FEATURE_WARMUP.get(name, 0)
    if w == builtin.SESSION:
        prev = builtin.SESSION_PREV_BARS.get(name, 0)
        return "session" + (f" + {prev} bar(s) before" if prev else "")
    return f"{w} bar(s)"


def registered() -> list[dict[str, str]]:
    """Built-ins and user-registered features: name, kind, warm-up, doc."""
    return [
        {
            "name": name,
            "kind": "user" if name in FEATURE_MODULE else "built-in",
            "warmup": _warmup_text(name),
            "doc": builtin.FEATURE_DOCS.get(name, ""),
        }
        for name in builtin.FEATURES
    ]


def talib_functions() -> list[dict[str, Any]]:
    """Every TA-Lib abstract function: parameters with defaults, outputs, lookback and memory at the defaults."""
    out = []
    for name in ta.function_names():
        info = ta.info(name)
        params = dict(info["parameters"])
        memory, lookback = ta.memory_bars(name, params), ta.lookback(name, params)
        out.append(
            {
                "name": f"talib:{name}",
                "group": info["group"],
                "doc": info["display_name"],
                "parameters": params,
                "outputs": list(info["output_names"]),
                "warmup": f"session + {memory} bar(s) before (lookback {lookback})",
            }
        )
    return out


def preview(market: builtin.MarketArrays, names: list[str], start: int, end: int, top: int = 5) -> dict[str, Any]:
    """Statistics of each spec over bars [start, end) of ``market`` (raw values: NaN stays NaN)."""
    parsed = specs.parse_all(names)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.column_stack([specs.compute_one(market, s)[start:end] for s in parsed])
    cols = np.where(np.isfinite(cols), cols, np.nan)
    rows = []
    for j, name in enumerate(names):
        x = cols[:, j]
        ok = x[np.isfinite(x)]
        rows.append(
            {
                "feature": name,
                "nan_share": float(np.isnan(x).mean()) if len(x) else 1.0,
                "mean": float(ok.mean()) if len(ok) else float("nan"),
                "std": float(ok.std()) if len(ok) else float("nan"),
            }
        )
    pairs = []
    filled = np.nan_to_num(cols, nan=0.0)
    std = filled.std(axis=0)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if std[i] > 0 and std[j] > 0:
                pairs.append((float(np.corrcoef(filled[:, i], filled[:, j])[0, 1]), names[i], names[j]))
    pairs.sort(key=lambda p: -abs(p[0]))
    return {"bars": end - start, "features": rows, "correlations": [list(p) for p in pairs[:top]]}
