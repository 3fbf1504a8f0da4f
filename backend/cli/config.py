"""`wf config show | schema | docs`: the config's fields and their meaning, from the models' docstrings."""

from __future__ import annotations

import click

from backend.cli.common import StageGroup, handle_errors
from backend.config.docs import DOCS_PAGE, render_markdown, schema, show
from backend.config.models import config_dict, load_config
from backend.core.errors import EXIT_OK
from backend.core.jsonio import dumps, write_text


@click.group("config", cls=StageGroup)
def config_group() -> None:
    """Config fields and their meaning (one source: the models' field docstrings)."""


@config_group.command("show")
@click.option("--config", type=str, help="Config JSON (default: configs/sac_intraday.json of the working tree).")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Override a config value.")
@click.option("--json", "as_json", is_flag=True, help="The resolved config as JSON.")
@click.option("--debug", is_flag=True)
@handle_errors("Config")
def show_command(config: str | None, sets: tuple[str, ...], as_json: bool, debug: bool) -> int:
    """Print a resolved config, every value with its meaning."""
    loaded = load_config(config, overrides=list(sets))
    if as_json:
        print(dumps(config_dict(loaded.config)), end="")
    else:
        print(f"# {loaded.path}")
        print(show(loaded.config))
    return EXIT_OK


@config_group.command("schema")
@click.option("--debug", is_flag=True)
@handle_errors("Config")
def schema_command(debug: bool) -> int:
    """Print the JSON Schema of a config file (with every field's description)."""
    print(dumps(schema()), end="")
    return EXIT_OK


@config_group.command("docs")
@click.option("--write", is_flag=True, help="Rewrite docs/config.md.")
@click.option("--debug", is_flag=True)
@handle_errors("Config")
def docs_command(write: bool, debug: bool) -> int:
    """Print (or --write) docs/config.md, generated from the field docstrings."""
    text = render_markdown()
    if write:
        write_text(DOCS_PAGE, text)
        print(f"wrote {DOCS_PAGE}")
    else:
        print(text, end="")
    return EXIT_OK
