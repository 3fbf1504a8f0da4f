"""`wf tune` as a command: open or resume the study, drive the search to its trial count, run the best config
on the outer test spans once, and write ``tune_summary.json``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from backend.config.models import config_dict
from backend.core import fsguard, stages
from backend.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    HarnessError,
    InputError,
)
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.run import folder as rf
from backend.run.driver import (
    dry_run_table,
    setup,
    sigterm_as_interrupt,
    window_setup_detail,
)
from backend.studies.tune.space import check_space, load_space
from backend.studies.tune.split import (
    OBJECTIVES,
    seen_test_bars,
    validation_detail,
    validation_table,
    validation_windows,
)
from backend.studies.tune.storage import (
    TuneOptions,
    _check_study,
    _override_warnings,
    _pruner,
    _seen_warning,
    _study_inputs,
    default_storage,
    default_study_name,
    open_study,
    shown_url,
)
from backend.studies.tune.strict import plan_table, run_strict, strict_plan
from backend.studies.tune.study import SEARCHED, Search, check_replaceable

# ------------------------------------------------------------------------------------------ the command


def run_tune(t: TuneOptions) -> int:
    """`wf tune`: returns the exit code (see docs/tune.md)."""
    if t.objective not in OBJECTIVES:
        raise InputError(f"--objective {t.objective!r}: use one of {', '.join(OBJECTIVES)}")
    pruner = _pruner(t)
    space = load_space(t.space)
    s = setup(t.run.setup)
    check_space(space, config_dict(s.cfg))
    inner = validation_windows(s, t.validation_days)
    if t.dry_run:
        print(dry_run_table(s), flush=True)
        print(validation_table(s, inner), flush=True)
        if t.strict:
            print(plan_table(s, strict_plan(s, inner)), flush=True)
        else:
            for w in _seen_warning(s, inner):
                print(f"warning: {w}", file=sys.stderr, flush=True)
        stages.emit(True, "Window Setup", f"{window_setup_detail(s)}; {validation_detail(inner, s.embargo)}")
        return EXIT_OK
    out = rf.check_output_dir(t.run.driver.output_dir)
    check_tune_folder(out, t, [w.id for w in s.windows])  # before the study, the lock or any trial is written
    rf.create(out)
    for w in s.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    stages.emit(True, "Window Setup", f"{window_setup_detail(s)}; {validation_detail(inner, s.embargo)}")
    name = t.study or default_study_name(t.run.setup.config, t.space)
    url = t.storage or default_storage(out)
    with rf.FolderLock(out, "tune"):
        _check_owner(out, name)
        if t.strict:
            with sigterm_as_interrupt():
                return run_strict(t, s, space, inner, out, name, url, pruner)
        study = open_study(url, name, pruner)
        warnings = _check_study(study, t, _study_inputs(t, s, space, inner), name) + _override_warnings(t, space)
        warnings += _seen_warning(s, inner)
        search = Search(t, s, space, inner, out, study, name, url, warnings)
        with sigterm_as_interrupt():
            return _drive(search)


TUNE_FOLDER = "the tune folder"
STUDY_DB_FILES = ("study.db", "study.db-journal", "study.db-wal", "study.db-shm")


def check_tune_folder(out: Path, t: TuneOptions, window_ids: list[str]) -> None:
    """Nothing the study writes or replaces may lead out of ``out`` or belong to someone else (exit 2).

    Checked before anything is written: the folders ``trials/``, ``final/``, ``strict/`` (and, with
    --strict, ``strict/<id>/``, ``strict/<id>/trials/``, ``final/<id>/``) and every existing trial folder
    may not be symbolic links leaving ``out``; the default sqlite storage files may not be links at all;
    a final-run folder that the final run would replace must be empty or a run folder of this harness.
    Each trial folder is checked again just before its trial (:meth:`Search.check_trial_folder`).
    """
    ids = window_ids if t.strict else []
    folders = [out / "trials", out / "final", out / "strict"]
    folders += [p for i in ids for p in (out / "strict" / i, out / "strict" / i / "trials", out / "final" / i)]
    for path in folders:
        fsguard.check_no_escape(out, path, TUNE_FOLDER)
    for trials in (out / "trials", *(out / "strict" / i / "trials" for i in ids)):
        for child in sorted(trials.iterdir()) if trials.is_dir() else []:
            fsguard.check_no_escape(out, child, TUNE_FOLDER)
    if t.storage is None:
        for name in STUDY_DB_FILES:
            fsguard.refuse_link(out / name, "the study database of this tune folder")
    if t.final:
        for final in [out / "final" / i for i in ids] if t.strict else [out / "final"]:
            check_replaceable(final, "its final run")


def _check_owner(out: Path, name: str) -> None:
    path = out / "tune_summary.json"
    if not path.exists():
        return
    try:
        previous = load_json(path, "tune summary")
        owner = previous["study"]["name"]
    except (InputError, KeyError, TypeError):
        return
    if owner != name:
        raise InputError(
            f"--output-dir {out} holds the trials of study {owner!r} (tune_summary.json), not {name!r}; pass "
            f"--study {owner} --resume to continue that one, or choose another --output-dir"
        )


def _drive(search: Search) -> int:
    t = search.t
    counts = search.trial_counts()
    stages.emit(
        True,
        "Study",
        f"{search.name} in {shown_url(search.url)}: {counts['tried']} trial(s) tried earlier, up to {t.n_trials} in "
        f"total; objective {t.objective}, sampler seed {t.seed}, pruner {t.pruner}",
    )
    for w in search.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    search.write(search.document(Status.RUNNING))
    try:
        stopped = search.search()
    except KeyboardInterrupt:
        return _interrupted(search, "search")
    except HarnessError as e:
        search.write(search.document(Status.FAILED, error=f"{type(e).__name__}: {e}"))
        raise
    finally:
        if search.executor is not None:
            search.executor.close()
    counts = search.trial_counts()
    best = search.best()
    note = " (--timeout reached)" if stopped == "timeout" else ""
    if best is None:
        search.write(search.document(Status.FAILED, stopped=stopped))
        stages.emit(False, "Search", f"no trial completed ({_counts_text(counts)}){note}; nothing to choose")
        codes = [tr.user_attrs.get("exit_code") for tr in search.study.get_trials(deepcopy=False)]
        return next((c for c in codes if isinstance(c, int)), EXIT_PARTIAL)
    stages.emit(
        True,
        "Search",
        f"{_counts_text(counts)}{note}; best trial {best.number}: {t.objective} {best.value:.4g} on validation",
    )
    best_doc = {
        "number": best.number,
        "value": best.value,
        "params": search.space.decode(dict(best.params)),
        "run_dir": best.user_attrs.get("run_dir"),
        "config_path": "best_config.json",
    }
    if not t.final:
        best_cfg = config_dict(search.space.config(search.base, best_doc["params"]))
        write_json(search.out / "best_config.json", best_cfg, search.out)
        path = search.write(search.document(SEARCHED, stopped=stopped, best=best_doc))
        stages.emit(True, "Summary", f"{path} (search only: --no-final; rerun without it to use the test spans)")
        return EXIT_OK
    return _final(search, best, best_doc, stopped)


def _final(search: Search, best: Any, best_doc: dict[str, Any], stopped: str) -> int:
    stages.emit(
        True,
        "Best config",
        f"trial {best.number} -> {search.out / 'best_config.json'}; final run on the "
        "full train spans, evaluated once on the test spans",
    )
    try:
        code, final = search.final_run(best)
    except KeyboardInterrupt:
        return _interrupted(search, "final run")
    best_doc["config_hash"] = (final or {}).get("config_hash")
    stats = search.statistics(final)
    final_entry = _final_entry(final, code)
    if final is not None:
        _annotate_final(search, final, best, stats)
    status = {EXIT_OK: Status.COMPLETED, EXIT_INTERRUPTED: Status.INTERRUPTED, EXIT_PARTIAL: Status.PARTIAL}.get(
        code, Status.FAILED
    )
    path = search.write(search.document(status, stopped=stopped, best=best_doc, final=final_entry, **stats))
    dsr, pbo = stats["deflated_sharpe"], stats["pbo"]
    stages.emit(
        True,
        "Selection statistics",
        (f"DSR {dsr['dsr']:.3f}" if dsr["dsr"] is not None else f"DSR not computed ({dsr['reason']})")
        + f" with N = {dsr['n_trials']} trials; "
        + (
            f"PBO {pbo['pbo']:.2f} over the completed trials' validation returns"
            if pbo.get("pbo") is not None
            else f"PBO refused ({pbo.get('reason')})"
        ),
    )
    stages.emit(
        status == Status.COMPLETED,
        "Summary",
        str(path) + ("" if status == Status.COMPLETED else f" (status {status})"),
    )
    return code


def _final_entry(final: dict[str, Any] | None, code: int) -> dict[str, Any]:
    agg = (final or {}).get("aggregate") or {}
    return {
        "path": "final",
        "summary": "final/summary.json",
        "exit_code": code,
        "status": (final or {}).get("status"),
        "test": {k: agg.get(k) for k in ("sharpe", "sortino", "total_return", "max_drawdown", "n_trades")},
        "statistics": (final or {}).get("statistics"),
    }


def _annotate_final(search: Search, final: dict[str, Any], best: Any, stats: dict[str, Any]) -> None:
    """The final run's summary says which search chose its config and how much that choice is worth."""
    pbo = stats["pbo"]
    final["tune"] = {
        "study": search.name,
        "storage": shown_url(search.url),
        "trial": best.number,
        "objective": search.t.objective,
        "validation_value": best.value,
        "n_trials": stats["deflated_sharpe"]["n_trials"],
        "trials": search.trial_counts(),
        "deflated_sharpe": stats["deflated_sharpe"],
        "pbo": {k: pbo.get(k) for k in ("status", "reason", "pbo", "n_trials", "n_partitions", "n_bars")},
        "test_bars_seen_by_trials": seen_test_bars(search.s, search.inner),
        "tune_summary": "../tune_summary.json",
    }
    write_json(search.out / "final" / "summary.json", final, search.out)


def _interrupted(search: Search, where: str) -> int:
    path = search.write(search.document(Status.INTERRUPTED, interrupted_during=where))
    counts = search.trial_counts()
    stages.emit(
        False,
        "Search" if where == "search" else "Final run",
        f"interrupted during the {where} ({_counts_text(counts)}); finished trials are kept in the study — rerun with "
        f"--resume to continue ({path})",
    )
    return EXIT_INTERRUPTED


def _counts_text(c: dict[str, int]) -> str:
    text = f"{c['tried']} trial(s) tried: {c['completed']} completed, {c['pruned']} pruned, {c['failed']} failed"
    return text + (f"; {c['interrupted']} interrupted (not counted)" if c["interrupted"] else "")
