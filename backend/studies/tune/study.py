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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, TypeAlias

import numpy as np

from backend.config.models import Config, LoadedConfig, config_dict, config_hash
from backend.core import fsguard, stages
from backend.core.errors import (
    EXIT_PARTIAL,
    ArtifactError,
    FolderError,
    InputError,
)
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.evaluation.trials import deflated_sharpe, trials_pbo
from backend.run import executors
from backend.run import folder as rf
from backend.run.driver import (
    Setup,
    execute,
    run_drivers,
)
from backend.studies.tune.space import Space, check_space, load_space
from backend.studies.tune.split import (
    OBJECTIVES,
    decode_returns,
    encode_returns,
    per_bar_sharpe,
    seen_test_bars,
    validation_windows,
)
from backend.studies.tune.storage import (  # noqa: F401  (re-exported: backend.cli.tune reads PRUNERS here)
    GRACE_S,
    HEARTBEAT_S,
    PRUNERS,
    SCHEMA_VERSION,
    STUDY_ATTR,
    TuneOptions,
    _check_study,
    _override_warnings,
    _seen_warning,
    _study_inputs,
    counted,
    default_storage,
    default_study_name,
    open_study,
    shown_url,
    trial_sampler,
)
from backend.studies.tune.trial import PRUNED, SKIPPED, TrialFailed, _Gate, _TrialDriver  # noqa: F401  (re-exported)
from backend.walkforward.windows import Window

SEARCHED: Final = "searched"
StudyStatus: TypeAlias = Status | Literal["searched"]
"""tune_summary.json's ``status``: a :class:`Status`, or ``searched`` (``--no-final``: trials ran, no final run)."""


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
    root: Path | None = None  # the tune folder (``out`` itself, or its parent's parent with --strict)

    @property
    def base(self) -> dict[str, Any]:
        return config_dict(self.s.cfg)

    def check_trial_folder(self, folder: Path) -> None:
        """Before a trial's run folder is made: no link out of the tune folder, and nothing foreign replaced.

        A trial runs with --overwrite on ``trials/<n>/``; a folder there that is not a run folder of this harness
        (or a link leading out of the tune folder) is refused (exit 2) and nothing in it is deleted.
        """
        fsguard.check_no_escape(self.root or self.out, folder, "the tune folder")
        check_replaceable(folder, f"the run folder of trial {folder.name}")

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
            r = self.t.run.driver
            self.executor = executors.make_executor(
                r.executor, r.workers, ray_address=r.ray_address, threads=self.s.cfg.training.torch_threads
            )
        return self.executor

    def objective(self, trial: Any) -> float:
        import optuna

        n = trial.number
        folder = self.out / "trials" / str(n)
        self.check_trial_folder(folder)
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
        if driver.halted == PRUNED:
            self._close_trial(trial, driver, PRUNED, None)
            stages.emit(
                True,
                f"Trial {n}",
                f"pruned after {len(driver.values)} of {len(driver.order)} windows "
                f"({self.t.objective} {driver.values[-1]:.4g} so far); {_params_text(values)}",
            )
            raise optuna.TrialPruned(driver.why)
        if len(driver.values) < len(driver.order):
            failed = [e for e in driver.doc["windows"] if e["status"] == Status.FAILED]
            err = (failed[0].get("error") or {}) if failed else {}
            code = driver.failures[0] if driver.failures else EXIT_PARTIAL
            self._close_trial(trial, driver, Status.FAILED, None)
            self._fail(
                trial, f"window {failed[0]['id'] if failed else '?'}: {err.get('type')}: {err.get('message')}", code
            )
        value = driver.values[-1]
        self._record_validation(trial, driver)
        self._close_trial(trial, driver, Status.COMPLETED, value)
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
            self.t.run.driver,
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
        best_path = write_json(self.out / "best_config.json", config_dict(cfg), self.root or self.out)
        final_dir = self.out / "final"
        try:
            previous = rf.read_previous(final_dir) if final_dir.exists() else None
        except InputError:
            previous = None
        same = previous is not None and previous.get("config_hash") == config_hash(cfg)
        if previous is not None and not same:
            self.warnings.append(f"the best config changed since {final_dir} was run; it was replaced")
        opts = dataclasses.replace(
            self.t.run.driver, output_dir=str(final_dir), prefix="final", resume=same, overwrite=not same
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

    def document(self, status: StudyStatus, **extra: Any) -> dict[str, Any]:
        trials = self.study.get_trials(deepcopy=False)
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "tune",
            "mode": "strict window study" if self.t.strict else "pooled",
            "mode_meaning": (
                "--strict: the study choosing one outer window's config (DIR/tune_summary.json lists them all)"
                if self.t.strict
                else "one study over every window's validation sessions, one config for all windows; a trial may "
                "read earlier windows' test bars (test_bars_seen_by_trials); --strict chooses per window"
            ),
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
            "finished_at": None if status == Status.RUNNING else rf.now(),
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
            state = Status.FAILED if "error" in tr.user_attrs else Status.INTERRUPTED
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
        return write_json(self.out / "tune_summary.json", doc, self.root or self.out)


def check_replaceable(folder: Path, what: str) -> None:
    """``folder`` is about to be replaced by a run of ``wf tune`` (``what``): empty or ours, else exit 2."""
    try:
        rf.check_clearable(folder)
    except FolderError as e:
        detail = str(e).split(": ", 1)[-1]
        raise FolderError(f"{folder}: wf tune replaces this folder with {what}, but it is {detail}") from None


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


__all__ = [
    "OBJECTIVES",
    "PRUNERS",
    "Space",
    "TuneOptions",
    "check_space",
    "decode_returns",
    "load_space",
    "seen_test_bars",
    "validation_windows",
]
