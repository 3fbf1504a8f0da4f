"""The config table, the member table and :func:`format_table` that prints them with their warnings.

Part of :mod:`backend.studies.compare` (which re-exports it).
"""

from __future__ import annotations

from typing import Any

from backend.core.stages import fmt_num, fmt_pct
from backend.studies.compare_columns import _few, add_config_columns, comparability, groups
from backend.studies.compare_constants import SHORT_VERDICT
from backend.studies.compare_rows import is_finite

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
    if mean is None:
        return "—"
    fmt = fmt_pct if pct else fmt_num
    if sd is None:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt_pct(sd, signed=False) if pct else fmt_num(sd)}"


def _ci(lo: float | None, hi: float | None) -> str:
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


CONFIG_TABLE_HEAD: list[tuple[str, str]] = [
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


def _iqm_cell(g: dict[str, Any]) -> str:
    """The config's IQM with its CI, or a dash."""
    if g.get("config_iqm") is None:
        return "—"
    if g.get("config_iqm_ci_low") is None:
        return fmt_num(g["config_iqm"])
    return fmt_num(g["config_iqm"]) + " " + _ci(g.get("config_iqm_ci_low"), g.get("config_iqm_ci_high"))


def config_table(rows: list[dict[str, Any]], sort_key: str = "oos_sharpe") -> list[str]:
    """One line per config: seeds, windows, steps, Sharpe mean ± sd and CI, IQM, return, flags, changes."""
    grouped = groups(rows)
    srcs = _sources(rows)
    body = []
    for key in _group_order(grouped, sort_key):
        members = grouped[key]
        g = members[0]
        windows = sorted({int(m["windows"]) for m in members if m.get("windows") is not None})
        steps = sorted({int(m["steps"]) for m in members if m.get("steps")})
        iqm = _iqm_cell(g)
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
    return render_table(CONFIG_TABLE_HEAD, body)


def member_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per member: full name, seed, status, Sharpe and its bootstrap CI, PSR, DSR with its N, flags."""
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
    from backend.studies import compare_universe as cu  # lazy: keeps wf --help free of pandas

    symbols = cu.universe_body(rows)
    if symbols:
        out += ["", cu.TITLE, *render_table(cu.HEAD, symbols)]
        out.append("note: a universe's config row pools its symbols' runs (seeds = symbols × seeds)")
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
