"""sweep.json / sweep.csv, the sweep selection statistics, and the tidy per-window (long) export.

Part of :mod:`backend.studies.compare` (which re-exports it).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from backend.core.jsonio import load_json, write_atomic, write_json
from backend.core.status import Status
from backend.studies.compare_columns import add_config_columns, comparability
from backend.studies.compare_constants import COLLAPSE_PREFIX

# ----------------------------------------------------------------------------- files


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (columns in order of first appearance; None → empty), readable by ``pandas.read_csv``."""
    cols = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("_")))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def write_results(out: Path, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    """sweep.json (``extra`` + ``comparability`` + ``members``) and sweep.csv, one row per member.

    The rows get their source (the sweep folder) and the per-config columns (:func:`add_config_columns`,
    with ``extra["selection"]``) in place, so the table printed after shows them too.
    """
    for r in rows:
        r.setdefault("source", str(out))
    add_config_columns(rows, {str(out): extra.get("selection") or {}})
    extra = {**extra, "comparability": comparability(rows)}
    write_json(out / "sweep.json", {"schema_version": 1, **extra, "members": rows})
    text = csv_text(rows)
    write_atomic(out / "sweep.csv", lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sweep_statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Deflated Sharpe ratio of every member, with the number of trials taken from the sweep itself.

    Trials are the members that produced an out-of-sample Sharpe; the variance of the trials'
    per-bar Sharpe ratios sets the expected maximum Sharpe of unskilled trials.
    """
    import numpy as np  # lazy: keeps wf --help free of numpy

    from backend.evaluation.statistics import (  # lazy: keeps wf --help free of numpy
        deflated_sharpe_ratio,
        expected_max_sharpe,
    )

    with_sr = [r for r in rows if r.get("_stats") and r["_stats"].get("sharpe_per_bar") is not None]
    n_trials = len(with_sr)
    srs = np.array([r["_stats"]["sharpe_per_bar"] for r in with_sr])
    variance = float(srs.var(ddof=1)) if n_trials > 1 else 0.0
    counted = {id(r) for r in with_sr}
    for r in rows:
        st = r.pop("_stats", None) or {}
        r["dsr"] = None
        if id(r) in counted:
            r["dsr"] = deflated_sharpe_ratio(
                st["sharpe_per_bar"], st["n_obs"], st["skew"], st["kurtosis"], n_trials, variance
            )
        r["dsr_n_trials"] = n_trials
    return {
        "n_trials": n_trials,
        "n_members": len(rows),
        "sharpe_per_bar_variance": variance,
        "expected_max_sharpe_per_bar": expected_max_sharpe(n_trials, variance) if n_trials else None,
    }


# ----------------------------------------------------------------------------- long (per-window) export


ID_COLUMNS = ("source", "member", "config", "seed", "window")


def long_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per member × window: identifiers, the window's spans and status, every metric of its
    ``evaluation`` (unprefixed), each baseline's return and Sharpe (``<baseline>_total_return``…),
    ``beats_<baseline>``, cost sensitivity (``cost_<scale>_total_return``, ``cost_<scale>_sharpe``),
    the collapse diagnostics and the gates. Tidy: ``pandas.read_csv`` reads it without reshaping."""
    out = []
    for r in rows:
        path = Path(str(r.get("path") or ""))
        if not (path / "summary.json").exists():
            continue
        s = load_json(path / "summary.json", "summary")
        for w in s.get("windows", []):
            out.append(_window_row(r, s, w))
    return out


def _window_row(r: dict[str, Any], s: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:
    ev, tr = w.get("evaluation") or {}, w.get("training") or {}
    diag, gates = w.get("diagnostics") or {}, w.get("gates") or {}
    row: dict[str, Any] = {
        "source": r.get("source"),
        "member": r.get("name"),
        "config": r.get("config"),
        "seed": r.get("seed"),
        "window": w.get("id"),
        "status": w.get("status"),
        "train_start": w.get("train_start"),
        "train_end": w.get("train_end"),
        "test_start": w.get("test_start"),
        "test_end": w.get("test_end"),
        "train_bars": w.get("train_bars"),
        "test_bars": w.get("test_bars"),
        "symbol": s.get("symbol"),
        "interval": s.get("interval"),
        "algorithm": r.get("algorithm"),
        "config_hash": s.get("config_hash"),
        "data_hash": s.get("data_hash"),
        "windows_hash": s.get("windows_hash"),
        "steps": tr.get("timesteps"),
        "training_seconds": tr.get("seconds"),
        "warm_start_from": tr.get("warm_start_from"),
        "config_diff": r.get("config_diff"),
    }
    for key, value in ev.items():
        row[key] = value
    for name, m in (w.get("baselines") or {}).items():
        row[f"{name}_total_return"] = (m or {}).get("total_return")
        row[f"{name}_sharpe"] = (m or {}).get("sharpe")
    for name, beat in (w.get("beats") or {}).items():
        row[f"beats_{name}"] = beat
    for scale, m in (w.get("cost_sensitivity") or {}).items():
        row[f"cost_{scale}_total_return"] = (m or {}).get("total_return")
        row[f"cost_{scale}_sharpe"] = (m or {}).get("sharpe")
    warns = [x for x in (diag.get("warnings") or [])]
    row.update(
        action_std=diag.get("action_std"),
        at_limit_fraction=diag.get("at_limit_fraction"),
        collapsed=any(x.startswith(COLLAPSE_PREFIX) for x in warns) if w.get("status") == Status.COMPLETED else None,
        diagnostics_warnings=" | ".join(warns) or None,
        gates_passed=gates.get("passed"),
        error=(w.get("error") or {}).get("message"),
    )
    return row


def long_csv(rows: list[dict[str, Any]]) -> str:
    """:func:`long_rows` as CSV with one header: the union of every row's columns (missing → empty)."""
    return csv_text(long_rows(rows))
