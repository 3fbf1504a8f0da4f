"""`wf tune` study plumbing: the options, the Optuna storage and study (opened, checked on --resume), the
sampler and pruner, and the inputs a study's trials depend on."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import DEFAULT_CONFIG, config_hash, parse_override
from backend.core.errors import (
    InputError,
)
from backend.run.options import RunRequest
from backend.run.window_setup import Setup
from backend.studies.tune.space import Space
from backend.studies.tune.split import (
    seen_test_bars,
)
from backend.walkforward.windows import Window, windows_document

SCHEMA_VERSION = 1
STUDY_ATTR = "wf_tune"
"""Study user attribute holding what a study's trials depend on (checked on --resume)."""
PRUNERS = ("median", "none")
HEARTBEAT_S = 30
"""Seconds between a running trial's heartbeats in the storage."""
GRACE_S = 120
"""A RUNNING trial without a heartbeat for this long (its process died) is marked FAIL by the next trial."""


# ------------------------------------------------------------------------------------------ the study


@dataclass
class TuneOptions:
    """Everything `wf tune` accepts; ``run`` holds the flags it shares with `wf run` (output_dir = DIR)."""

    run: RunRequest
    space: str
    n_trials: int
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    resume: bool = False
    seed: int = 0
    validation_days: int | None = None
    objective: str = "sharpe"
    pruner: str = "median"
    pruner_startup_trials: int = 5
    pruner_warmup_windows: int = 0
    final: bool = True
    dry_run: bool = False
    strict: bool = False  # one study per outer window, reading only bars before its test start (strict.py)


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def default_study_name(config: str | None, space: str) -> str:
    return f"{Path(config or DEFAULT_CONFIG).stem}--{Path(space).stem}"


def shown_url(url: str) -> str:
    """A storage URL without its password (for files and stage lines)."""
    try:
        from sqlalchemy.engine import make_url  # heavy: sqlalchemy (optuna's storage)

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def trial_sampler(seed: int, number: int) -> Any:
    """TPE seeded from (seed, trial number): the same seed gives the same trials, in one run or resumed."""
    import optuna

    derived = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=derived)


def counted(trial: Any) -> bool:
    """A trial that reached a verdict: completed, pruned, or failed on its own (not cut short by Ctrl-C or a kill)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def _pruner(t: TuneOptions) -> Any:
    import optuna

    if t.pruner == "none":
        return optuna.pruners.NopPruner()
    if t.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=t.pruner_startup_trials, n_warmup_steps=t.pruner_warmup_windows
        )
    raise InputError(f"--pruner {t.pruner!r}: use one of {', '.join(PRUNERS)}")


def open_study(url: str, name: str, pruner: Any) -> Any:
    """Create or load the study (maximise); a storage that cannot be opened is exit 2."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the stage lines say what happens
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
        )
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", pruner=pruner, load_if_exists=True
        )
    except Exception as e:  # SQLAlchemy: bad URL, missing driver, unreachable server, not a database
        raise InputError(
            f"--storage {shown_url(url)}: cannot open the study storage ({type(e).__name__}: {e}); give an SQLAlchemy "
            "URL such as sqlite:///DIR/study.db or postgresql://user:password@host/dbname"
        ) from e
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise InputError(f"study {name!r} minimises; wf tune maximises its objective: choose another --study")
    return study


def _check_study(study: Any, t: TuneOptions, inputs: dict[str, Any], name: str) -> list[str]:
    """Refuse a study that would mix incomparable trials; adopt a fresh one. Returns warnings."""
    from optuna.trial import TrialState

    trials = [tr for tr in study.get_trials(deepcopy=False) if tr.state != TrialState.WAITING]
    before = study.user_attrs.get(STUDY_ATTR)
    if trials and not t.resume:
        raise InputError(
            f"study {name!r} already holds {len(trials)} trial(s); pass --resume to continue it up to --trials "
            f"{t.n_trials} in total, or choose another --study (or --output-dir)"
        )
    if before is None:
        if any(tr.state != TrialState.RUNNING for tr in trials):
            raise InputError(f"study {name!r} holds trials not made by wf tune; choose another --study")
        study.set_user_attr(STUDY_ATTR, inputs)
        return []
    changed = [k for k in inputs if k != "seed" and before.get(k) != inputs[k]]
    if changed:
        raise InputError(
            f"study {name!r} was run with a different {', '.join(changed)} (its trial values would not be "
            "comparable); restore the inputs it was run with, or start a new --study / --output-dir"
        )
    if before.get("seed") != inputs["seed"]:
        return [f"the study was started with --seed {before.get('seed')}; new trials use --seed {inputs['seed']}"]
    return []


def _override_warnings(t: TuneOptions, space: Space) -> list[str]:
    searched = {p.key for p in space.params}
    keys = [".".join(parse_override(item)[0]) for item in t.run.setup.sets]
    return [
        f"--set {k}: the search space sets this key in every trial (the --set value is unused)"
        for k in keys
        if k in searched
    ]


def _seen_warning(s: Setup, inner: list[Window]) -> list[str]:
    seen = seen_test_bars(s, inner)
    if not seen:
        return []
    which = ", ".join(f"{k} ({v} bars)" for k, v in seen.items())
    return [
        f"trials read test bars of {which}: later windows' train spans, embargo gaps or the look-back and feature "
        "warm-up behind them cover those bars (ordinary walk-forward), so the final result on those windows is not "
        "untouched by the search; for an untouched test, use windows whose read ranges all end before the first "
        "test span"
    ]


def _study_inputs(t: TuneOptions, s: Setup, space: Space, inner: list[Window]) -> dict[str, Any]:
    doc = windows_document(inner, s.market.timestamps, s.timezone, s.embargo)
    return {
        "schema_version": SCHEMA_VERSION,
        "config_hash": config_hash(s.cfg),
        "space_hash": space.digest,
        "objective": t.objective,
        "validation_windows_hash": hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16],
        "data_hash": s.bars.data_hash(),
        "seed": t.seed,
    }
