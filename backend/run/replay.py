"""Body of `wf eval` / `python -m backend.training.walk_forward_eval`: replay a saved agent, checked first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from backend.core import fsguard, stages
from backend.core.errors import EXIT_OK, EvaluationError, InputError
from backend.core.stages import fmt_num, fmt_pct
from backend.features.builtin import compute_features
from backend.run.folder import read_previous
from backend.run.options import SetupOptions
from backend.training import bundle


def _table(doc: dict[str, Any]) -> str:
    rows = [("agent", doc["evaluation"]), *list(doc["baselines"].items())]
    rows += [(f"agent @ {k} costs", v) for k, v in doc["cost_sensitivity"].items() if k != "1x"]
    out = [f"{'':<22}{'return':>10}{'sharpe':>9}{'max DD':>10}{'trades':>8}{'turnover':>10}"]
    for name, m in rows:
        out.append(
            f"{name:<22}{fmt_pct(m['total_return']):>10}{fmt_num(m['sharpe']):>9}"
            f"{fmt_pct(m['max_drawdown']):>10}{m['n_trades']:>8}{fmt_num(m['turnover']):>10}"
        )
    return "\n".join(out)


def replay(
    *,
    model_path: str,
    cache_dir: str | None,
    benchmark: str | None,
    windows: str | None,
    window_id: str | None,
    symbol: str | None,
    source: str | None,
    data: str | None,
    interval: str | None,
    config: str | None,
    sets: tuple[str, ...],
    quiet: bool,
    stochastic: bool,
    output_dir: str | None,
) -> int:
    """`wf eval` (its flags, by name): check the bundle (before any data or torch is loaded), set up its data and
    window, replay it, write and print the result."""
    if output_dir is not None and not output_dir.strip():
        raise InputError("--output-dir is empty; give a folder, or leave it out to write replay/ beside the model")
    model = Path(model_path)
    if not model.exists():
        raise EvaluationError(f"{model}: model file not found; pass the model.zip of a trained window")
    bundle_dir = model.parent
    out, root, what = _output_folder(bundle_dir, output_dir)  # checked before the data are even loaded
    config, windows = _run_files(bundle_dir.parent, config, windows)
    bundle.preflight(bundle_dir, _summary_hashes(bundle_dir.parent, bundle_dir.name))  # a hostile bundle: exit 5 now
    from backend.run.window_setup import setup  # lazy: after the preflight; a refused bundle loads no data code

    opts = SetupOptions(
        symbol=symbol,
        windows=windows,
        config=config,
        source=source,
        data=data,
        interval=interval,
        sets=list(sets),
        stochastic=stochastic,
    )
    s = setup(opts)
    window = _pick_window(s, window_id, bundle_dir.name, windows)
    result, doc = _replay(s, bundle_dir, window, model)
    from backend.evaluation.replay import headline, write_replay_files  # heavy: gymnasium

    fsguard.make_dirs(root, out, what)  # again: a link made meanwhile
    write_replay_files(out, result, s.market, s.timezone, doc, s.cfg.env.initial_capital)
    stages.emit(True, f"Evaluation [{window.id}]", headline(result.evaluation))
    if not quiet:
        print(_table(doc))
    print(f"replay written to {out}")
    return EXIT_OK


def _output_folder(bundle_dir: Path, output_dir: str | None) -> tuple[Path, Path, str]:
    """Where the replay goes, the folder it must stay in, and that folder's name in messages.

    By default ``<bundle>/replay/``, inside the bundle folder: a ``replay`` that is a symbolic link leading
    out of the bundle folder is refused (exit 2, naming it). An --output-dir is the user's folder (a link
    there is followed once, as given). Its three files are replaced by rename, never written through a link.
    """
    if output_dir:
        out = Path(output_dir)
        return out, out, "the --output-dir folder"
    out = bundle_dir / "replay"
    fsguard.check_no_escape(bundle_dir, out, "the bundle folder")
    return out, bundle_dir, "the bundle folder"


def _run_files(run_dir: Path, config: str | None, windows: str | None) -> tuple[str, str]:
    """--config and --windows, defaulting to the run folder's resolved files."""
    resolved = []
    for given, name, flag in (
        (config, "config.resolved.json", "--config"),
        (windows, "windows.resolved.json", "--windows"),
    ):
        if given is None:
            if not (run_dir / name).exists():
                raise InputError(f"no {flag} given and {run_dir / name} does not exist; pass {flag}")
            given = str(run_dir / name)
        resolved.append(given)
    return resolved[0], resolved[1]


def _pick_window(s, window_id: str | None, folder_name: str, windows: str):
    """--window, else the bundle's folder name, else the only window."""
    ids = [w.id for w in s.windows]
    wid = window_id or (folder_name if folder_name in ids else (ids[0] if len(ids) == 1 else None))
    if wid not in ids:
        raise InputError(f"--window {wid!r}: not in {windows} (ids: {', '.join(ids)}); pass --window")
    return s.windows[ids.index(wid)]


def _replay(s, bundle_dir: Path, window, model: Path):
    """The replay (checked against the bundle's metadata and, inside a run folder, its summary) and its document."""
    from backend.evaluation.replay import evaluation_document, replay_bundle  # heavy: gymnasium

    meta = bundle.read_metadata(bundle_dir)
    if meta.get("data_hash") != s.bars.data_hash():
        print(
            f"warning: the data differ from the training data (hash {s.bars.data_hash()} vs "
            f"{meta.get('data_hash')}); metrics will not match the run's",
            file=sys.stderr,
        )
    features = compute_features(s.market, s.cfg.env.features)
    result = replay_bundle(
        bundle_dir,
        s.cfg,
        s.market,
        features,
        window,
        s.periods_per_year,
        benchmark=s.benchmark,
        expected_hashes=_summary_hashes(bundle_dir.parent, bundle_dir.name),
    )
    doc = evaluation_document(result, window, s.market.timestamps, s.timezone)
    doc["model_path"] = str(model)
    return result, doc


def _summary_hashes(run_dir: Path, window_id: str) -> dict[str, str] | None:
    """Inside a run folder, the bundle hashes its summary recorded (the bundle must match them too)."""
    try:
        doc = read_previous(run_dir)
    except InputError as e:
        raise EvaluationError(f"{e}; cannot check the bundle against its run") from e
    for w in (doc or {}).get("windows", []):
        if isinstance(w, dict) and w.get("id") == window_id and isinstance(w.get("bundle"), dict):
            return w["bundle"].get("files")
    return None
