"""Sorting, the per-config columns (mean ± sd over seeds, CI, IQM, verdict, config diff) and comparability warnings.

Part of :mod:`backend.studies.compare` (which re-exports it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from backend.config.models import flatten
from backend.core.errors import InputError
from backend.core.status import Status
from backend.studies.compare_constants import CONFIDENCE, IGNORED_IN_DIFF
from backend.studies.compare_rows import is_finite, resolved_config

_SCORED = (Status.COMPLETED, Status.PARTIAL)  # members whose out-of-sample results count (some windows at least)

# ----------------------------------------------------------------------------- sorting


SORT_KEYS = (
    "oos_sharpe",
    "oos_total_return",
    "oos_max_drawdown",
    "mean_window_sharpe",
    "median_window_sharpe",
    "oos_sortino",
    "psr",
    "dsr",
    "name",
)


def sort_rows(rows: list[dict[str, Any]], key: str = "oos_sharpe") -> list[dict[str, Any]]:
    if key not in SORT_KEYS:
        raise InputError(f"--sort {key!r}: use one of {', '.join(SORT_KEYS)}")
    if key == "name":
        return sorted(rows, key=lambda r: str(r["name"]))
    return sorted(rows, key=lambda r: (not is_finite(r.get(key)), -(r.get(key) or 0.0)))


# ----------------------------------------------------------------------------- per-config columns


def show_value(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value)


_ABSENT = object()


def config_diff(base: dict[str, Any], other: dict[str, Any], ignore: Iterable[str] = IGNORED_IN_DIFF) -> dict[str, Any]:
    """Dotted keys whose values differ: ``{key: (base value, other value)}`` (``_ABSENT`` for a missing key)."""
    a, b = flatten(base), flatten(other)
    skip = set(ignore)
    out = {}
    for key in list(dict.fromkeys([*a, *b])):
        if key in skip:
            continue
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va != vb:
            out[key] = (va, vb)
    return out


def diff_text(diff: dict[str, Any]) -> str:
    """``sac.learning_rate=0.0001, env.reward="log_return"``: the other side of each differing key."""
    return ", ".join(f"{k}={show_value(v[1])}" for k, v in diff.items())


def config_of(row: dict[str, Any]) -> str:
    if row.get("config"):
        return str(row["config"])
    if row.get("config_path"):
        return Path(str(row["config_path"])).stem
    return re.sub(r"_s\d+$", "", str(row.get("name")))


def _group_key(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row.get("source") or ""), config_of(row))


def groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows per (source folder, config name), in the order they first appear."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(_group_key(r), []).append(r)
    return out


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    import numpy as np  # lazy: keeps wf --help free of numpy

    if not values:
        return None, None
    x = np.asarray(values, dtype=np.float64)
    return float(x.mean()), (float(x.std(ddof=1)) if len(x) > 1 else None)


def _t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Student-t interval of the mean over seeds (needs 2 or more)."""
    from scipy.stats import t

    mean, sd = _mean_sd(values)
    if mean is None or sd is None:
        return None, None
    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def _selection_config(selection: dict[str, Any] | None, config: str) -> dict[str, Any]:
    for c in (selection or {}).get("configs") or []:
        if c.get("name") == config:
            return c
    return {}


def _config_ci(sharpes: list[float], done: list[dict[str, Any]]) -> tuple[Any, Any, str | None]:
    """The config's Sharpe CI: t over seeds with 2 or more seeds, else the single run's bootstrap CI."""
    if len(sharpes) >= 2:
        lo, hi = _t_interval(sharpes)
        return lo, hi, "t over seeds"
    if len(done) == 1:
        lo, hi = done[0].get("sharpe_ci_low"), done[0].get("sharpe_ci_high")
        return lo, hi, "bootstrap over bars" if lo is not None else None
    return None, None, None


def _change_from_base(
    key: tuple[str, str], base_key: tuple[str, str] | None, configs: dict[tuple[str, str], dict[str, Any]]
) -> str | None:
    """What the config changed from the base config: ``(base)`` for itself, None when a config is unreadable."""
    if key == base_key:
        return "(base)"
    if configs[key] and base_key is not None and configs[base_key]:
        return diff_text(config_diff(configs[base_key], configs[key])) or "(same as base)"
    return None


def add_config_columns(
    rows: list[dict[str, Any]], selections: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Add the per-config columns to every row (in place) and return the rows.

    ``selections``: ``{source: sweep.json["selection"]}`` (rows without a source: key ``""``). A config is
    the rows of one source folder with one config name (its seeds). Columns: ``config_seeds``,
    ``config_sharpe_mean`` / ``_sd`` (the stitched out-of-sample Sharpe over the seeds that completed),
    ``config_sharpe_ci_low`` / ``_high`` with ``config_ci_method`` (``t over seeds`` with 2 or more seeds,
    else ``bootstrap over bars``: the run's own CI), ``config_return_mean`` / ``_sd``,
    ``config_collapsed_windows`` / ``config_windows``, ``config_iqm`` / ``_ci_low`` / ``_ci_high`` and
    ``config_verdict`` / ``config_best`` from the sweep's selection, and ``config_diff`` (what the config
    changed from the base config, the first; ``(base)`` for itself); and ``source_index``: the source
    folder's place among those given (1, 2, …).
    """
    selections = selections or {}
    grouped = groups(rows)
    configs: dict[tuple[str, str], dict[str, Any]] = {}
    for key, members in grouped.items():
        folder = next((Path(str(m["path"])) for m in members if m.get("path")), None)
        configs[key] = resolved_config(folder) if folder is not None and folder.is_dir() else {}
    base_key = next(iter(grouped), None)
    order = {src: i + 1 for i, src in enumerate(dict.fromkeys(k[0] for k in grouped))}
    for key, members in grouped.items():
        source, config = key
        done = [m for m in members if m.get("status") in _SCORED and is_finite(m.get("oos_sharpe"))]
        sharpes = [float(m["oos_sharpe"]) for m in done]
        returns = [float(m["oos_total_return"]) for m in done if is_finite(m.get("oos_total_return"))]
        mean, sd = _mean_sd(sharpes)
        lo, hi, method = _config_ci(sharpes, done)
        ret_mean, ret_sd = _mean_sd(returns)
        sel = selections.get(source) or {}
        sel_cfg = _selection_config(sel, config)
        iqm = sel_cfg.get("iqm") or {}
        change = _change_from_base(key, base_key, configs)
        values = {
            "config_seeds": len(done),
            "config_sharpe_mean": mean,
            "config_sharpe_sd": sd,
            "config_sharpe_ci_low": lo,
            "config_sharpe_ci_high": hi,
            "config_ci_method": method,
            "config_return_mean": ret_mean,
            "config_return_sd": ret_sd,
            "config_collapsed_windows": sum(int(m.get("collapsed_windows") or 0) for m in members),
            "config_windows": sum(int(m.get("windows_completed") or 0) for m in members),
            "config_iqm": iqm.get("value"),
            "config_iqm_ci_low": iqm.get("ci_low"),
            "config_iqm_ci_high": iqm.get("ci_high"),
            "config_verdict": sel_cfg.get("verdict"),
            "config_best": bool(sel_cfg) and sel.get("best_config") == config,
            "config_diff": change,
        }
        for m in members:
            m.setdefault("config", config)
            m.setdefault("source", source or None)
            m["source_index"] = order[source]
            m.update(values)
    return rows


# ----------------------------------------------------------------------------- comparability


COMPARED = (
    ("windows_hash", "windows differ (windows hash)"),
    ("data_hash", "data differ (data hash)"),
    ("steps", "training steps per window differ"),
    ("windows", "window counts differ"),
    ("algorithm", "algorithms differ"),
    ("interval", "intervals differ"),
    ("symbol", "symbols differ"),
)


def comparability(rows: list[dict[str, Any]]) -> list[str]:
    """One line per property that differs between rows that produced results (empty: comparable).

    A universe's symbols differ by design: their symbols are not compared, their data only symbol by symbol.
    """
    done = [r for r in rows if r.get("status") in _SCORED]
    out = []
    for key, what in COMPARED:
        per_symbol = key == "data_hash" and any(r.get("universe") for r in done)
        seen: dict[tuple[str, str], list[str]] = {}
        for r in done:
            value = r.get(key)
            if value is None or (key == "symbol" and r.get("universe")):
                continue
            shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
            seen.setdefault((str(r.get("symbol")) if per_symbol else "", shown), []).append(str(r["name"]))
        for group in dict.fromkeys(g for g, _ in seen):
            values = {v: names for (g, v), names in seen.items() if g == group}
            if len(values) > 1:
                parts = [f"{v} ({_few(names)})" for v, names in values.items()]
                out.append(f"{what}{f' for {group}' if group else ''}: {'; '.join(parts)}")
    return out


def _few(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"
