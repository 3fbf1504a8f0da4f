"""Universes in `wf compare`: the rows of a universe folder and the per-symbol / cross-symbol table.

A universe folder (``wf run --symbols``, summary ``kind: universe``) gives one member row per symbol (per seed
with ``--seeds``), each marked with ``symbol``, ``universe`` (the folder) and ``universe_member`` (its name; in a
sweep the member). :func:`universe_table` prints, per universe, one row per symbol (stitched out-of-sample Sharpe
and return, buy-and-hold's, whether it beat it) and the cross-symbol row: the mean of the symbols' stitched
Sharpe, the mean and IQM of window Sharpe over symbol × window with its stratified bootstrap CI, and how many
symbols beat their buy-and-hold. Part of :mod:`backend.studies.compare`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.core.jsonio import load_json
from backend.run import universe as uv
from backend.studies.compare_rows import member_row, seed_rows
from backend.studies.compare_tables import render_table


def universe_rows(folder: Path, source: str) -> list[dict[str, Any]]:
    """The member rows of a universe folder: one per symbol run (per seed of a multi-seed symbol)."""
    top = load_json(folder / "summary.json", "summary")
    rows: list[dict[str, Any]] = []
    for run in top.get("runs", []):
        sym_dir = folder / str(run.get("path") or run.get("symbol"))
        symbol = str(run.get("symbol"))
        path = sym_dir / "summary.json"
        if path.exists() and load_json(path, "summary").get("kind") == "multi_seed":
            found = seed_rows(sym_dir, source)
            for r in found:
                r["name"] = f"{folder.name}/{r['name']}"
        elif path.exists():
            found = [member_row(path, f"{folder.name}/{symbol}")]
        else:
            found = [{"name": f"{folder.name}/{symbol}", "path": str(sym_dir), "status": "failed", "seed": None}]
        for r in found:
            r.update(source=source, symbol=symbol, universe=str(folder), universe_member=folder.name)
            r.pop("_stats", None)
            r.setdefault("dsr", None)
            r.setdefault("dsr_n_trials", None)
        rows.extend(found)
    return rows


def cross_symbol_of(folder: Path) -> dict[str, Any] | None:
    """The universe's cross-symbol aggregate: its summary's, else computed from its symbol folders."""
    try:
        top = load_json(folder / "summary.json", "summary")
    except Exception:
        return None
    if top.get("cross_symbol"):
        return top["cross_symbol"]
    runs = [r for r in top.get("runs", []) if isinstance(r, dict) and r.get("symbol")]
    return uv.cross_symbol(folder, [{"symbol": r["symbol"], "path": r.get("path") or r["symbol"]} for r in runs])


HEAD: list[tuple[str, str]] = [
    ("universe", "<"),
    ("symbol", "<"),
    ("runs", ">"),
    ("windows", ">"),
    ("OOS Sharpe", ">"),
    ("OOS return", ">"),
    ("B&H Sharpe", ">"),
    ("B&H return", ">"),
    ("beat B&H", ">"),
    ("mean win. Sh", ">"),
    ("IQM win. Sh [95% CI]", ">"),
]


def _symbol_line(name: str, symbol: str, e: dict[str, Any]) -> list[str]:
    from backend.core.stages import fmt_num, fmt_pct

    scores = [x for xs in (e.get("window_sharpes") or {}).values() for x in xs]
    beat = e.get("beats_buy_and_hold")
    return [
        name,
        symbol,
        str(e.get("runs", "—")),
        str(len(e.get("window_sharpes") or {})),
        fmt_num(e.get("oos_sharpe")),
        fmt_pct(e.get("oos_total_return")),
        fmt_num(e.get("buy_and_hold_sharpe")),
        fmt_pct(e.get("buy_and_hold_total_return")),
        "—" if beat is None else ("yes" if beat else "no"),
        fmt_num(sum(scores) / len(scores)) if scores else "—",
        "",
    ]


def _cross_line(name: str, cross: dict[str, Any]) -> list[str]:
    from backend.core.stages import fmt_num

    ws = cross.get("window_sharpe") or {}
    iqm = fmt_num(ws.get("iqm"))
    if ws.get("ci_low") is not None:
        iqm += f" [{fmt_num(ws['ci_low'])}, {fmt_num(ws['ci_high'])}]"
    return [
        name,
        f"ALL ({cross.get('n_symbols', 0)} symbols)",
        str(sum(int(e.get("runs") or 0) for e in (cross.get("symbols") or {}).values())),
        f"{ws.get('n_scores', 0)} sym×win",
        fmt_num(cross.get("oos_sharpe_mean")) + " mean",
        "",
        "",
        "",
        f"{cross.get('beat_buy_and_hold', 0)}/{cross.get('symbols_compared_with_buy_and_hold', 0)}",
        fmt_num(ws.get("mean")),
        iqm,
    ]


def universe_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per universe in the rows: one line per symbol and the cross-symbol line ([] without universes)."""
    folders = list(dict.fromkeys(str(r["universe"]) for r in rows if r.get("universe")))
    if not folders:
        return []
    body = []
    for folder in folders:
        cross = cross_symbol_of(Path(folder))
        if cross is None:
            continue
        name = Path(folder).name
        for symbol, e in (cross.get("symbols") or {}).items():
            body.append(_symbol_line(name, symbol, e))
        body.append(_cross_line(name, cross))
    if not body:
        return []
    return [
        "Symbols — per symbol (stitched out-of-sample, mean over seeds) and across symbols (ALL: mean of the "
        "symbols' Sharpe; window Sharpe over symbol × window, IQM with a stratified bootstrap CI, strata = symbols)",
        *render_table(HEAD, body),
    ]
