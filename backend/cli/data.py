"""`wf data ...`: the bar cache (fetch, list, import, show, delete)."""

from __future__ import annotations

from typing import Any

import click

from backend.cli.common import StageGroup, handle_errors
from backend.config.models import DATA_SOURCES, DataConfig
from backend.core import stages
from backend.core.errors import EXIT_OK, InputError
from backend.core.intervals import INTERVALS
from backend.core.jsonio import dumps


@click.group("data", cls=StageGroup)
def data_group() -> None:
    """The bar cache: fetch, list, import, show, delete."""


@data_group.command("fetch")
@click.argument("symbol")
@click.option("--interval", type=click.Choice(INTERVALS), default="5m", show_default=True)
@click.option("--start", required=True, help="First day, ISO date YYYY-MM-DD.")
@click.option("--end", required=True, help="Last day, ISO date YYYY-MM-DD (inclusive).")
@click.option("--cache-dir", type=str, help="Cache folder (default: $WF_CACHE_DIR/bars or the user's cache dir).")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_fetch(symbol: str, interval: str, start: str, end: str, cache_dir: str | None, debug: bool) -> int:
    """Fetch bars from yfinance into the cache (Yahoo's limits are checked first)."""
    from backend.data import cache, catalog, yahoo  # lazy: wf --help loads no numpy/pandas
    from backend.walkforward.windows import parse_day  # lazy: wf --help loads no numpy/pandas

    symbol = cache.check_symbol(symbol, "SYMBOL")
    lo, hi = parse_day(start, "--start"), parse_day(end, "--end")
    assert lo is not None and hi is not None
    if hi < lo:
        raise InputError(f"--end {end} is before --start {start}; swap them")
    folder = catalog.cache_dir(cache_dir)
    frame, meta = yahoo.load(symbol, interval, lo, hi, folder, "America/New_York")
    how = "from the cache" if meta.get("cache_hit") else "fetched"
    stages.emit(
        True,
        "Data",
        f"{symbol} {interval}: {len(frame):,} bars {how}, {frame.index[0]} -> {frame.index[-1]} ({folder})",
    )
    return EXIT_OK


@data_group.command("list")
@click.option("--cache-dir", type=str, help="Cache folder (default: $WF_CACHE_DIR/bars or the user's cache dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_list(cache_dir: str | None, as_json: bool, debug: bool) -> int:
    """List the bundled sample and the cached symbols and intervals (each entry verified)."""
    from backend.data import catalog  # lazy: wf --help loads no numpy/pandas

    folder = catalog.cache_dir(cache_dir)
    rows = catalog.list_cache(folder)
    if as_json:
        print(dumps(rows), end="")
        return EXIT_OK
    print(f"{'symbol':<10}{'interval':<9}{'source':<9}{'rows':>10}  {'first bar':<26}{'last bar':<26}status")
    for r in rows:
        n = f"{r['rows']:,}" if isinstance(r["rows"], int) else "-"
        print(
            f"{r['symbol']:<10}{r['interval']:<9}{r['source']:<9}{n:>10}  {r['first_bar'] or '-'!s:<26}"
            f"{r['last_bar'] or '-'!s:<26}{r['status']}"
        )
    for r in rows:
        if r["problem"]:
            print(f"  {r['symbol']} {r['interval']} {r['source']}: {r['problem']}")
    if not any(r["source"] != "sample" for r in rows):
        print(f"(no cached bars in {folder})")
    return EXIT_OK


@data_group.command("import")
@click.argument("file")
@click.option("--symbol", required=True, help="Symbol to file the bars under (runs use it with --symbol).")
@click.option("--interval", type=click.Choice(INTERVALS), required=True, help="The bars' interval, as in the file.")
@click.option(
    "--timezone",
    default="America/New_York",
    show_default=True,
    help="Time zone of naive timestamps in the file (timestamps with an offset are exact).",
)
@click.option("--cache-dir", type=str, help="Cache folder (default: $WF_CACHE_DIR/bars or the user's cache dir).")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_import(file: str, symbol: str, interval: str, timezone: str, cache_dir: str | None, debug: bool) -> int:
    """Normalise a broker/vendor CSV or Parquet into the cache (merged with earlier imports of the symbol)."""
    from backend.data import catalog  # lazy: wf --help loads no numpy/pandas

    _check_timezone(timezone)
    m = catalog.import_file(file, symbol, interval, catalog.cache_dir(cache_dir), timezone)
    rep = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["import_report"].items() if isinstance(v, int) and v)
    notes = f"; notes: {'; '.join(m['notes'])}" if m["notes"] else ""
    stages.emit(
        True,
        "Data",
        f"imported {m['import_report']['file_rows']:,} bars of {m['symbol']} {interval}; the entry holds {m['rows']:,} "
        f"({m['first_bar']} -> {m['last_bar']}); {rep}{notes}",
    )
    return EXIT_OK


@data_group.command("delete")
@click.argument("symbol")
@click.option("--interval", type=click.Choice(INTERVALS), required=True)
@click.option("--import", "imported", is_flag=True, help="Delete the imported entry (default: the yfinance entry).")
@click.option("--cache-dir", type=str, help="Cache folder (default: $WF_CACHE_DIR/bars or the user's cache dir).")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_delete(symbol: str, interval: str, imported: bool, cache_dir: str | None, debug: bool) -> int:
    """Delete one cache entry (e.g. a corrupt one) so it can be fetched or imported again."""
    from backend.data import catalog  # lazy: wf --help loads no numpy/pandas

    removed = catalog.delete(catalog.cache_dir(cache_dir), symbol, interval, "import" if imported else "yfinance")
    what = ", ".join(str(p) for p in removed) if removed else "nothing (no such entry)"
    stages.emit(True, "Data", f"deleted {what}")
    return EXIT_OK


def _check_timezone(tz: str) -> None:
    import pandas as pd  # lazy: wf --help loads no numpy/pandas

    try:
        pd.Timestamp("2020-01-01", tz=tz)
    except Exception as e:
        raise InputError(f"--timezone {tz!r} is not a known time zone (e.g. America/New_York, UTC)") from e


@data_group.command("show")
@click.argument("symbol")
@click.option("--source", type=click.Choice(DATA_SOURCES))
@click.option("--data", type=str, help="CSV/Parquet file (implies --source file).")
@click.option("--interval", type=click.Choice(INTERVALS))
@click.option("--calendar", type=str, help="exchange_calendars name, 24/7 or 24/5 (default XNYS).")
@click.option("--session-cut", type=str, help="24/7 and 24/5: HH:MM in --timezone where sessions end.")
@click.option("--timezone", type=str, help="Exchange time zone; naive file timestamps are read in it.")
@click.option("--cache-dir", type=str)
@click.option("--start", help="First session, ISO date YYYY-MM-DD.")
@click.option("--end", help="Last session, ISO date YYYY-MM-DD (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON instead of the table.")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_show(symbol: str, as_json: bool, **kw: Any) -> int:
    """Range, sessions, gaps and the validation report of a symbol."""
    from backend.data import catalog  # lazy: wf --help loads no numpy/pandas
    from backend.data.loader import resolve_source  # lazy: wf --help loads no numpy/pandas
    from backend.walkforward.windows import parse_day  # lazy: wf --help loads no numpy/pandas

    fields: dict[str, Any] = {"symbol": symbol}
    for key in ("source", "interval", "cache_dir", "calendar", "session_cut", "timezone"):
        if kw.get(key):
            fields[key] = kw[key]
    if kw.get("timezone"):
        _check_timezone(kw["timezone"])
    if kw.get("data"):
        fields.update(source="file", path=kw["data"])
    if kw.get("start"):
        fields["start"] = parse_day(kw["start"], "--start")
    if kw.get("end"):
        fields["end"] = parse_day(kw["end"], "--end")
    try:
        cfg = DataConfig(**fields)
    except ValueError as e:
        raise InputError(f"wf data show: {str(e).splitlines()[0]}") from e
    if resolve_source(cfg) == "yfinance" and not (kw.get("start") and kw.get("end")):
        raise InputError(
            f"wf data show {symbol}: yfinance bars need --start and --end (or import the bars: wf data import)"
        )
    info = catalog.show(cfg)
    print(dumps(info) if as_json else show_table(info), end="" if as_json else "\n")
    return EXIT_OK


def show_table(info: dict[str, Any]) -> str:
    """`wf data show` as a readable table."""
    prov, rep, ann = info["provenance"], info["report"], info["annualisation"]
    short = info["short_sessions"]
    first_short = ", ".join(f"{d} ({n})" for d, n in list(short.items())[:3])
    counted = ", ".join(
        f"{k.replace('_', ' ')} {v:,}"
        for k, v in rep.items()
        if isinstance(v, int) and v and k not in ("bars", "sessions", "input_rows", "session_rows")
    )
    rows = [
        ("symbol", f"{prov['symbol']} {prov['interval']}"),
        ("source", f"{prov['source']}: {prov.get('origin', '')}"),
        ("adjustment", str(prov.get("adjustment"))),
        ("bars", f"{rep['bars']:,} in {rep['sessions']:,} sessions ({rep['input_rows']:,} rows read)"),
        ("range", f"{prov['first_bar']} -> {prov['last_bar']}"),
        (
            "sessions",
            f"{info['first_session']} -> {info['last_session']}, {prov['calendar']}, end at {prov['session_end']}",
        ),
        (
            "per session",
            f"median {info['bars_per_session_median']:g} bars; {len(short):,} shorter"
            + (f" (first: {first_short})" if short else ""),
        ),
        (
            "annualised",
            f"{ann['bars_per_year']:,} bars a year ({ann['sessions_per_year']} sessions x "
            f"{ann['bars_per_session']} bars)",
        ),
        ("report", counted or "nothing to report"),
        ("data hash", str(prov["content_hash"])),
    ]
    if prov.get("cache"):
        c = prov["cache"]
        rows.append(("cache", str(c.get("file") or f"fetched {c.get('fetched_at')}")))
    rows += [("note", n) for n in rep.get("notes", [])]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
