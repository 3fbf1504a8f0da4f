"""Member rows of runs and seeds: one row per run folder, built from its summary.json.

Part of :mod:`backend.studies.compare` (which re-exports it).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from backend.core.jsonio import load_json
from backend.core.status import Status
from backend.studies.compare_constants import COLLAPSE_PREFIX

# ----------------------------------------------------------------------------- member rows


def _window_sharpe(w: dict[str, Any]) -> float | None:
    if w.get("evaluation"):
        return w["evaluation"].get("sharpe")
    return ((w.get("seed_spread") or {}).get("sharpe") or {}).get("mean")


def is_finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def resolved_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.resolved.json"
    return load_json(path, "config") if path.exists() else {}


def _collapse(windows: list[dict[str, Any]]) -> tuple[int, str | None]:
    """Windows whose replay raised a 'policy collapsed' diagnostic, and the warnings (one string)."""
    found = []
    for w in windows:
        warns = [x for x in ((w.get("diagnostics") or {}).get("warnings") or []) if x.startswith(COLLAPSE_PREFIX)]
        if warns:
            found.append(f"{w['id']}: {'; '.join(warns)}")
    return len(found), (" | ".join(found) or None)


def config_label(summary: dict[str, Any], name: str | None = None) -> str:
    """The config's name: its file's stem (summary ``config_path``), else the member name without ``_s<seed>``."""
    if summary.get("config_path"):
        return Path(str(summary["config_path"])).stem
    return re.sub(r"_s\d+$", "", str(name or ""))


def member_row(summary_path: Path, name: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """One comparison row from a run's summary.json."""
    import numpy as np  # lazy: keeps wf --help free of numpy

    s = load_json(summary_path, "summary")
    agg = s.get("aggregate") or {}
    if s.get("kind") == "multi_seed":  # no single curve: the mean over seeds (collect() lists the seeds instead)
        agg = {k: v["mean"] for k, v in (s.get("aggregate_spread") or {}).items()}
    all_windows = s.get("windows", [])
    wins = [w for w in all_windows if w.get("status") == Status.COMPLETED]
    sharpes = [x for x in (_window_sharpe(w) for w in wins) if x is not None]
    beat = sum(1 for w in wins if (w.get("beats") or {}).get("buy_and_hold"))
    cfg = resolved_config(summary_path.parent)
    training = cfg.get("training") or {}
    done_steps = [(w.get("training") or {}).get("timesteps") for w in wins]
    collapsed, collapse_text = _collapse(wins)
    gates = s.get("gates") or {}
    stats = s.get("statistics") or {}
    return {
        "name": name or summary_path.parent.name,
        "path": str(summary_path.parent),
        "status": s.get("status"),
        "config": config_label(s, name or summary_path.parent.name),
        "config_hash": s.get("config_hash"),
        "seed": seed if seed is not None else training.get("seed", s.get("seed")),
        "symbol": s.get("symbol"),
        "interval": s.get("interval"),
        "algorithm": s.get("algorithm") or (cfg.get("agent") or {}).get("algorithm"),
        "data_hash": s.get("data_hash"),
        "windows_hash": s.get("windows_hash"),
        "steps": training.get("total_timesteps") or max((x for x in done_steps if x), default=None),
        "started_at": s.get("started_at"),
        "oos_total_return": agg.get("total_return"),
        "oos_sharpe": agg.get("sharpe"),
        "oos_sortino": agg.get("sortino"),
        "oos_max_drawdown": agg.get("max_drawdown"),
        "oos_n_trades": agg.get("n_trades"),
        "oos_n_bars": agg.get("n_bars"),
        "mean_window_sharpe": float(np.mean(sharpes)) if sharpes else None,
        "median_window_sharpe": float(np.median(sharpes)) if sharpes else None,
        "windows_completed": len(wins),
        "windows": len(all_windows),
        "windows_beating_buy_and_hold": beat,
        "collapsed_windows": collapsed,
        "collapse_warnings": collapse_text,
        "gates_passed": gates.get("windows_passed"),
        "gates_checked": gates.get("windows_checked"),
        "psr": stats.get("psr"),
        "sharpe_ci_low": stats.get("sharpe_ci_low"),
        "sharpe_ci_high": stats.get("sharpe_ci_high"),
        "_stats": s.get("statistics"),
    }


def seed_rows(folder: Path, source: str) -> list[dict[str, Any]]:
    """The member rows of a multi-seed run (``wf run --seeds N``): one per ``s<seed>/`` run."""
    top = load_json(folder / "summary.json", "summary")
    rows = []
    for run in top.get("runs", []):
        sub = folder / str(run["path"]) / "summary.json"
        if sub.exists():
            row = member_row(sub, f"{folder.name}/{run['path']}", run.get("seed"))
        else:
            row = {"name": f"{folder.name}/{run['path']}", "path": str(sub.parent), "status": Status.FAILED}
            row["seed"] = run.get("seed")
        row["source"] = source
        rows.append(row)
    return rows
