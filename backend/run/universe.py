"""Universes: `wf run --symbols SPY,QQQ,IWM` (or ``data.symbols``) runs one config on every symbol.

Every symbol is a complete run folder ``OUT/<SYMBOL>/`` (with ``--seeds``: ``OUT/<SYMBOL>/s<seed>/`` under a
multi-seed summary in ``OUT/<SYMBOL>/``), and all their windows are tasks on ONE executor pool, like seeds and
sweep members. Each symbol's data is loaded and hashed on its own (``data.path`` may hold ``{symbol}``); a symbol
whose file is missing stops the command with exit 2 naming it, before any training. ``OUT/summary.json``
(``kind: universe``) lists the symbols' runs and the cross-symbol aggregate (:func:`cross_symbol`): each symbol's
stitched out-of-sample Sharpe, the mean and IQM of window Sharpe over symbol × window with a stratified bootstrap
CI (strata = symbols), and how many symbols beat their buy-and-hold. ``wf sweep`` runs a universe per member
(``SWEEP/<member>/<SYMBOL>/``) through the same :class:`Universe`.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import LoadedConfig, expand_symbol_path
from backend.core import fsguard, stages
from backend.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, FolderError, HarnessError, InputError
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.data.loader import resolve_source
from backend.evaluation.statistics import iqm_ci
from backend.run import executors
from backend.run import folder as rf
from backend.run.dispatch import run_drivers
from backend.run.driver import RunDriver
from backend.run.options import DriverOptions, RunRequest, SetupOptions
from backend.run.seeds import write_multi_seed
from backend.run.window_setup import Setup, dry_run_table, setup, window_setup_detail
from backend.walkforward.windows import check_id

KIND = "universe"
SCHEMA_VERSION = 1
N_BOOT = 2000


# ------------------------------------------------------------------------------------------ set-up


def check_symbol_files(loaded: LoadedConfig) -> None:
    """Every symbol's bar file exists (file source): exit 2 naming the symbol and the path, before any loading."""
    data = loaded.config.data
    if not data.path or resolve_source(data) != "file":
        return
    for symbol in data.symbols:
        path = expand_symbol_path(data.path, symbol)
        if not Path(str(path)).is_file():
            raise InputError(
                f"symbol {symbol}: data.path {data.path!r} -> {path}: file not found; add the file, fix data.path "
                f"(its {{symbol}} is replaced by each symbol), or drop {symbol} from the symbols"
            )


def symbol_setups(opts: SetupOptions, loaded: LoadedConfig) -> list[tuple[str, Setup]]:
    """Window Setup of every symbol (each loads and hashes its own data); an error names its symbol."""
    check_symbol_files(loaded)
    out = []
    for symbol in loaded.config.data.symbols:
        check_id(symbol, "data.symbols", "symbol")
        sub = dataclasses.replace(opts, symbol=symbol, symbols=None)
        try:
            out.append((symbol, setup(sub)))  # --symbol SYMBOL: data.symbols cleared, {symbol} expanded
        except HarnessError as e:
            raise type(e)(f"symbol {symbol}: {e}") from e
    return out


def dry_run(req: RunRequest, loaded: LoadedConfig) -> int:
    """`wf run --symbols ... --dry-run`: every symbol's data and windows, one Window Setup line each."""
    opts = req.driver
    for symbol, s in symbol_setups(req.setup, loaded):
        if not opts.quiet:
            print(f"== {symbol}", flush=True)
            print(dry_run_table(s), flush=True)
        stages.emit(True, "Window Setup", window_setup_detail(s), _name(opts.prefix, symbol))
    return EXIT_OK


def _name(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


# ------------------------------------------------------------------------------------------ the universe


class Universe:
    """One universe folder: a RunDriver per symbol (× seed) on a shared executor, then the top summary.

    Use inside an ``ExitStack``: :meth:`plan` takes the folder locks and returns ``(driver, tasks)`` pairs
    for :func:`backend.run.driver.run_drivers`; :meth:`finish` finishes every driver and writes the summaries.
    """

    def __init__(self, opts: DriverOptions, setups: list[tuple[str, Setup]], seeds: list[int] | None) -> None:
        self.opts, self.setups, self.seeds = opts, setups, seeds
        self.out = rf.check_output_dir(opts.output_dir)
        self.drivers: list[tuple[str, int | None, Any]] = []  # (symbol, seed, RunDriver)
        self.started = rf.now()
        self.status: Status = Status.PENDING

    @property
    def symbols(self) -> list[str]:
        return [sym for sym, _ in self.setups]

    @property
    def unchanged(self) -> bool | None:
        """True when every symbol's run was finished and unchanged (--resume: nothing to do); else None."""
        return True if self.drivers and all(d.unchanged is not None for _, _, d in self.drivers) else None

    @property
    def doc(self) -> dict[str, Any]:
        """What a sweep reads of a member: seconds (the symbols' sum) and every window, ids as SYMBOL/wid."""
        windows = [{**w, "id": f"{sym}/{w.get('id')}"} for sym, _, d in self.drivers for w in d.doc.get("windows", [])]
        seconds = sum(float(d.doc.get("seconds") or 0.0) for _, _, d in self.drivers)
        return {"windows": windows, "seconds": seconds, "status": self.status}

    def plan(self, stack: ExitStack) -> list[tuple[Any, list[Any]]]:
        opts = self.opts
        if opts.overwrite:
            rf.check_clearable(self.out)  # a folder that is not ours: refused before it even gets a lock file
        for symbol in self.symbols:  # a symbol folder that is a link out of the universe folder: refused
            fsguard.check_no_escape(self.out, self.out / symbol, "the universe folder")
        rf.create(self.out)
        stack.enter_context(rf.FolderLock(self.out, "universe"))
        self._refuse_existing()
        if opts.overwrite:
            rf.clear(self.out)  # the previous universe's own entries, symbol folders included
        self._write_top(Status.RUNNING, [{"symbol": s, "path": s, "exit_code": None} for s in self.symbols], None)
        planned = []
        for symbol, s in self.setups:
            seeds: list[int | None] = list(self.seeds) if self.seeds else [None]
            for seed in seeds:
                sub_opts, sub = self._member(symbol, s, seed, stack)
                driver = stack.enter_context(RunDriver(sub_opts, sub, sub_opts.prefix))
                self.drivers.append((symbol, seed, driver))
                planned.append((driver, driver.plan()))
        return planned

    def _refuse_existing(self) -> None:
        path = self.out / "summary.json"
        if not path.exists():
            return
        if not (self.opts.resume or self.opts.overwrite):
            raise FolderError(
                f"--output-dir {self.out}: already holds a run (summary.json); pass --resume to continue it, "
                "--overwrite to replace it, or choose another folder"
            )
        if self.opts.resume:
            try:
                kind = load_json(path, "summary").get("kind")
            except (InputError, AttributeError) as e:
                raise FolderError(f"{path}: unreadable ({e}); pass --overwrite to start over") from e
            if kind != KIND:
                raise FolderError(
                    f"--resume {self.out}: holds a {kind or 'single'} run, not a universe; pass --overwrite to "
                    "replace it, or choose another --output-dir"
                )

    def _member(self, symbol: str, s: Setup, seed: int | None, stack: ExitStack) -> tuple[DriverOptions, Setup]:
        opts = self.opts
        sym_dir = self.out / symbol
        if seed is None:
            return dataclasses.replace(opts, output_dir=str(sym_dir), prefix=_name(opts.prefix, symbol)), s
        if self.seeds and seed == self.seeds[0]:  # the symbol's multi-seed folder: created and locked once
            rf.create(sym_dir)
            stack.enter_context(rf.FolderLock(sym_dir, "multi-seed run"))
        cfg = s.cfg.model_copy(update={"training": s.cfg.training.model_copy(update={"seed": seed})})
        loaded = LoadedConfig(cfg, s.loaded.path, s.loaded.warnings, s.loaded.unmapped, s.loaded.legacy)
        sub = dataclasses.replace(s, loaded=loaded)
        return (
            dataclasses.replace(
                opts, output_dir=str(sym_dir / f"s{seed}"), prefix=_name(opts.prefix, symbol, f"s{seed}")
            ),
            sub,
        )

    def finish(self, interrupted: bool) -> int:
        codes = {(sym, seed): d.finish(interrupted) for sym, seed, d in self.drivers}
        runs = []
        for symbol in self.symbols:
            mine = [(seed, d) for sym, seed, d in self.drivers if sym == symbol]
            if self.seeds:
                seed_runs = [
                    {"seed": seed, "path": f"s{seed}", "exit_code": codes[(symbol, seed)], "config_hash": d.config_hash}
                    for seed, d in mine
                ]
                opts = dataclasses.replace(self.opts, prefix=_name(self.opts.prefix, symbol))
                code = write_multi_seed(
                    self.out / symbol, opts, runs=seed_runs, codes=[r["exit_code"] for r in seed_runs]
                )
            else:
                code = codes[(symbol, None)]
            d = mine[0][1]
            runs.append(
                {
                    "symbol": symbol,
                    "path": symbol,
                    "exit_code": code,
                    "seeds": self.seeds,
                    "config_hash": d.config_hash,
                    "data_hash": d.data_hash,
                }
            )
        status, code = _status([r["exit_code"] for r in runs])
        self.status = status
        self._write_top(status, runs, cross_symbol(self.out, runs))
        return code

    def _write_top(self, status: Status, runs: list[dict[str, Any]], cross: dict[str, Any] | None) -> None:
        s = self.setups[0][1]
        doc = {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "status": status,
            "symbols": self.symbols,
            "seeds": self.seeds,
            "interval": s.cfg.data.interval,
            "source": s.bars.source,
            "config_path": s.loaded.path,
            "runs": runs,
            "aggregate": None,  # no single curve: see cross_symbol
            "cross_symbol": cross,
            "warnings": _warnings(self.out, runs) if cross is not None else [],
            "started_at": self.started,
            "finished_at": None if status == Status.RUNNING else rf.now(),
        }
        write_json(self.out / "summary.json", doc)
        if cross is not None:
            _emit(cross, status, self.out, self.opts.prefix)


def _status(codes: list[int]) -> tuple[Status, int]:
    if EXIT_INTERRUPTED in codes:
        return Status.INTERRUPTED, EXIT_INTERRUPTED
    if all(c == EXIT_OK for c in codes):
        return Status.COMPLETED, EXIT_OK
    if any(c in (EXIT_OK, EXIT_PARTIAL) for c in codes):
        return Status.PARTIAL, EXIT_PARTIAL
    return Status.FAILED, codes[0]


def _warnings(out: Path, runs: list[dict[str, Any]]) -> list[str]:
    found = []
    for r in runs:
        for sm in _symbol_summaries(out / r["path"]):
            found += [f"{r['symbol']}: {w}" for w in sm.get("warnings", [])]
    return found


def _emit(cross: dict[str, Any], status: Status, out: Path, prefix: str) -> None:
    ws = cross["window_sharpe"]
    ci = "" if ws.get("ci_low") is None else f" [{stages.fmt_num(ws['ci_low'])}, {stages.fmt_num(ws['ci_high'])}]"
    stages.emit(
        status == Status.COMPLETED,
        "Universe",
        f"{cross['n_symbols']} symbols; window Sharpe over symbol × window: mean {stages.fmt_num(ws.get('mean'))}, "
        f"IQM {stages.fmt_num(ws.get('iqm'))}{ci}; {cross['beat_buy_and_hold']}/{cross['n_symbols']} symbols beat "
        "their buy-and-hold",
        prefix,
    )
    stages.emit(
        status == Status.COMPLETED,
        "Summary",
        str(out / "summary.json") + ("" if status == Status.COMPLETED else f" (status {status})"),
        prefix,
    )


# ------------------------------------------------------------------------------------------ cross-symbol


def _symbol_summaries(folder: Path) -> list[dict[str, Any]]:
    """A symbol's run summaries: its own, or one per seed of its multi-seed folder ([] when unreadable)."""
    try:
        top = load_json(folder / "summary.json", "summary")
    except InputError:
        return []
    if top.get("kind") != "multi_seed":
        return [top]
    out = []
    for run in top.get("runs", []):
        try:
            out.append(load_json(folder / str(run["path"]) / "summary.json", "summary"))
        except InputError:
            continue
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if _finite(v)]
    return float(np.mean(vals)) if vals else None


def symbol_entry(symbol: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One symbol of the cross-symbol aggregate: stitched Sharpe and return (mean over seeds), buy-and-hold's."""
    aggs = [sm.get("aggregate") or {} for sm in summaries]
    bh = next((a.get("buy_and_hold") for a in aggs if a.get("buy_and_hold")), None) or {}
    ret = _mean([a.get("total_return") for a in aggs])
    windows: dict[str, list[float]] = {}
    for sm in summaries:
        for w in sm.get("windows", []):
            if w.get("status") == Status.COMPLETED:
                sharpe = (w.get("evaluation") or {}).get("sharpe")
                windows.setdefault(str(w["id"]), []).append(0.0 if sharpe is None else float(sharpe))
    return {
        "symbol": symbol,
        "runs": len(summaries),
        "oos_sharpe": _mean([a.get("sharpe") for a in aggs]),
        "oos_total_return": ret,
        "buy_and_hold_sharpe": bh.get("sharpe"),
        "buy_and_hold_total_return": bh.get("total_return"),
        "beats_buy_and_hold": None if ret is None or bh.get("total_return") is None else bool(ret > bh["total_return"]),
        "window_sharpes": windows,
    }


def cross_symbol_from(entries: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Mean and IQM of window Sharpe over symbol × window (× seed), with a stratified bootstrap CI.

    A window whose Sharpe is undefined (a flat agent) scores 0, as in the sweep's IQM. The IQM's 95 % CI is
    rliable's stratified bootstrap with the symbols as strata (each symbol's window Sharpes resampled within it);
    with one score per symbol there is nothing to resample and the CI is null.
    """
    per_symbol = [np.array([x for xs in e["window_sharpes"].values() for x in xs], dtype=np.float64) for e in entries]
    units = [f"{e['symbol']}/{wid}" for e in entries for wid in e["window_sharpes"]]
    scores = np.concatenate(per_symbol) if per_symbol else np.array([])
    value, lo, hi = iqm_ci(per_symbol, n_boot=N_BOOT, seed=seed) if len(scores) else (math.nan,) * 3
    done = [e for e in entries if e["beats_buy_and_hold"] is not None]
    return {
        "n_symbols": len(entries),
        "symbols": {e["symbol"]: {k: v for k, v in e.items() if k != "symbol"} for e in entries},
        "oos_sharpe_mean": _mean([e["oos_sharpe"] for e in entries]),
        "window_sharpe": {
            "unit": "symbol × window",
            "units": units,
            "n_scores": len(scores),
            "mean": float(scores.mean()) if len(scores) else None,
            "iqm": value if math.isfinite(value) else None,
            "ci_low": lo if math.isfinite(lo) else None,
            "ci_high": hi if math.isfinite(hi) else None,
            "ci_method": "stratified bootstrap over each symbol's window Sharpes (strata = symbols), 95 %",
            "n_boot": N_BOOT,
        },
        "beat_buy_and_hold": sum(1 for e in done if e["beats_buy_and_hold"]),
        "symbols_compared_with_buy_and_hold": len(done),
    }


def cross_symbol(out: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The cross-symbol aggregate of a universe folder's runs (``{"symbol", "path"}`` each)."""
    return cross_symbol_from([symbol_entry(r["symbol"], _symbol_summaries(out / r["path"])) for r in runs])


def is_universe(folder: Path) -> bool:
    path = folder / "summary.json"
    try:
        return path.is_file() and load_json(path, "summary").get("kind") == KIND
    except (InputError, AttributeError):
        return False


# ------------------------------------------------------------------------------------------ wf run --symbols


def run_universe(req: RunRequest, loaded: LoadedConfig, seeds: list[int] | None) -> int:
    """`wf run` on a universe: every symbol (× seed) a run folder, all windows on one executor."""
    opts = req.driver
    setups = symbol_setups(req.setup, loaded)  # every symbol's data before any training
    for symbol, s in setups:
        if not opts.quiet:
            print(f"== {symbol}", flush=True)
            print(dry_run_table(s), flush=True)
        stages.emit(True, "Window Setup", window_setup_detail(s), _name(opts.prefix, symbol))
    universe = Universe(opts, setups, seeds)
    with ExitStack() as stack:
        planned = universe.plan(stack)
        threads = setups[0][1].cfg.training.torch_threads
        executor = executors.make_executor(opts.executor, opts.workers, ray_address=opts.ray_address, threads=threads)
        interrupted = run_drivers(planned, executor, quiet=opts.quiet)
        return universe.finish(interrupted)
