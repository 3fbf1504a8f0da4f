"""`wf tune --strict`: strict nested tuning — the config tested on outer window k is chosen by a study that read
only bars before k's test start.

One Optuna study per outer window k (``<study>--<window id>``, in the same storage), whose trials train and validate
only the inner windows whose whole read range (:func:`~backend.studies.tune.split.read_range`: the look-back and
feature warm-up behind the trial's train span, the train span, the embargo gap, the validation sessions) ends at or
before k's test start. Window k's own inner window always qualifies (its validation ends where its train span does);
an inner window that reads an earlier window j's test span (through its look-back, say) is thereby excluded *by
construction* from the studies of j and of every window tested before it — it may serve only windows tested later,
whose choice may use those bars. Each study runs ``--trials`` trials; the final run trains each outer window with
its own study's best config and replays it on that window's test span only (``DIR/final/<id>/``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from backend.config.models import LoadedConfig, config_dict, config_hash
from backend.core import fsguard, stages
from backend.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, InputError
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.run import folder as rf
from backend.run.driver import Setup, execute
from backend.studies.tune.split import read_range
from backend.studies.tune.storage import _check_study, _study_inputs, open_study, shown_url
from backend.studies.tune.study import SEARCHED, Search, StudyStatus
from backend.walkforward.windows import Window


@dataclasses.dataclass
class StrictStudy:
    """The study that chooses outer window ``outer``'s config: the inner windows it may use and its read range."""

    outer: Window
    inner: list[Window]
    outers: list[Window]  # the outer windows of those inner windows (same order)
    first_read: int
    last_read: int  # the last bar any of its trials may read (< outer.test_start)


def strict_plan(s: Setup, inner: list[Window]) -> list[StrictStudy]:
    """Per outer window (in the run's order): the inner windows whose read range ends by its test start."""
    plan = []
    for w in s.windows:
        use = [j for j, iw in enumerate(inner) if read_range(s, iw)[1] <= w.test_start]
        if not use:  # cannot happen with validation_windows (its own inner window ends at its train end)
            raise InputError(f"--strict: window {w.id} has no inner window that ends before its test span starts")
        ranges = [read_range(s, inner[j]) for j in use]
        last = max(hi for _, hi in ranges) - 1
        assert last < w.test_start, "a strict study reads its own test span"
        plan.append(
            StrictStudy(w, [inner[j] for j in use], [s.windows[j] for j in use], min(lo for lo, _ in ranges), last)
        )
    return plan


def plan_table(s: Setup, plan: list[StrictStudy]) -> str:
    lines = [f"{'id':<8}{'study of trials on':<32}{'last bar read':<28}{'test starts':<28}"]
    for p in plan:
        lines.append(
            f"{p.outer.id:<8}{', '.join(w.id for w in p.inner):<32}{stamp(s, p.last_read):<28}"
            f"{stamp(s, p.outer.test_start):<28}"
        )
    return "\n".join(lines)


def stamp(s: Setup, i: int) -> str:
    return pd.Timestamp(int(s.market.timestamps[i]), tz="UTC").tz_convert(s.timezone).isoformat()


def run_strict(t: Any, s: Setup, space: Any, inner: list[Window], out: Path, name: str, url: str, pruner: Any) -> int:
    """One study per outer window, then each window's final run with its own study's best config."""
    plan = strict_plan(s, inner)
    entries: list[dict[str, Any]] = []
    code = EXIT_OK
    for p in plan:
        s_k = dataclasses.replace(s, windows=p.outers)
        name_k, out_k = f"{name}--{p.outer.id}", out / "strict" / p.outer.id
        fsguard.make_dirs(out, out_k, "the tune folder")
        study = open_study(url, name_k, pruner)
        warnings = _check_study(study, t, _study_inputs(t, s_k, space, p.inner), name_k)
        search = Search(t, s_k, space, p.inner, out_k, study, name_k, url, warnings, root=out)
        stages.emit(
            True,
            f"Study {p.outer.id}",
            f"{name_k}: trials on {', '.join(w.id for w in p.inner)}, reading bars up to {stamp(s, p.last_read)} "
            f"only (test starts {stamp(s, p.outer.test_start)}); up to {t.n_trials} trial(s)",
        )
        try:
            stopped = search.search()
        except KeyboardInterrupt:
            _write(out, t, s, name, url, entries, Status.INTERRUPTED)
            return EXIT_INTERRUPTED
        finally:
            if search.executor is not None:
                search.executor.close()
        best = search.best()
        entry = _entry(s, p, search, best, name_k)
        search.write(search.document(SEARCHED, stopped=stopped, best=entry["chosen"]))
        if best is None:
            stages.emit(False, f"Study {p.outer.id}", "no trial completed; nothing to choose for this window")
            code = EXIT_PARTIAL
        elif t.final:
            entry["final"] = _final(t, s, space, p.outer, best, out)
            code = max(code, entry["final"]["exit_code"])
        entries.append(entry)
    status = Status.COMPLETED if code == EXIT_OK else Status.PARTIAL
    path = _write(out, t, s, name, url, entries, status if t.final else SEARCHED)
    stages.emit(code == EXIT_OK, "Summary", f"{path} (strict: one study per outer window)")
    return code


def _entry(s: Setup, p: StrictStudy, search: Any, best: Any, name_k: str) -> dict[str, Any]:
    chosen = None
    if best is not None:
        params = search.space.decode(dict(best.params))
        cfg = search.space.config(search.base, params)
        write_json(search.out / "best_config.json", config_dict(cfg), search.root)
        chosen = {
            "trial": best.number,
            "value": best.value,
            "params": params,
            "config_hash": config_hash(cfg),
            "config_path": str(Path("strict") / p.outer.id / "best_config.json"),
        }
    values = [tr.value for tr in search.study.get_trials(deepcopy=False)]
    return {
        "id": p.outer.id,
        "study": name_k,
        "trials_on": [w.id for w in p.inner],
        "trials": search.trial_counts(),
        "trial_values": values,
        "chosen": chosen,
        "first_bar_read": stamp(s, p.first_read),
        "last_bar_read": stamp(s, p.last_read),
        "test_start": stamp(s, p.outer.test_start),
        "reads_only_before_test": p.last_read < p.outer.test_start,
        "final": None,
    }


def _final(t: Any, s: Setup, space: Any, w: Window, best: Any, out: Path) -> dict[str, Any]:
    """Train window ``w`` with its study's best config and replay it on its test span: DIR/final/<id>/."""
    cfg = space.config(config_dict(s.cfg), space.decode(dict(best.params)))
    cfg_path = out / "strict" / w.id / "best_config.json"
    final_dir = out / "final" / w.id
    opts = dataclasses.replace(
        t.run.driver, output_dir=str(final_dir), prefix=f"final {w.id}", resume=False, overwrite=True
    )
    loaded = LoadedConfig(cfg, str(cfg_path), list(s.loaded.warnings), s.loaded.unmapped)
    code = execute(opts, dataclasses.replace(s, loaded=loaded, windows=[w]))
    path = final_dir / "summary.json"
    final = load_json(path, "final summary") if path.exists() else {}
    agg = final.get("aggregate") or {}
    return {
        "path": str(Path("final") / w.id),
        "exit_code": code,
        "status": final.get("status"),
        "test": {k: agg.get(k) for k in ("sharpe", "sortino", "total_return", "max_drawdown", "n_trades")},
    }


def _write(out: Path, t: Any, s: Setup, name: str, url: str, entries: list, status: StudyStatus) -> Path:
    doc = {
        "schema_version": 1,
        "kind": "tune",
        "mode": "strict",
        "mode_meaning": "one study per outer window; window k's config chosen by trials that read only bars before "
        "its test start (look-back, warm-up and embargo included)",
        "status": status,
        "study": {"name": name, "storage": shown_url(url), "objective": t.objective, "seed": t.seed},
        "trials_per_study": t.n_trials,
        "symbol": s.bars.symbol,
        "interval": s.cfg.data.interval,
        "data_hash": s.bars.data_hash(),
        "windows": entries,
        "selection_statistics": "not computed in strict mode (one study per window; see docs/tune.md)",
        "finished_at": rf.now(),
    }
    for e in entries:
        print(
            f"strict {e['id']}: trial {(e['chosen'] or {}).get('trial')} chosen by {e['study']} "
            f"(trials on {', '.join(e['trials_on'])}; last bar read {e['last_bar_read']})",
            file=sys.stderr if t.run.driver.quiet else sys.stdout,
            flush=True,
        )
    return write_json(out / "tune_summary.json", doc, out)
