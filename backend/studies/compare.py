"""Comparison rows of runs and sweeps: `wf compare`, `wf ls`, `wf diff`, sweep.json / sweep.csv and the sweep table.

One **member row** per run folder (a sweep member, a seed of ``wf run --seeds``, or a plain run), built
from its summary.json (:func:`member_row`). :func:`add_config_columns` groups the rows per config (same
source folder, same config file) and adds, to every row of a group, the config's mean ± sd over seeds,
a 95 % CI, the sweep's IQM and verdict when it has them, and what the config changed from the base
config (the first one). :func:`format_table` prints a config table, a member table and the warnings
that say when rows are not comparable; :func:`long_rows` is the tidy per-window export.
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
from backend.core.jsonio import load_json, write_atomic, write_json

COLLAPSE_PREFIX = "policy collapsed"
CONFIDENCE = 0.95
SHORT_VERDICT = {
    "not distinguishable from luck": "luck",
    "distinguishable from luck": "skill",
    "undetermined": "undetermined",
}
CONFIG_COLUMNS = (
    "config_seeds",
    "config_sharpe_mean",
    "config_sharpe_sd",
    "config_sharpe_ci_low",
    "config_sharpe_ci_high",
    "config_ci_method",
    "config_return_mean",
    "config_return_sd",
    "config_collapsed_windows",
    "config_windows",
    "config_iqm",
    "config_iqm_ci_low",
    "config_iqm_ci_high",
    "config_verdict",
    "config_best",
    "config_diff",
    "source_index",
)
"""The per-config columns :func:`add_config_columns` adds to every member row (and recomputes)."""
IGNORED_IN_DIFF = ("training.seed",)
"""Keys left out of the config diff: a group holds the seeds of one config."""


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
    import numpy as np

    s = load_json(summary_path, "summary")
    agg = s.get("aggregate") or {}
    if s.get("kind") == "multi_seed":  # no single curve: the mean over seeds (collect() lists the seeds instead)
        agg = {k: v["mean"] for k, v in (s.get("aggregate_spread") or {}).items()}
    all_windows = s.get("windows", [])
    wins = [w for w in all_windows if w.get("status") == "completed"]
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
            row = {"name": f"{folder.name}/{run['path']}", "path": str(sub.parent), "status": "failed"}
            row["seed"] = run.get("seed")
        row["source"] = source
        rows.append(row)
    return rows


def _strip_stats(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        r.pop("_stats", None)
        r.setdefault("dsr", None)
        r.setdefault("dsr_n_trials", None)


def collect(paths: list[str]) -> list[dict[str, Any]]:
    """Rows for `wf compare`: run folders (summary.json), multi-seed runs and sweep folders (sweep.json).

    Every row says where it came from (``source``: the folder given); a sweep's rows get its DSR (the
    sweep's own number of trials) and, through :func:`add_config_columns`, its selection statistics.
    """
    rows: list[dict[str, Any]] = []
    selections: dict[str, dict[str, Any]] = {}
    for p in paths:
        folder = Path(p)
        source = str(folder)
        if (folder / "sweep.json").exists():
            doc = load_json(folder / "sweep.json", "sweep")
            members = []
            for r in doc.get("members", []):
                summary = _member_folder(r, folder) / "summary.json"
                base = {k: v for k, v in r.items() if k not in CONFIG_COLUMNS}  # recomputed below
                row = {**base, **member_row(summary, r["name"], r.get("seed"))} if summary.exists() else dict(base)
                row["source"] = source
                members.append(row)
            sweep_statistics(members)
            if doc.get("selection"):
                selections[source] = doc["selection"]
            rows.extend(members)
        elif (folder / "summary.json").exists():
            if load_json(folder / "summary.json", "summary").get("kind") == "multi_seed":
                members = seed_rows(folder, source)
                _strip_stats(members)
                rows.extend(members)
            else:
                row = member_row(folder / "summary.json")
                row["source"] = source
                _strip_stats([row])
                rows.append(row)
        else:
            raise InputError(f"FOLDERS {folder}: neither a run folder (summary.json) nor a sweep folder (sweep.json)")
    add_config_columns(rows, selections)
    return rows


def _member_folder(row: dict[str, Any], sweep_dir: Path) -> Path:
    """The row's path, or ``<sweep_dir>/<folder name>`` when the sweep folder was moved."""
    path = Path(str(row.get("path") or row.get("name")))
    return path if path.is_dir() or not (sweep_dir / path.name).is_dir() else sweep_dir / path.name


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
    import numpy as np

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
        done = [m for m in members if m.get("status") in ("completed", "partial") and is_finite(m.get("oos_sharpe"))]
        sharpes = [float(m["oos_sharpe"]) for m in done]
        returns = [float(m["oos_total_return"]) for m in done if is_finite(m.get("oos_total_return"))]
        mean, sd = _mean_sd(sharpes)
        if len(sharpes) >= 2:
            lo, hi = _t_interval(sharpes)
            method = "t over seeds"
        elif len(done) == 1:
            lo, hi = done[0].get("sharpe_ci_low"), done[0].get("sharpe_ci_high")
            method = "bootstrap over bars" if lo is not None else None
        else:
            lo = hi = method = None
        ret_mean, ret_sd = _mean_sd(returns)
        sel = selections.get(source) or {}
        sel_cfg = _selection_config(sel, config)
        iqm = sel_cfg.get("iqm") or {}
        if key == base_key:
            change = "(base)"
        elif configs[key] and base_key is not None and configs[base_key]:
            change = diff_text(config_diff(configs[base_key], configs[key])) or "(same as base)"
        else:
            change = None
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
    """One line per property that differs between rows that produced results (empty: comparable)."""
    done = [r for r in rows if r.get("status") in ("completed", "partial")]
    out = []
    for key, what in COMPARED:
        seen: dict[str, list[str]] = {}
        for r in done:
            value = r.get(key)
            if value is None:
                continue
            shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
            seen.setdefault(shown, []).append(str(r["name"]))
        if len(seen) > 1:
            parts = [f"{v} ({_few(names)})" for v, names in seen.items()]
            out.append(f"{what}: {'; '.join(parts)}")
    return out


def _few(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


# ----------------------------------------------------------------------------- the tables


def render_table(head: list[tuple[str, str]], body: list[list[str]]) -> list[str]:
    """Aligned text columns; ``<`` / ``>`` per column; the last column is never padded (free width)."""
    keep = [i for i in range(len(head)) if i == 0 or any(row[i] not in ("", "—") for row in body)]
    head = [head[i] for i in keep]
    body = [[row[i] for i in keep] for row in body]
    widths = [max([len(h)] + [len(row[i]) for row in body]) for i, (h, _) in enumerate(head)]

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, (_, align)) in enumerate(zip(cells, head, strict=True)):
            last = i == len(head) - 1
            out.append(
                cell if last and align == "<" else (cell.ljust(widths[i]) if align == "<" else cell.rjust(widths[i]))
            )
        return "  ".join(out).rstrip()

    header = line([h for h, _ in head])
    return [header, "-" * len(header), *(line(row) for row in body)]


def plus_minus(mean: float | None, sd: float | None, pct: bool = False) -> str:
    from backend.core.stages import fmt_num, fmt_pct

    if mean is None:
        return "—"
    fmt = fmt_pct if pct else fmt_num
    if sd is None:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt_pct(sd, signed=False) if pct else fmt_num(sd)}"


def _ci(lo: float | None, hi: float | None) -> str:
    from backend.core.stages import fmt_num

    if lo is None or hi is None:
        return "—"
    return f"[{fmt_num(lo)}, {fmt_num(hi)}]"


def _group_order(grouped: dict[tuple[str, str], list[dict[str, Any]]], key: str) -> list[tuple[str, str]]:
    col = {"oos_sharpe": "config_sharpe_mean", "oos_total_return": "config_return_mean"}.get(key)

    def score(k: tuple[str, str]) -> tuple[bool, float]:
        if key == "name":
            return (False, 0.0)
        if col:
            v = grouped[k][0].get(col)
        else:
            vals = [float(r[key]) for r in grouped[k] if is_finite(r.get(key))]
            v = sum(vals) / len(vals) if vals else None
        return (not is_finite(v), -(v or 0.0))

    keys = list(grouped)
    return sorted(keys, key=lambda k: k[1]) if key == "name" else sorted(keys, key=score)


def _sources(rows: list[dict[str, Any]]) -> dict[str, str]:
    """``{source folder: "#k"}``, numbered in the order the folders were given (``source_index``)."""
    found = {str(r["source"]): r.get("source_index") or 0 for r in rows if r.get("source")}
    ordered = sorted(found, key=lambda src: found[src])
    return {src: f"#{i + 1}" for i, src in enumerate(ordered)}


def config_table(rows: list[dict[str, Any]], sort_key: str = "oos_sharpe") -> list[str]:
    """One line per config: seeds, windows, steps, Sharpe mean ± sd and CI, IQM, return, flags, changes."""
    from backend.core.stages import fmt_num

    grouped = groups(rows)
    srcs = _sources(rows)
    head = [
        ("config", "<"),
        ("src", "<"),
        ("seeds", ">"),
        ("windows", ">"),
        ("steps", ">"),
        ("Sharpe mean ± sd", ">"),
        ("95% CI", ">"),
        ("IQM [95% CI]", ">"),
        ("return mean ± sd", ">"),
        ("beat B&H", ">"),
        ("collapsed", ">"),
        ("gates passed", ">"),
        ("verdict", "<"),
        ("changes from base", "<"),
    ]
    body = []
    for key in _group_order(grouped, sort_key):
        members = grouped[key]
        g = members[0]
        windows = sorted({int(m["windows"]) for m in members if m.get("windows") is not None})
        steps = sorted({int(m["steps"]) for m in members if m.get("steps")})
        iqm = "—"
        if g.get("config_iqm") is not None:
            iqm = fmt_num(g["config_iqm"]) + (
                " " + _ci(g.get("config_iqm_ci_low"), g.get("config_iqm_ci_high"))
                if g.get("config_iqm_ci_low") is not None
                else ""
            )
        ci = _ci(g.get("config_sharpe_ci_low"), g.get("config_sharpe_ci_high"))
        if ci != "—" and g.get("config_ci_method") == "bootstrap over bars":
            ci += " b"
        beat = sum(int(m.get("windows_beating_buy_and_hold") or 0) for m in members)
        verdict = SHORT_VERDICT.get(str(g.get("config_verdict")), "—") if g.get("config_verdict") else "—"
        if g.get("config_best"):
            verdict = f"BEST: {verdict}"
        collapsed = g.get("config_collapsed_windows") or 0
        checked = sum(int(m.get("gates_checked") or 0) for m in members)
        gates = f"{sum(int(m.get('gates_passed') or 0) for m in members)}/{checked}" if checked else "—"
        body.append(
            [
                key[1],
                srcs.get(key[0], "") if len(srcs) > 1 else "",
                f"{g.get('config_seeds', 0)}/{len(members)}",
                "/".join(str(w) for w in windows) or "—",
                "/".join(f"{s:,}" for s in steps) or "—",
                plus_minus(g.get("config_sharpe_mean"), g.get("config_sharpe_sd")),
                ci,
                iqm,
                plus_minus(g.get("config_return_mean"), g.get("config_return_sd"), pct=True),
                f"{beat}/{g.get('config_windows', 0)}",
                f"{collapsed}/{g.get('config_windows', 0)}" + (" COLLAPSED" if collapsed else ""),
                gates,
                verdict,
                g.get("config_diff") or "—",
            ]
        )
    return render_table(head, body)


def member_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per member: full name, seed, status, Sharpe and its bootstrap CI, PSR, DSR with its N, flags."""
    from backend.core.stages import fmt_num, fmt_pct

    srcs = _sources(rows)
    trials = {r.get("dsr_n_trials") for r in rows if r.get("dsr") is not None}
    one_n = len(trials) == 1
    head = [
        ("member", "<"),
        ("src", "<"),
        ("seed", ">"),
        ("status", "<"),
        ("OOS Sharpe", ">"),
        ("95% CI (bootstrap)", ">"),
        ("OOS return", ">"),
        ("max DD", ">"),
        ("trades", ">"),
        ("mean win. Sh", ">"),
        ("beat B&H", ">"),
        ("PSR", ">"),
        (f"DSR(N={next(iter(trials))})" if one_n else "DSR (N)", ">"),
        ("flags", "<"),
    ]
    body = []
    for r in rows:
        flags = []
        if r.get("collapsed_windows"):
            flags.append(f"COLLAPSED in {r['collapsed_windows']}/{r.get('windows_completed', 0)} windows")
        if r.get("gates_checked"):
            flags.append(f"gates {r.get('gates_passed', 0)}/{r['gates_checked']} windows")
        if r.get("error"):
            flags.append(str(r["error"]))
        dsr = "—"
        if r.get("dsr") is not None:
            dsr = fmt_num(r["dsr"]) if one_n else f"{fmt_num(r['dsr'])} ({r.get('dsr_n_trials')})"
        trades = r.get("oos_n_trades")
        body.append(
            [
                str(r["name"]),
                srcs.get(str(r.get("source")), "") if len(srcs) > 1 else "",
                "—" if r.get("seed") is None else str(r["seed"]),
                str(r.get("status") or "—"),
                fmt_num(r.get("oos_sharpe")),
                _ci(r.get("sharpe_ci_low"), r.get("sharpe_ci_high")),
                fmt_pct(r.get("oos_total_return")),
                fmt_pct(r.get("oos_max_drawdown")),
                "—" if trades is None else (f"{trades:,}" if isinstance(trades, int) else f"{trades:.1f}"),
                fmt_num(r.get("mean_window_sharpe")),
                f"{r.get('windows_beating_buy_and_hold', 0)}/{r.get('windows_completed', r.get('windows', 0))}",
                fmt_num(r.get("psr")),
                dsr,
                "; ".join(flags),
            ]
        )
    return render_table(head, body)


def format_table(rows: list[dict[str, Any]], sort_key: str = "oos_sharpe") -> str:
    """The config table, the member table (``rows`` in their order) and the warnings under them.

    Rows without the per-config columns get them here (no selection: no IQM or verdict).
    """
    from backend.core.stages import fmt_num

    if rows and any("config_sharpe_mean" not in r for r in rows):
        add_config_columns(rows)
    out = [
        "Configs — stitched out-of-sample Sharpe and return over seeds (mean ± sd); 95% CI of the mean: "
        "t over seeds, or with one seed the run's bootstrap over bars (b)",
        *config_table(rows, sort_key),
        "",
        "Members",
        *member_table(rows),
    ]
    srcs = _sources(rows)
    if len(srcs) > 1:
        out.append("sources: " + "  ".join(f"{tag} {src}" for src, tag in srcs.items()))
    elif srcs:
        out.append(f"source: {next(iter(srcs))}")
    trials = sorted({int(r["dsr_n_trials"]) for r in rows if r.get("dsr") is not None})
    if trials:
        out.append(
            "DSR(N): deflated Sharpe ratio for N trials (the members of its sweep with an out-of-sample Sharpe)"
            + (
                ""
                if len(trials) == 1
                else "; N differs between sweeps (shown per row), so the DSRs are not on one scale"
            )
        )
    for problem in comparability(rows):
        out.append(f"warning: rows are not comparable — {problem}")
    collapsed = [r["name"] for r in rows if r.get("collapsed_windows")]
    if collapsed:
        out.append(
            f"warning: policy collapsed in some windows of {_few(collapsed)} (near-constant action, no trades or "
            "stuck at the limit): their Sharpe is not a trading policy's; see collapse_warnings"
        )
    if any(r.get("config_verdict") for r in rows):
        out.append(
            "verdict: the sweep's selection verdict per config (BEST = highest Sharpe of its seed-mean returns); "
            "luck = not distinguishable from luck (best config: PBO > 0.5 or SPA p > 0.05; every config: "
            "a majority of its seeds must beat each baseline under StepM); IQM: of window Sharpe over seeds × windows"
        )
    single = [k[1] for k, g in groups(rows).items() if g[0].get("config_seeds") == 1]
    if single and len(single) == len(groups(rows)):
        out.append(
            "note: one seed per config — the spread between seeds is unknown; run --seeds 3 or more "
            f"(Sharpe differences below ~{fmt_num(_typical_ci_halfwidth(rows))} are within one run's CI)"
        )
    return "\n".join(out)


def _typical_ci_halfwidth(rows: list[dict[str, Any]]) -> float | None:
    widths = [
        (r["sharpe_ci_high"] - r["sharpe_ci_low"]) / 2
        for r in rows
        if is_finite(r.get("sharpe_ci_high")) and is_finite(r.get("sharpe_ci_low"))
    ]
    return sorted(widths)[len(widths) // 2] if widths else None


# ----------------------------------------------------------------------------- files


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (columns in order of first appearance; None → empty), readable by ``pandas.read_csv``."""
    import csv
    import io

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
        collapsed=any(x.startswith(COLLAPSE_PREFIX) for x in warns) if w.get("status") == "completed" else None,
        diagnostics_warnings=" | ".join(warns) or None,
        gates_passed=gates.get("passed"),
        error=(w.get("error") or {}).get("message"),
    )
    return row


def long_csv(rows: list[dict[str, Any]]) -> str:
    """:func:`long_rows` as CSV with one header: the union of every row's columns (missing → empty)."""
    return csv_text(long_rows(rows))
