"""Universes in `wf compare`: the rows of a universe folder and the per-symbol / cross-symbol table.

A universe folder (``wf run --symbols``, summary ``kind: universe``) gives one member row per symbol (per seed
with ``--seeds``), each marked with ``symbol``, ``universe`` (the folder) and ``universe_member`` (its name; in a
sweep the member). :func:`universe_body` gives, per universe, one line per symbol (stitched out-of-sample Sharpe
and return, buy-and-hold's, whether it beat it) and the cross-symbol line: the mean of the symbols' stitched
Sharpe, the mean and IQM of window Sharpe over symbol × window with its stratified bootstrap CI, and how many
symbols beat their buy-and-hold. :func:`universe_selection` builds a sweep's config × unit matrix with
symbol × window units (``SPY/w01`` …) for :func:`backend.evaluation.selection.selection_statistics`.
Part of :mod:`backend.studies.compare`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from backend.core.jsonio import load_json
from backend.core.stages import fmt_num, fmt_pct
from backend.core.status import Status
from backend.evaluation.documents import DocumentState, SelectionDocument
from backend.evaluation.selection import (
    SCHEMA_VERSION,
    MemberReturns,
    config_name,
    load_member_returns,
    selection_statistics,
)
from backend.run import universe as uv
from backend.studies.compare_rows import member_row, seed_rows


def universe_rows(folder: Path, source: str, keep_stats: bool = False) -> list[dict[str, Any]]:
    """The member rows of a universe folder: one per symbol run (per seed of a multi-seed symbol).

    ``keep_stats``: leave each row's ``_stats`` for :func:`backend.studies.compare.sweep_statistics` (a sweep).
    """
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
            found = [{"name": f"{folder.name}/{symbol}", "path": str(sym_dir), "status": Status.FAILED, "seed": None}]
        for r in found:
            r.update(source=source, symbol=symbol, universe=str(folder), universe_member=folder.name)
            if not keep_stats:
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


TITLE = (
    "Symbols — per symbol (stitched out-of-sample, mean over seeds) and across symbols (ALL: mean of the "
    "symbols' Sharpe; window Sharpe over symbol × window, IQM with a stratified bootstrap CI, strata = symbols)"
)


def universe_body(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Per universe in the rows: one line per symbol and the cross-symbol line ([] without universes).

    Printed under :data:`TITLE` with :data:`HEAD` by :func:`backend.studies.compare_tables.format_table`.
    """
    folders = list(dict.fromkeys(str(r["universe"]) for r in rows if r.get("universe")))
    body = []
    for folder in folders:
        cross = cross_symbol_of(Path(folder))
        if cross is None:
            continue
        name = Path(folder).name
        for symbol, e in (cross.get("symbols") or {}).items():
            body.append(_symbol_line(name, symbol, e))
        body.append(_cross_line(name, cross))
    return body


def universe_returns(rows: list[dict[str, Any]]) -> tuple[MemberReturns, list[dict[str, Any]], list[str]]:
    """The sweep's universe rows as one matrix whose unit is symbol × window.

    Rows (``<member>/<SYMBOL>``, with ``universe_member`` and ``symbol``) are read per symbol and aligned across
    members on that symbol's shared bars; the symbols are then stacked: ``returns`` is indexed by (symbol,
    timestamp) with one column per member (config × seed), ``buy_and_hold`` is each symbol's own, and
    ``window_sharpes`` has one row per unit ``SYMBOL/wid``. A member lacking a symbol is left out (a warning).
    Returns the matrix, the members (name, config, seed) and the warnings.
    """
    done = [r for r in rows if r.get("status") == Status.COMPLETED and r.get("path") and r.get("universe_member")]
    symbols = list(dict.fromkeys(str(r["symbol"]) for r in done))
    per: dict[str, MemberReturns] = {}
    warns = [f"{r.get('name')}: status {r.get('status')}; left out" for r in rows if r not in done]
    for sym in symbols:
        per[sym] = load_member_returns(
            {str(r["universe_member"]): Path(str(r["path"])) for r in done if str(r["symbol"]) == sym}
        )
        warns += [f"{n}/{sym}: not loaded: {why}" for n, why in per[sym].skipped.items()]
    names = list(dict.fromkeys(str(r["universe_member"]) for r in done))
    keep = [n for n in names if all(n in per[sym].returns.columns for sym in symbols)]
    warns += [f"{n}: lacks some symbol's returns; left out of the selection" for n in names if n not in keep]
    out = MemberReturns(pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype=object), pd.DataFrame())
    if not keep or not symbols:
        return out, [], warns
    out.returns = pd.concat({sym: per[sym].returns[keep] for sym in symbols}, names=["symbol", "timestamp"])
    out.buy_and_hold = pd.concat({sym: per[sym].buy_and_hold for sym in symbols}, names=["symbol", "timestamp"])
    out.window = pd.concat({sym: sym + "/" + per[sym].window.astype(str) for sym in symbols})
    sharpes = []
    for sym in symbols:
        ws = per[sym].window_sharpes.reindex(columns=keep)
        ws.index = [f"{sym}/{wid}" for wid in ws.index]
        sharpes.append(ws)
    out.window_sharpes = pd.concat(sharpes)
    out.dropped_bars = sum(per[sym].dropped_bars for sym in symbols)
    first = {str(r["universe_member"]): r for r in done}
    members = [{"name": n, "config": config_name(first[n]), "seed": first[n].get("seed")} for n in keep]
    return out, members, warns


def universe_selection(rows: list[dict[str, Any]], seed: int = 0, **kwargs: Any) -> SelectionDocument:
    """:func:`backend.evaluation.selection.selection_statistics` of a sweep of universes, unit = symbol × window.

    The members are config × seed; each one's series is its symbols' test bars stacked (SPY's, then QQQ's …), so
    PBO's blocks, SPA/StepM's bootstrap and the IQM / P(A > B) run over symbol × window units ("SPY/w01" …).
    Never raises: an unexpected error becomes ``status: failed`` (as :func:`selection_from_rows`).
    """
    try:
        data, members, warns = universe_returns(rows)
        doc = selection_statistics(
            members,
            data.returns,
            {"buy_and_hold": data.buy_and_hold} if len(data.buy_and_hold) else {},
            data.window_sharpes,
            seed=seed,
            **kwargs,
        )
        doc["warnings"] = [*warns, *doc.get("warnings", [])]
        doc["unit"] = "symbol × window"
        doc["units"] = [str(u) for u in data.window_sharpes.index]
        doc["alignment"] = {"n_bars": len(data.returns), "dropped_bars": data.dropped_bars}
        return doc
    except Exception as e:  # the sweep's boundary: its members' results must still be written
        warnings.warn(f"selection statistics failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
        return {"schema_version": SCHEMA_VERSION, "status": DocumentState.FAILED, "reason": f"{type(e).__name__}: {e}"}
