"""`wf tune`: hyperparameter search on Optuna that never sees the test spans.

A **search space file** maps config key paths to distributions (:func:`load_space`,
:func:`check_space`). Every trial is a nested walk-forward: each outer window's train span is
split into a shorter train span and its last ``--validation-days`` sessions (default: a fifth of
its sessions, at least one), with the window's embargo between them (:func:`validation_windows`).
A trial trains and replays those inner windows as ordinary window tasks on the executor, in its
own run folder ``DIR/trials/<number>/``, and is scored on the validation sessions only
(:data:`OBJECTIVES`). Each finished window is reported to Optuna (in time order), so a pruner can
stop a hopeless trial before its remaining windows run. The outer test spans are used once, after
the search: the best trial's config (``DIR/best_config.json``) is retrained on the full train spans
and replayed on the tests as an ordinary run folder, ``DIR/final/``, and ``DIR/tune_summary.json``
reports the deflated Sharpe ratio of that out-of-sample result with N = the trials tried and the
PBO over the trials' validation returns.

Counting: a trial is *tried* when it reached a verdict — completed, pruned, or failed on its own
(its config rejected, a window failed). Trials cut short by Ctrl-C (or a killed process) are
recorded but not counted; ``--trials N`` is the number of tried trials the study ends with, so
``--resume --trials 5`` continues a study of 3 to 5. Trials run one after another, each trial's
windows in parallel on the executor; the sampler is re-seeded from (``--seed``, trial number)
before every trial, so the same seed gives the same trials, resumed or not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import socket
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from backend.config.models import Config, LoadedConfig, config_dict, config_hash
from backend.core import stages
from backend.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    ArtifactError,
    HarnessError,
    InputError,
)
from backend.core.jsonio import load_json, write_json
from backend.evaluation.statistics import deflated_sharpe_ratio, expected_max_sharpe
from backend.run import folder as rf
from backend.run.driver import (
    RunDriver,
    RunOptions,
    Setup,
    dry_run_table,
    execute,
    run_drivers,
    setup,
    sigterm_as_interrupt,
    window_setup_detail,
)
from backend.run.tasks import WindowResult, WindowTask
from backend.studies.tune.space import Space, check_space, load_space
from backend.studies.tune.split import (
    OBJECTIVES,
    decode_returns,
    encode_returns,
    objective_value,
    per_bar_sharpe,
    seen_test_bars,
    validation_detail,
    validation_table,
    validation_windows,
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
SKIPPED = "skipped"  # a window a halted trial does not run (a result status internal to this module)


# ------------------------------------------------------------------------------------------ one trial


class TrialFailed(Exception):
    """The trial cannot be scored (config rejected, a window failed): Optuna marks it FAIL and the search goes on."""


class _TrialDriver(RunDriver):
    """One trial's run folder; finished windows are reported to Optuna in time order, and may halt the trial."""

    def __init__(self, opts: RunOptions, s: Setup, trial: Any, objective: str) -> None:
        super().__init__(opts, s, opts.prefix)
        self.trial, self.objective = trial, objective
        self.order = [w.id for w in sorted(s.windows, key=lambda w: w.test_start)]
        self.values: list[float] = []
        self.halted: str | None = None  # pruned | failed
        self.why = ""

    def halt(self, status: str, why: str) -> None:
        if self.halted is None:
            self.halted, self.why = status, why

    def on_result(self, result: WindowResult) -> None:
        if result.status == SKIPPED:
            assert self.summary is not None
            self.summary.window(result.window_id).update(
                status=self.halted, error={"stage": "training", "type": "NotRun", "message": self.why}
            )
            self.summary.stage(f"window_{result.window_id}", str(self.halted), 0.0)
            return
        super().on_result(result)
        if result.status == "failed":
            self.halt("failed", f"not run: window {result.window_id} of this trial failed")
        self._report()

    def _report(self) -> None:
        """Report the windows finished so far, in time order; a pruning decision is final (whatever ran on)."""
        while (
            self.halted is None and len(self.values) < len(self.order) and self.order[len(self.values)] in self.series
        ):
            step = len(self.values)
            parts = [self.series[w]["net_return"] for w in self.order[: step + 1]]
            value = objective_value(self.objective, parts, self.s.periods_per_year)
            self.trial.report(value, step)
            self.values.append(value)
            if len(self.values) < len(self.order) and self.trial.should_prune():
                self.halt(
                    "pruned",
                    f"not run: the trial was pruned after {len(self.values)} of {len(self.order)} windows "
                    f"({self.objective} {value:.4g} so far)",
                )

    def not_run(self, task: WindowTask, why: str, status: str = "interrupted") -> None:
        if self.halted == "pruned" and status == "failed":  # a warm-start chain cut by pruning
            status, why = "pruned", self.why
        super().not_run(task, why, status)

    def finish(self, interrupted: bool) -> int:
        if self.halted != "pruned" or interrupted:
            return super().finish(interrupted)
        from backend.evaluation.aggregate import stitched

        assert self.summary is not None
        doc = self.summary.doc
        done = [e for e in doc["windows"] if e["status"] == "completed"]
        doc["aggregate"], doc["statistics"] = stitched(
            [self.series[e["id"]] for e in done], self.s.periods_per_year, self.cfg
        )
        doc.update(status="pruned", finished_at=rf.now(), seconds=round(time.perf_counter() - self.summary.started, 3))
        self.summary.stage("summary", "ok", 0.0)
        stages.emit(True, "Summary", f"{self.summary.path} (trial pruned)", self.name)
        return EXIT_OK


class _Gate:
    """The search's executor as one trial sees it: once the trial halts, its remaining windows are not run."""

    def __init__(self, inner: Any, driver: _TrialDriver) -> None:
        self.inner, self.driver = inner, driver
        self.workers = inner.workers

    def submit(self, task: WindowTask) -> Future:
        if self.driver.halted is None:
            return self.inner.submit(task)
        fut: Future = Future()
        fut.set_result(WindowResult(task.run, task.window.id, SKIPPED, EXIT_OK))
        return fut

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self, cancel: bool = False) -> None:
        """The executor serves every trial; the search closes it once."""


# ------------------------------------------------------------------------------------------ the study


@dataclass
class TuneOptions:
    """Everything `wf tune` accepts; ``run`` holds the flags it shares with `wf run` (output_dir = DIR)."""

    run: RunOptions
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


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def default_study_name(config: str | None, space: str) -> str:
    from backend.config.models import DEFAULT_CONFIG

    return f"{Path(config or DEFAULT_CONFIG).stem}--{Path(space).stem}"


def shown_url(url: str) -> str:
    """A storage URL without its password (for files and stage lines)."""
    try:
        from sqlalchemy.engine import make_url

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
    import warnings

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
    from backend.config.models import parse_override

    searched = {p.key for p in space.params}
    keys = [".".join(parse_override(item)[0]) for item in t.run.sets]
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
        f"trials train or validate on test bars of {which}: later windows' train spans cover them (ordinary "
        "walk-forward), so the final result on those windows is not untouched by the search; for an untouched test, "
        "use windows whose train spans all end before the first test span"
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


@dataclass
class Search:
    """One `wf tune` invocation: the study, the trials it adds, the final run and tune_summary.json."""

    t: TuneOptions
    s: Setup
    space: Space
    inner: list[Window]
    out: Path
    study: Any
    name: str
    url: str
    warnings: list[str] = field(default_factory=list)
    executor: Any = None
    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=rf.now)

    @property
    def base(self) -> dict[str, Any]:
        return config_dict(self.s.cfg)

    # -- the loop
    def search(self) -> str:
        """Add trials until the study holds --trials tried trials (or --timeout passes); returns why it stopped."""
        deadline = time.monotonic() + self.t.timeout if self.t.timeout else None
        while True:
            trials = self.study.get_trials(deepcopy=False)
            if sum(map(counted, trials)) >= self.t.n_trials:
                return "trials"
            if deadline is not None and time.monotonic() >= deadline:
                return "timeout"
            self.study.sampler = trial_sampler(self.t.seed, len(trials))
            self.study.optimize(self.objective, n_trials=1, catch=(TrialFailed,), gc_after_trial=False)

    def _executor(self) -> Any:
        if self.executor is None:
            from backend.run.executors import make_executor

            r = self.t.run
            self.executor = make_executor(r.executor, r.workers, r.ray_address, self.s.cfg.training.torch_threads)
        return self.executor

    def objective(self, trial: Any) -> float:
        import optuna

        n = trial.number
        folder = self.out / "trials" / str(n)
        trial.set_user_attr("host", socket.gethostname())
        values = {p.key: p.suggest(trial) for p in self.space.params}
        try:
            cfg = self.space.config(self.base, values)
        except InputError as e:
            self._fail(trial, "the sampled config is rejected: " + str(e).removeprefix("trial config: "), 2)
        trial.set_user_attr("run_dir", str(folder.resolve()))
        trial.set_user_attr("config_hash", config_hash(cfg))
        trial.set_user_attr("config", str((folder / "config.resolved.json").resolve()))
        trial.set_user_attr("summary", str((folder / "summary.json").resolve()))
        driver = self._run_trial(trial, cfg, folder)
        if driver.fatal:  # a full disk is not the trial's fault: stop the search (exit 6), do not count the trial
            raise ArtifactError(f"trial {n}: an artifact could not be written; see {folder / 'summary.json'}")
        if driver.halted == "pruned":
            self._close_trial(trial, driver, "pruned", None)
            stages.emit(
                True,
                f"Trial {n}",
                f"pruned after {len(driver.values)} of {len(driver.order)} windows "
                f"({self.t.objective} {driver.values[-1]:.4g} so far); {_params_text(values)}",
            )
            raise optuna.TrialPruned(driver.why)
        if len(driver.values) < len(driver.order):
            failed = [e for e in driver.doc["windows"] if e["status"] == "failed"]
            err = (failed[0].get("error") or {}) if failed else {}
            code = driver.failures[0] if driver.failures else EXIT_PARTIAL
            self._close_trial(trial, driver, "failed", None)
            self._fail(
                trial, f"window {failed[0]['id'] if failed else '?'}: {err.get('type')}: {err.get('message')}", code
            )
        value = driver.values[-1]
        self._record_validation(trial, driver)
        self._close_trial(trial, driver, "completed", value)
        stages.emit(
            True,
            f"Trial {n}",
            f"{self.t.objective} {value:.4g} on validation{self._best_text(value, n)}; {_params_text(values)}",
        )
        return value

    def _run_trial(self, trial: Any, cfg: Config, folder: Path) -> _TrialDriver:
        s = dataclasses.replace(
            self.s,
            loaded=LoadedConfig(cfg, self.s.loaded.path, [], self.s.loaded.unmapped, self.s.loaded.legacy),
            windows=self.inner,
        )
        opts = dataclasses.replace(
            self.t.run,
            output_dir=str(folder),
            prefix=f"trial {trial.number}",
            overwrite=True,
            resume=False,
            no_report=True,
        )
        driver = _TrialDriver(opts, s, trial, self.t.objective)
        with driver:
            tasks = driver.plan()
            interrupted = run_drivers([(driver, tasks)], _Gate(self._executor(), driver))
            driver.finish(interrupted)
            if interrupted:
                trial.set_user_attr("interrupted", True)
                raise KeyboardInterrupt(f"trial {trial.number} interrupted")
        return driver

    def _fail(self, trial: Any, message: str, code: int) -> NoReturn:
        trial.set_user_attr("error", message)
        trial.set_user_attr("exit_code", code)
        stages.emit(False, f"Trial {trial.number}", f"failed: {message}")
        raise TrialFailed(message)

    def _record_validation(self, trial: Any, driver: _TrialDriver) -> None:
        r = np.concatenate([driver.series[w]["net_return"] for w in driver.order]).astype(np.float64)
        stamps = np.concatenate([np.asarray(driver.series[w]["timestamp"], dtype=str) for w in driver.order])
        trial.set_user_attr("validation_bars", len(r))
        trial.set_user_attr("validation_bars_hash", hashlib.sha256("|".join(stamps).encode()).hexdigest()[:16])
        trial.set_user_attr("validation_sharpe_per_bar", per_bar_sharpe(r))
        trial.set_user_attr("validation_returns", encode_returns(r))
        agg = driver.doc.get("aggregate") or {}
        trial.set_user_attr(
            "validation_metrics",
            {k: _finite(agg.get(k)) for k in ("sharpe", "total_return", "max_drawdown", "n_trades")},
        )

    def _close_trial(self, trial: Any, driver: _TrialDriver, state: str, value: float | None) -> None:
        trial.set_user_attr("window_values", [_finite(v) for v in driver.values])
        assert driver.summary is not None
        driver.summary.doc["tune_trial"] = {
            "study": self.name,
            "number": trial.number,
            "state": state,
            "objective": self.t.objective,
            "value": value,
            "intermediate_values": driver.values,
            "params": self.space.decode(dict(trial.params)),
            "note": "'test' spans of this folder are the validation sessions of the outer train spans",
        }
        driver.summary.save()

    def _best_text(self, value: float, number: int) -> str:
        try:
            best = self.study.best_trial
        except ValueError:
            return " (best so far)"
        if best.value is None or value > best.value:
            return " (best so far)"
        return f" (best so far: trial {best.number}, {best.value:.4g})"

    # -- after the search
    def best(self) -> Any | None:
        try:
            return self.study.best_trial
        except ValueError:
            return None

    def final_run(self, best: Any) -> tuple[int, dict[str, Any] | None]:
        """Retrain the best config on the full train spans and replay it on the tests: DIR/final/."""
        cfg = self.space.config(self.base, self.space.decode(dict(best.params)))
        best_path = write_json(self.out / "best_config.json", config_dict(cfg))
        final_dir = self.out / "final"
        try:
            previous = rf.read_previous(final_dir) if final_dir.exists() else None
        except InputError:
            previous = None
        same = previous is not None and previous.get("config_hash") == config_hash(cfg)
        if previous is not None and not same:
            self.warnings.append(f"the best config changed since {final_dir} was run; it was replaced")
        opts = dataclasses.replace(
            self.t.run,
            config=str(best_path),
            output_dir=str(final_dir),
            prefix="final",
            sets=[],
            seed=None,
            timesteps=None,
            stochastic=False,
            resume=same,
            overwrite=not same,
        )
        s = dataclasses.replace(
            self.s, loaded=LoadedConfig(cfg, str(best_path), list(self.s.loaded.warnings), self.s.loaded.unmapped)
        )
        code = execute(opts, s)
        path = final_dir / "summary.json"
        return code, (load_json(path, "final summary") if path.exists() else None)

    def statistics(self, final: dict[str, Any] | None) -> dict[str, Any]:
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        complete = [tr for tr in trials if tr.state == TrialState.COMPLETE]
        return {
            "deflated_sharpe": deflated_sharpe(final, sum(map(counted, trials)), complete),
            "pbo": trials_pbo(complete),
        }

    def trial_counts(self) -> dict[str, int]:
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        state = [tr.state for tr in trials]
        return {
            "tried": sum(map(counted, trials)),
            "completed": state.count(TrialState.COMPLETE),
            "pruned": state.count(TrialState.PRUNED),
            "failed": sum(tr.state == TrialState.FAIL and "error" in tr.user_attrs for tr in trials),
            "interrupted": sum(tr.state == TrialState.FAIL and "error" not in tr.user_attrs for tr in trials),
            "running": state.count(TrialState.RUNNING),
            "waiting": state.count(TrialState.WAITING),
        }

    def document(self, status: str, **extra: Any) -> dict[str, Any]:
        trials = self.study.get_trials(deepcopy=False)
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "tune",
            "status": status,
            "study": {
                "name": self.name,
                "storage": shown_url(self.url),
                "direction": "maximize",
                "objective": self.t.objective,
                "objective_meaning": OBJECTIVES[self.t.objective],
                "sampler": {"name": "TPESampler", "seed": self.t.seed, "seeding": "per trial, from (seed, number)"},
                "pruner": {
                    "name": self.t.pruner,
                    "startup_trials": self.t.pruner_startup_trials,
                    "warmup_windows": self.t.pruner_warmup_windows,
                },
                "inputs": self.study.user_attrs.get(STUDY_ATTR),
            },
            "trials_requested": self.t.n_trials,
            "trials": self.trial_counts(),
            "base_config": {"path": self.s.loaded.path, "hash": config_hash(self.s.cfg)},
            "space": self.space.document(),
            "symbol": self.s.bars.symbol,
            "interval": self.s.cfg.data.interval,
            "source": self.s.bars.source,
            "data_hash": self.s.bars.data_hash(),
            "annualisation": self.s.annualisation,
            "validation": {
                "validation_days": self.t.validation_days,
                "default": "a fifth of each train span's sessions, at least one",
                "embargo_bars": self.s.embargo,
                "windows": [_split_entry(o, w, self.s) for o, w in zip(self.s.windows, self.inner, strict=True)],
                "test_bars_seen_by_trials": seen_test_bars(self.s, self.inner),
            },
            "trial_list": [self._trial_entry(tr) for tr in trials],
            "best": None,
            "final": None,
            "deflated_sharpe": None,
            "pbo": None,
            "warnings": list(self.warnings),
            "started_at": self.started_at,
            "finished_at": None if status == "running" else rf.now(),
            "seconds": round(time.perf_counter() - self.started, 3),
            **extra,
        }

    def _trial_entry(self, tr: Any) -> dict[str, Any]:
        seconds = (
            (tr.datetime_complete - tr.datetime_start).total_seconds()
            if tr.datetime_complete and tr.datetime_start
            else None
        )
        state = tr.state.name.lower()
        if state == "fail":
            state = "failed" if "error" in tr.user_attrs else "interrupted"
        return {
            "number": tr.number,
            "state": state,
            "counted": counted(tr),
            "value": tr.value,
            "params": self.space.decode(dict(tr.params)),
            "intermediate_values": [tr.intermediate_values[k] for k in sorted(tr.intermediate_values)],
            "validation_sharpe_per_bar": tr.user_attrs.get("validation_sharpe_per_bar"),
            "run_dir": tr.user_attrs.get("run_dir"),
            "error": tr.user_attrs.get("error"),
            "seconds": seconds,
        }

    def write(self, doc: dict[str, Any]) -> Path:
        return write_json(self.out / "tune_summary.json", doc)


def _split_entry(outer: Window, inner: Window, s: Setup) -> dict[str, Any]:
    """One window as the search sees it: trial train span, validation sessions, and the test span it never reads."""
    d, o = inner.describe(s.market.timestamps, s.timezone), outer.describe(s.market.timestamps, s.timezone)
    return {
        "id": inner.id,
        "train_start": d["train_start"],
        "train_end": d["train_end"],
        "validation_start": d["test_start"],
        "validation_end": d["test_end"],
        "test_start": o["test_start"],
        "test_end": o["test_end"],
        "train_bars": inner.train_bars,
        "validation_bars": inner.test_bars,
        "train_sessions": inner.train_sessions,
        "validation_sessions": inner.test_sessions,
    }


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _params_text(values: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else json.dumps(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in values.items())


# ------------------------------------------------------------------------------------------ statistics


def deflated_sharpe(final: dict[str, Any] | None, n_trials: int, complete: list[Any]) -> dict[str, Any]:
    """DSR of the final out-of-sample returns with N = trials tried and the trials' validation Sharpe variance.

    Per-bar Sharpe, skewness and kurtosis are those of the final run's stitched test returns
    (its summary's ``statistics``); the variance is the sample variance (ddof 1) of the completed
    trials' per-bar validation Sharpe ratios.
    """
    stats = (final or {}).get("statistics") or {}
    sharpes = [tr.user_attrs.get("validation_sharpe_per_bar") for tr in complete]
    sharpes = [x for x in sharpes if isinstance(x, int | float) and math.isfinite(x)]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else None
    sr, n_obs = stats.get("sharpe_per_bar"), stats.get("n_obs")
    skew, kurt = stats.get("skew"), stats.get("kurtosis")
    doc: dict[str, Any] = {
        "dsr": None,
        "reason": None,
        "n_trials": n_trials,
        "sharpe_per_bar": sr,
        "n_obs": n_obs,
        "skew": skew,
        "kurtosis": kurt,
        "sharpe_variance": variance,
        "n_variance_trials": len(sharpes),
        "expected_max_sharpe": None,
        "sharpe_source": "final run's stitched test returns (per bar)",
        "variance_source": "completed trials' per-bar validation Sharpe ratios",
    }
    if not stats:
        doc["reason"] = "the final run has no completed test window"
    elif sr is None or skew is None or kurt is None:
        doc["reason"] = "the final test returns have no Sharpe ratio (constant returns: the agent stayed flat)"
    elif n_trials == 1:  # nothing was chosen among: the DSR is the PSR against 0
        doc["expected_max_sharpe"] = 0.0
        doc["dsr"] = deflated_sharpe_ratio(sr, int(n_obs), skew, kurt, 1, 0.0)
    elif variance is None:
        doc["reason"] = (
            f"the variance of the trials' Sharpe ratios needs at least 2 completed trials; {len(sharpes)} completed"
        )
    else:
        doc["expected_max_sharpe"] = expected_max_sharpe(n_trials, variance)
        doc["dsr"] = deflated_sharpe_ratio(sr, int(n_obs), skew, kurt, n_trials, variance)
    return doc


def trials_pbo(complete: list[Any]) -> dict[str, Any]:
    """PBO (CSCV) over the completed trials' per-bar validation returns, as the sweep computes it."""
    import pandas as pd

    from backend.evaluation.selection import _pbo

    cols = {
        f"trial {tr.number}": decode_returns(tr.user_attrs["validation_returns"])
        for tr in complete
        if "validation_returns" in tr.user_attrs
    }
    bars = {tr.user_attrs.get("validation_bars_hash") for tr in complete if "validation_returns" in tr.user_attrs}
    if len(cols) < 2:
        return {
            "status": "refused",
            "reason": f"PBO needs at least 2 completed trials to choose among; {len(cols)} completed",
            "trials": "trials",
        }
    if len(bars) > 1 or len({len(c) for c in cols.values()}) > 1:
        return {
            "status": "refused",
            "reason": "the completed trials were validated on different bars",
            "trials": "trials",
        }
    doc = _pbo(pd.DataFrame(cols), 16)
    doc["trials"] = "completed trials (validation returns)"
    return doc


# ------------------------------------------------------------------------------------------ the command


def run_tune(t: TuneOptions) -> int:
    """`wf tune`: returns the exit code (see docs/tune.md)."""
    if t.objective not in OBJECTIVES:
        raise InputError(f"--objective {t.objective!r}: use one of {', '.join(OBJECTIVES)}")
    pruner = _pruner(t)
    space = load_space(t.space)
    s = setup(t.run)
    check_space(space, config_dict(s.cfg))
    inner = validation_windows(s, t.validation_days)
    if t.dry_run:
        print(dry_run_table(s), flush=True)
        print(validation_table(s, inner), flush=True)
        for w in _seen_warning(s, inner):
            print(f"warning: {w}", file=sys.stderr, flush=True)
        stages.emit(True, "Window Setup", f"{window_setup_detail(s)}; {validation_detail(inner, s.embargo)}")
        return EXIT_OK
    out = rf.check_output_dir(t.run.output_dir)
    rf.create(out)
    for w in s.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    stages.emit(True, "Window Setup", f"{window_setup_detail(s)}; {validation_detail(inner, s.embargo)}")
    name = t.study or default_study_name(t.run.config, t.space)
    url = t.storage or default_storage(out)
    with rf.FolderLock(out, "tune"):
        _check_owner(out, name)
        study = open_study(url, name, pruner)
        warnings = _check_study(study, t, _study_inputs(t, s, space, inner), name) + _override_warnings(t, space)
        warnings += _seen_warning(s, inner)
        search = Search(t, s, space, inner, out, study, name, url, warnings)
        with sigterm_as_interrupt():
            return _drive(search)


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
    search.write(search.document("running"))
    try:
        stopped = search.search()
    except KeyboardInterrupt:
        return _interrupted(search, "search")
    except HarnessError as e:
        search.write(search.document("failed", error=f"{type(e).__name__}: {e}"))
        raise
    finally:
        if search.executor is not None:
            search.executor.close()
    counts = search.trial_counts()
    best = search.best()
    note = " (--timeout reached)" if stopped == "timeout" else ""
    if best is None:
        search.write(search.document("failed", stopped=stopped))
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
        write_json(search.out / "best_config.json", config_dict(search.space.config(search.base, best_doc["params"])))
        path = search.write(search.document("searched", stopped=stopped, best=best_doc))
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
    status = {EXIT_OK: "completed", EXIT_INTERRUPTED: "interrupted", EXIT_PARTIAL: "partial"}.get(code, "failed")
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
    stages.emit(status == "completed", "Summary", str(path) + ("" if status == "completed" else f" (status {status})"))
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
    write_json(search.out / "final" / "summary.json", final)


def _interrupted(search: Search, where: str) -> int:
    path = search.write(search.document("interrupted", interrupted_during=where))
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


__all__ = [
    "OBJECTIVES",
    "PRUNERS",
    "Space",
    "TuneOptions",
    "check_space",
    "decode_returns",
    "load_space",
    "run_tune",
    "seen_test_bars",
    "validation_windows",
]
