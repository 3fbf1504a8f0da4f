"""Comparison rows of runs and sweeps: `wf compare`, sweep.json / sweep.csv and the sweep table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.errors import InputError
from backend.jsonio import load_json, write_atomic, write_json


def _window_sharpe(w: dict[str, Any]) -> float | None:
    if w.get("evaluation"):
        return w["evaluation"].get("sharpe")
    return ((w.get("seed_spread") or {}).get("sharpe") or {}).get("mean")


def member_row(summary_path: Path, name: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """One comparison row from a run's summary.json."""
    import numpy as np

    s = load_json(summary_path, "summary")
    agg = s.get("aggregate") or {}
    if s.get("kind") == "multi_seed":  # no single curve: compare the mean over seeds
        agg = {k: v["mean"] for k, v in (s.get("aggregate_spread") or {}).items()}
    wins = [w for w in s.get("windows", []) if w.get("status") == "completed"]
    sharpes = [x for x in (_window_sharpe(w) for w in wins) if x is not None]
    beat = sum(1 for w in wins if (w.get("beats") or {}).get("buy_and_hold"))
    cfg = (
        load_json(summary_path.parent / "config.resolved.json", "config")
        if (summary_path.parent / "config.resolved.json").exists()
        else {}
    )
    return {
        "name": name or summary_path.parent.name,
        "path": str(summary_path.parent),
        "status": s.get("status"),
        "config_hash": s.get("config_hash"),
        "seed": seed if seed is not None else (cfg.get("training") or {}).get("seed"),
        "oos_total_return": agg.get("total_return"),
        "oos_sharpe": agg.get("sharpe"),
        "oos_sortino": agg.get("sortino"),
        "oos_max_drawdown": agg.get("max_drawdown"),
        "oos_n_trades": agg.get("n_trades"),
        "oos_n_bars": agg.get("n_bars"),
        "mean_window_sharpe": float(np.mean(sharpes)) if sharpes else None,
        "median_window_sharpe": float(np.median(sharpes)) if sharpes else None,
        "windows_completed": len(wins),
        "windows": len(s.get("windows", [])),
        "windows_beating_buy_and_hold": beat,
        "psr": (s.get("statistics") or {}).get("psr"),
        "sharpe_ci_low": (s.get("statistics") or {}).get("sharpe_ci_low"),
        "sharpe_ci_high": (s.get("statistics") or {}).get("sharpe_ci_high"),
        "_stats": s.get("statistics"),
    }


SORT_KEYS = (
    "oos_sharpe",
    "oos_total_return",
    "oos_max_drawdown",
    "mean_window_sharpe",
    "median_window_sharpe",
    "oos_sortino",
    "name",
)


def sort_rows(rows: list[dict[str, Any]], key: str = "oos_sharpe") -> list[dict[str, Any]]:
    if key not in SORT_KEYS:
        raise InputError(f"--sort {key!r}: use one of {', '.join(SORT_KEYS)}")
    if key == "name":
        return sorted(rows, key=lambda r: r["name"])
    return sorted(rows, key=lambda r: (r.get(key) is None, -(r.get(key) or 0.0)))


def format_table(rows: list[dict[str, Any]]) -> str:
    from backend.stages import fmt_num, fmt_pct

    trials = next((r["dsr_n_trials"] for r in rows if r.get("dsr_n_trials")), None)
    dsr_head = f"DSR(N={trials})" if trials else "DSR"
    head = (
        f"{'member':<28}{'status':<12}{'OOS Sharpe':>11}{'OOS return':>12}{'max DD':>9}{'trades':>8}"
        f"{'mean Sh':>9}{'med Sh':>9}{'beat B&H':>10}{'PSR':>7}{dsr_head:>11}"
    )
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r['name'][:27]:<28}{(r.get('status') or '-'):<12}{fmt_num(r.get('oos_sharpe')):>11}"
            f"{fmt_pct(r.get('oos_total_return')):>12}{fmt_pct(r.get('oos_max_drawdown')):>9}"
            f"{(r.get('oos_n_trades') if r.get('oos_n_trades') is not None else '-')!s:>8}"
            f"{fmt_num(r.get('mean_window_sharpe')):>9}{fmt_num(r.get('median_window_sharpe')):>9}"
            f"{str(r.get('windows_beating_buy_and_hold', 0)) + '/' + str(r.get('windows', 0)):>10}"
            f"{fmt_num(r.get('psr')):>7}{fmt_num(r.get('dsr')):>11}"
        )
    return "\n".join(out)


def write_results(out: Path, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    import csv
    import io

    write_json(out / "sweep.json", {"schema_version": 1, **extra, "members": rows})
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    write_atomic(out / "sweep.csv", lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def collect(paths: list[str]) -> list[dict[str, Any]]:
    """Rows for `wf compare`: run folders (summary.json) and sweep folders (sweep.json)."""
    rows = []
    for p in paths:
        folder = Path(p)
        if (folder / "sweep.json").exists():
            doc = load_json(folder / "sweep.json", "sweep")
            members = []
            for r in doc.get("members", []):
                summary = Path(r["path"]) / "summary.json"
                members.append({**r, **member_row(summary, r["name"], r.get("seed"))} if summary.exists() else r)
            sweep_statistics(members)
            rows.extend(members)
        elif (folder / "summary.json").exists():
            row = member_row(folder / "summary.json")
            row.pop("_stats", None)
            rows.append(row)
        else:
            raise InputError(f"{folder}: neither a run folder (summary.json) nor a sweep folder (sweep.json)")
    return rows


def sweep_statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Deflated Sharpe ratio of every member, with the number of trials taken from the sweep itself.

    Trials are the members that produced an out-of-sample Sharpe; the variance of the trials'
    per-bar Sharpe ratios sets the expected maximum Sharpe of unskilled trials.
    """
    import numpy as np

    from backend.evaluation.statistics import deflated_sharpe_ratio, expected_max_sharpe

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
