"""Commands that read finished runs and sweeps: `wf compare`, `wf ls` and `wf diff`.

Nothing here trains or writes: rows come from summary.json / sweep.json / config.resolved.json
(:mod:`backend.studies.compare`), so every command works on any finished (or partly finished) folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from backend.cli.common import StageCommand, handle_errors
from backend.core.errors import EXIT_OK, InputError
from backend.core.jsonio import dumps, load_json
from backend.core.status import Status
from backend.studies import compare
from backend.studies.compare import (
    SORT_KEYS,
    add_config_columns,
    config_diff,
    config_of,
    is_finite,
    member_row,
    plus_minus,
    render_table,
    resolved_config,
    seed_rows,
    show_value,
)


@click.command("compare", cls=StageCommand)
@click.argument("folders", nargs=-1, required=True)
@click.option(
    "--sort",
    "sort_key",
    type=click.Choice(SORT_KEYS),
    default="oos_sharpe",
    show_default=True,
    help="Column to sort members (and configs, by their mean over seeds) by.",
)
@click.option("--long", "long_format", is_flag=True, help="One row per member × seed × window (with --csv or --json).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (pandas.read_csv reads it as it is).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@handle_errors("Compare")
def compare_command(
    folders: tuple[str, ...], sort_key: str, long_format: bool, as_csv: bool, as_json: bool, debug: bool
) -> int:
    """Compare run, multi-seed run and sweep folders: configs (mean ± sd over seeds, CI) and members."""
    if as_csv and as_json:
        raise InputError("--csv and --json exclude each other; pass one")
    if long_format and not (as_csv or as_json):
        raise InputError(
            "--long is a file format: pass --csv or --json with it (e.g. wf compare --long --csv X > x.csv)"
        )
    rows = compare.sort_rows(compare.collect(list(folders)), sort_key)
    if long_format:
        long = compare.long_rows(rows)
        print(compare.csv_text(long) if as_csv else dumps(long), end="" if as_csv else "\n", flush=True)
    elif as_csv:
        print(compare.csv_text(rows), end="", flush=True)
    elif as_json:
        print(dumps(rows), flush=True)
    else:
        print(compare.format_table(rows, sort_key), flush=True)
        _print_selections(folders)
    return EXIT_OK


def _print_selections(folders: tuple[str, ...]) -> None:
    """The selection line of every sweep folder given (which config, how sure)."""
    from backend.studies.sweep import print_selection  # lazy: wf --help loads no numpy/pandas

    for folder in folders:
        path = Path(folder) / "sweep.json"
        if path.exists():
            sel = load_json(path, "sweep").get("selection")
            if sel:
                if len(folders) > 1:
                    print(f"{folder}:", end=" ")
                print_selection(sel)


@click.command("ls", cls=StageCommand)
@click.argument("folder", required=False, default="runs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@handle_errors("List")
def ls_command(folder: str, as_json: bool, debug: bool) -> int:
    """List the runs, multi-seed runs and sweeps under FOLDER (default runs/)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"FOLDER {folder}: not a folder; pass the folder that holds your runs (default runs/)")
    entries = find_runs(root)
    if as_json:
        print(dumps(entries), flush=True)
    elif not entries:
        print(f"no runs or sweeps under {root} (no summary.json or sweep.json)")
    else:
        print(ls_table(entries, root), flush=True)
    return EXIT_OK


@click.command("diff", cls=StageCommand)
@click.argument("run_a")
@click.argument("run_b")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@handle_errors("Diff")
def diff_command(run_a: str, run_b: str, debug: bool) -> int:
    """Show what differs between two runs: config keys, data and windows hashes, window spans."""
    for name, folder in (("RUN_A", run_a), ("RUN_B", run_b)):
        if not (Path(folder) / "summary.json").exists():
            raise InputError(f"{name} {folder}: not a run folder (no summary.json)")
    print("\n".join(diff_lines(Path(run_a), Path(run_b))), flush=True)
    return EXIT_OK


# ----------------------------------------------------------------------------- wf ls


def find_runs(root: Path) -> list[dict[str, Any]]:
    """Runs, multi-seed runs and sweeps under ``root`` (a sweep's members and a run's seeds are not listed
    apart): kind, path, status, date, config, seeds, windows, steps and out-of-sample Sharpe."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if "sweep.json" in files:
            found.append(_sweep_entry(here))
            dirs[:] = []
        elif "summary.json" in files:
            try:
                s = load_json(here / "summary.json", "summary")
            except InputError as e:
                found.append({"kind": "run", "path": str(here), "status": f"unreadable ({e})"})
            else:
                kind = s.get("kind")
                entry = {"multi_seed": _seeds_entry, "universe": _universe_entry}.get(str(kind), _run_entry)
                found.append(entry(here, s))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tensorboard")
    return sorted(found, key=lambda e: e["path"])


def _run_entry(folder: Path, s: dict[str, Any]) -> dict[str, Any]:
    row = member_row(folder / "summary.json")
    return {
        "kind": "run",
        "path": str(folder),
        "status": s.get("status"),
        "date": str(s.get("started_at") or "")[:16].replace("T", " ") or None,
        "config": row["config"],
        "seeds": str(row.get("seed")) if row.get("seed") is not None else None,
        "windows": f"{row['windows_completed']}/{row['windows']}",
        "steps": row.get("steps"),
        "oos_sharpe": row.get("oos_sharpe"),
        "oos_sharpe_sd": None,
        "collapsed_windows": row.get("collapsed_windows"),
    }


def _seeds_entry(folder: Path, s: dict[str, Any]) -> dict[str, Any]:
    rows = seed_rows(folder, str(folder))
    add_config_columns(rows)
    first = rows[0] if rows else {}
    return {
        "kind": "seeds",
        "path": str(folder),
        "status": s.get("status"),
        "date": str(first.get("started_at") or "")[:16].replace("T", " ") or None,
        "config": first.get("config"),
        "seeds": ",".join(str(x) for x in s.get("seeds", [])),
        "windows": f"{first.get('windows_completed', 0)}/{first.get('windows', 0)}" if first else None,
        "steps": first.get("steps"),
        "oos_sharpe": first.get("config_sharpe_mean"),
        "oos_sharpe_sd": first.get("config_sharpe_sd"),
        "collapsed_windows": first.get("config_collapsed_windows"),
    }


def _universe_entry(folder: Path, s: dict[str, Any]) -> dict[str, Any]:
    """A universe (wf run --symbols) in one line: its symbols and the mean of their stitched Sharpe."""
    cross = s.get("cross_symbol") or {}
    return {
        "kind": "universe",
        "path": str(folder),
        "status": s.get("status"),
        "date": str(s.get("started_at") or "")[:16].replace("T", " ") or None,
        "config": f"{Path(str(s.get('config_path') or '')).stem} on {', '.join(s.get('symbols') or [])}",
        "seeds": ",".join(str(x) for x in s.get("seeds") or []) or None,
        "windows": str((cross.get("window_sharpe") or {}).get("n_scores", "—")) + " sym×win",
        "steps": None,
        "oos_sharpe": cross.get("oos_sharpe_mean"),
        "oos_sharpe_sd": None,
        "collapsed_windows": None,
    }


def _sweep_entry(folder: Path) -> dict[str, Any]:
    """A sweep in one line: members completed, configs, the best config's Sharpe over seeds and its verdict."""
    try:
        doc = load_json(folder / "sweep.json", "sweep")
        members = compare.collect([str(folder)])
    except InputError as e:
        return {"kind": "sweep", "path": str(folder), "status": f"unreadable ({e})"}
    done = [m for m in members if m.get("status") == Status.COMPLETED]
    configs = list(dict.fromkeys(config_of(m) for m in members))
    sel = doc.get("selection") or {}
    scored = [m for m in members if is_finite(m.get("config_sharpe_mean"))]
    best = next((m for m in members if m.get("config_best")), None) or max(
        scored, key=lambda m: m["config_sharpe_mean"], default=None
    )
    dates = sorted(str(m.get("started_at")) for m in members if m.get("started_at"))
    steps = sorted({int(m["steps"]) for m in members if m.get("steps")})
    return {
        "kind": "sweep",
        "path": str(folder),
        "status": f"{len(done)}/{len(members)} completed",
        "date": dates[0][:16].replace("T", " ") if dates else None,
        "config": f"{len(configs)} configs" + (f", best {best['config']}" if best else ""),
        "seeds": ",".join(sorted({str(m.get("seed")) for m in members}, key=lambda x: (len(x), x))),
        "windows": "/".join(sorted({str(m.get("windows")) for m in members if m.get("windows") is not None})) or None,
        "steps": steps[0] if len(steps) == 1 else None,
        "oos_sharpe": best.get("config_sharpe_mean") if best else None,
        "oos_sharpe_sd": best.get("config_sharpe_sd") if best else None,
        "collapsed_windows": sum(int(m.get("collapsed_windows") or 0) for m in members),
        "verdict": sel.get("verdict"),
    }


def ls_table(entries: list[dict[str, Any]], root: Path) -> str:

    head = [
        ("kind", "<"),
        ("path", "<"),
        ("status", "<"),
        ("date", "<"),
        ("config", "<"),
        ("seeds", "<"),
        ("windows", ">"),
        ("steps", ">"),
        ("OOS Sharpe", ">"),
        ("flags", "<"),
    ]
    body = []
    for e in entries:
        try:
            shown = str(Path(e["path"]).relative_to(root)) if Path(e["path"]) != root else "."
        except ValueError:
            shown = e["path"]
        sharpe = plus_minus(e.get("oos_sharpe"), e.get("oos_sharpe_sd")) if e.get("oos_sharpe") is not None else "—"
        flags = []
        if e.get("collapsed_windows"):
            flags.append(f"COLLAPSED windows: {e['collapsed_windows']}")
        if e.get("verdict"):
            flags.append(f"best: {e['verdict']}")
        body.append(
            [
                e["kind"],
                shown,
                str(e.get("status") or "—"),
                str(e.get("date") or "—"),
                str(e.get("config") or "—"),
                str(e.get("seeds") or "—"),
                str(e.get("windows") or "—"),
                f"{e['steps']:,}" if isinstance(e.get("steps"), int) else "—",
                sharpe if e["kind"] != "sweep" else (sharpe + " (best)" if sharpe != "—" else "—"),
                "; ".join(flags),
            ]
        )
    return "\n".join(render_table(head, body))


# ----------------------------------------------------------------------------- wf diff


def run_description(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, resolved config) of a run folder; a multi-seed run is described by its first seed's run."""
    if not (folder / "summary.json").exists():
        raise InputError(f"{folder}: not a run folder (no summary.json)")
    s = load_json(folder / "summary.json", "summary")
    if s.get("kind") == "multi_seed" and s.get("runs"):
        first = folder / str(s["runs"][0]["path"])
        sub = load_json(first / "summary.json", "summary") if (first / "summary.json").exists() else {}
        return {**sub, **{k: v for k, v in s.items() if k in ("seeds", "kind")}}, resolved_config(first)
    return s, resolved_config(folder)


def diff_lines(a: Path, b: Path) -> list[str]:
    """What differs between two runs: config keys, data, windows (spans) and identity fields."""
    sa, ca = run_description(a)
    sb, cb = run_description(b)
    out = [f"A = {a}", f"B = {b}"]
    if not ca or not cb:
        out.append("config: " + ("A" if not ca else "B") + " has no config.resolved.json; configs not compared")
    else:
        d = config_diff(ca, cb, ignore=())
        if d:
            out.append(f"config: {len(d)} key(s) differ")
            width = max(len(k) for k in d)
            out.extend(f"  {k.ljust(width)}  A {show_value(v[0])}  →  B {show_value(v[1])}" for k, v in d.items())
        else:
            out.append("config: identical (config.resolved.json)")
    for key, label in (
        ("data_hash", "data hash"),
        ("windows_hash", "windows hash"),
        ("config_hash", "config hash"),
        ("symbol", "symbol"),
        ("interval", "interval"),
        ("source", "source"),
        ("algorithm", "algorithm"),
        ("seed", "seed"),
        ("seeds", "seeds"),
    ):
        va, vb = sa.get(key), sb.get(key)
        if va is None and vb is None:
            continue
        out.append(f"{label}: " + (f"same ({va})" if va == vb else f"A {va}  →  B {vb}"))
    wa = {
        w["id"]: (w.get("train_start"), w.get("train_end"), w.get("test_start"), w.get("test_end"))
        for w in sa.get("windows", [])
    }
    wb = {
        w["id"]: (w.get("train_start"), w.get("train_end"), w.get("test_start"), w.get("test_end"))
        for w in sb.get("windows", [])
    }
    if wa == wb:
        out.append(f"windows: same {len(wa)} window(s)")
    else:
        out.append(f"windows: A has {len(wa)}, B has {len(wb)}")
        for wid in dict.fromkeys([*wa, *wb]):
            if wa.get(wid) != wb.get(wid):
                out.append(f"  {wid}: A {_span(wa.get(wid))}  →  B {_span(wb.get(wid))}")
    return out


def _span(spans: tuple[Any, ...] | None) -> str:
    if spans is None:
        return "(absent)"
    tr0, tr1, te0, te1 = (str(x)[:16].replace("T", " ") for x in spans)
    return f"train {tr0} → {tr1}, test {te0} → {te1}"
