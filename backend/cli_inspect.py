"""Commands that read finished runs and sweeps: `wf compare` (and the inspection commands beside it)."""

from __future__ import annotations

import click

from backend.cli_common import handle_errors


@click.command("compare")
@click.argument("folders", nargs=-1, required=True)
@click.option("--sort", "sort_key", default="oos_sharpe", show_default=True, help="Column to sort by.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--debug", is_flag=True)
@handle_errors("Compare")
def compare_command(folders: tuple[str, ...], sort_key: str, as_json: bool, debug: bool) -> int:
    """Compare run or sweep folders in one table, sorted by out-of-sample Sharpe."""
    from backend import compare
    from backend.jsonio import dumps

    rows = compare.sort_rows(compare.collect(list(folders)), sort_key)
    print(dumps(rows) if as_json else compare.format_table(rows), flush=True)
    return 0
