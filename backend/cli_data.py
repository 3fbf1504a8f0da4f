"""`wf data ...`: the bar cache (fetch, list, import, show)."""

from __future__ import annotations

from typing import Any

import click

from backend import stages
from backend.cli_common import handle_errors
from backend.errors import InputError
from backend.intervals import INTERVALS


@click.group("data")
def data_group() -> None:
    """The bar cache: fetch, list, import, show."""


@data_group.command("fetch")
@click.argument("symbol")
@click.option(
    "--interval",
    type=click.Choice(["1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h"]),
    default="5m",
    show_default=True,
)
@click.option("--start", required=True, help="YYYY-MM-DD")
@click.option("--end", required=True, help="YYYY-MM-DD (inclusive)")
@click.option("--cache-dir", type=str)
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_fetch(symbol: str, interval: str, start: str, end: str, cache_dir: str | None, debug: bool) -> int:
    """Fetch bars from yfinance into the cache (Yahoo's limits are checked first)."""
    from backend.data import catalog, yahoo
    from backend.windows import parse_day

    lo, hi = parse_day(start, "--start"), parse_day(end, "--end")
    frame, meta = yahoo.load(
        symbol, "60m" if interval == "1h" else interval, lo, hi, catalog.cache_dir(cache_dir), "America/New_York"
    )
    how = "from the cache" if meta.get("cache_hit") else "fetched"
    stages.emit(
        True,
        "Data",
        f"{symbol.upper()} {interval}: {len(frame):,} bars {how}, {frame.index[0]} -> "
        f"{frame.index[-1]} ({catalog.cache_dir(cache_dir)})",
    )
    return 0


@data_group.command("list")
@click.option("--cache-dir", type=str)
@click.option("--json", "as_json", is_flag=True)
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_list(cache_dir: str | None, as_json: bool, debug: bool) -> int:
    """List cached symbols and intervals."""
    from backend.data import catalog
    from backend.jsonio import dumps

    rows = catalog.list_cache(catalog.cache_dir(cache_dir))
    if as_json:
        print(dumps(rows), end="")
        return 0
    print(f"{'symbol':<8}{'interval':<10}{'rows':>9}  {'first bar':<27}{'last bar':<27}source")
    for r in rows:
        print(
            f"{r['symbol']:<8}{r['interval']:<10}{r['rows']:>9,}  {r['first_bar']:<27}{r['last_bar']:<27}{r['source']}"
        )
    if not rows:
        print(f"(no cached bars in {catalog.cache_dir(cache_dir)})")
    return 0


@data_group.command("import")
@click.argument("file")
@click.option("--symbol", required=True)
@click.option("--interval", type=click.Choice(INTERVALS), required=True)
@click.option("--cache-dir", type=str)
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_import(file: str, symbol: str, interval: str, cache_dir: str | None, debug: bool) -> int:
    """Normalise a broker/vendor CSV or Parquet into the cache."""
    from backend.data import catalog

    m = catalog.import_file(file, symbol, interval, catalog.cache_dir(cache_dir))
    rep = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["import_report"].items() if v)
    stages.emit(
        True,
        "Data",
        f"imported {m['rows']:,} bars of {m['symbol']} {interval} ({m['first_bar']} -> "
        f"{m['last_bar']}){'; ' + rep if rep else ''}",
    )
    return 0


@data_group.command("show")
@click.argument("symbol")
@click.option("--source", type=click.Choice(["sample", "file", "yfinance", "synthetic"]))
@click.option("--data", type=str, help="CSV/Parquet file (implies --source file).")
@click.option("--interval", type=click.Choice(INTERVALS))
@click.option("--cache-dir", type=str)
@click.option("--start")
@click.option("--end")
@click.option("--debug", is_flag=True)
@handle_errors("Data")
def data_show(symbol: str, **kw: Any) -> int:
    """Range, sessions, gaps and the validation report of a symbol."""
    from backend.config import DataConfig
    from backend.data import catalog
    from backend.data.loader import resolve_source
    from backend.jsonio import dumps
    from backend.windows import parse_day

    fields: dict[str, Any] = {"symbol": symbol}
    for key in ("source", "interval", "cache_dir"):
        if kw.get(key):
            fields[key] = kw[key]
    if kw.get("data"):
        fields.update(source="file", path=kw["data"])
    if kw.get("start"):
        fields["start"] = parse_day(kw["start"], "--start")
    if kw.get("end"):
        fields["end"] = parse_day(kw["end"], "--end")
    cfg = DataConfig(**fields)
    if resolve_source(cfg) == "yfinance" and not (kw.get("start") and kw.get("end")):
        raise InputError("wf data show for a yfinance symbol needs --start and --end")
    info = catalog.show(cfg)
    print(dumps(info), end="")
    return 0
