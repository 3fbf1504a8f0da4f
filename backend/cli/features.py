"""``wf features``: every available feature (built-ins, user modules, TA-Lib functions, a file's extra columns)
with its doc and warm-up; with ``--config``/``--windows`` a preview on the first train span. No torch."""

from __future__ import annotations

import json
from pathlib import Path

import click

from backend.cli.common import StageCommand, handle_errors
from backend.config.models import load_config
from backend.core import stages
from backend.core.errors import EXIT_OK, InputError
from backend.run.options import SetupOptions


def _listing(config: str | None, data: str | None, talib_too: bool) -> dict:
    from backend.features import catalog  # lazy: wf --help loads no numpy/pandas
    from backend.features.user import install_entries  # lazy: wf --help loads no numpy/pandas

    doc: dict = {}
    cfg = None
    if config:
        cfg = load_config(config).config
        install_entries(list(cfg.env.feature_modules), Path(config).resolve().parent)
    doc["registered"] = catalog.registered()
    if talib_too:
        try:
            doc["talib"] = catalog.talib_functions()
        except Exception as e:  # the extra is not installed: say so, list the rest
            doc["talib_unavailable"] = str(e)
    path = data or (cfg.data.path if cfg is not None and cfg.data.source in ("file", "auto") else None)
    if path:
        from backend.data import sources  # lazy: wf --help loads no numpy/pandas

        frame = sources.read_bar_file(path, cfg.data.timezone if cfg else "America/New_York").frame
        doc["columns"] = {"file": path, "extra": [c for c in frame.columns if c not in sources.OHLCV]}
    return doc


def _print_listing(doc: dict) -> None:
    print("registered features (use by name):")
    for row in doc["registered"]:
        print(f"  {row['name']:<22}{row['kind']:<10}warm-up {row['warmup']:<28}{row['doc']}")
    if "talib" in doc:
        print(f"TA-Lib functions ({len(doc['talib'])}; talib:FUNC(k=v,...)[.output][/close]):")
        for row in doc["talib"]:
            params = ",".join(f"{k}={v}" for k, v in row["parameters"].items())
            outs = "|".join(row["outputs"])
            print(f"  {row['name']}({params}) -> {outs}  [{row['group']}; warm-up {row['warmup']}] {row['doc']}")
    elif "talib_unavailable" in doc:
        print(f"TA-Lib: unavailable ({doc['talib_unavailable']})")
    if "columns" in doc:
        extra = ", ".join(doc["columns"]["extra"]) or "none"
        print(f"extra columns of {doc['columns']['file']} (column:NAME, list them in data.columns): {extra}")


def _preview(config: str, windows: str) -> dict:
    from backend.features import catalog  # lazy: wf --help loads no numpy/pandas
    from backend.run.window_setup import setup  # lazy: wf --help loads no numpy/pandas

    s = setup(SetupOptions(config=config, windows=windows))
    w = s.windows[0]
    out = catalog.preview(s.market, list(s.cfg.env.features), w.train_start, w.train_end)
    out["window"] = w.id
    return out


def _print_preview(doc: dict) -> None:
    print(f"preview on the train span of {doc['window']} ({doc['bars']:,} bars):")
    print(f"  {'feature':<48}{'NaN share':>10}{'mean':>12}{'std':>12}")
    for row in doc["features"]:
        print(f"  {row['feature']:<48}{row['nan_share']:>10.3f}{row['mean']:>12.4g}{row['std']:>12.4g}")
    print("strongest pairwise correlations:")
    for r, a, b in doc["correlations"]:
        print(f"  {r:+.3f}  {a}  ~  {b}")


@click.command("features", cls=StageCommand)
@click.option("--config", type=str, help="Config JSON: also list its feature_modules' features and file columns.")
@click.option("--windows", type=str, help="With --config: preview the config's features on the first train span.")
@click.option("--data", type=str, help="A bar file whose extra numeric columns to list.")
@click.option("--no-talib", is_flag=True, help="Leave the TA-Lib functions out of the listing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@handle_errors("Features")
def features_command(
    config: str | None, windows: str | None, data: str | None, no_talib: bool, as_json: bool, debug: bool
) -> int:
    """List every available feature with its doc and warm-up, or preview a config's features."""
    if windows:
        if not config:
            raise InputError("wf features --windows needs --config (the features to preview)")
        doc = _preview(config, windows)
        print(json.dumps(doc, indent=2)) if as_json else _print_preview(doc)
        stages.emit(True, "Features", f"{len(doc['features'])} features previewed on window {doc['window']}")
        return EXIT_OK
    doc = _listing(config, data, not no_talib)
    print(json.dumps(doc, indent=2, default=str)) if as_json else _print_listing(doc)
    stages.emit(True, "Features", f"{len(doc['registered'])} registered, {len(doc.get('talib', []))} TA-Lib functions")
    return EXIT_OK
