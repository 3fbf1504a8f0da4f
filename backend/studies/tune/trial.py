"""One `wf tune` trial: a run driver over the trial's inner windows that reports each finished window to Optuna
in time order (and may halt the trial), and the executor gate that skips a halted trial's remaining windows.

The progress hook is ``_report_progress`` (not ``RunDriver._report(code)``, the run report builder, which it used
to shadow with another signature): a trial driver still builds no HTML report because trials pass
``no_report=True``, but nothing depends on that flag to keep the two apart.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from backend.core import stages
from backend.core.errors import EXIT_OK
from backend.core.status import PRUNED, STAGE_OK, Status, SummaryStatus
from backend.evaluation.aggregate import stitched
from backend.run import folder as rf
from backend.run.driver import RunDriver
from backend.run.options import DriverOptions
from backend.run.tasks import WindowResult, WindowTask
from backend.run.window_setup import Setup
from backend.studies.tune.split import objective_value

SKIPPED = Status.SKIPPED  # a window a halted trial does not run (a result status internal to the tune package)


class TrialFailed(Exception):
    """The trial cannot be scored (config rejected, a window failed): Optuna marks it FAIL and the search goes on."""


class _TrialDriver(RunDriver):
    """One trial's run folder; finished windows are reported to Optuna in time order, and may halt the trial."""

    def __init__(self, opts: DriverOptions, s: Setup, trial: Any, objective: str) -> None:
        super().__init__(opts, s, opts.prefix)
        self.trial, self.objective = trial, objective
        self.order = [w.id for w in sorted(s.windows, key=lambda w: w.test_start)]
        self.values: list[float] = []
        self.halted: SummaryStatus | None = None  # pruned | failed
        self.why = ""

    def halt(self, status: SummaryStatus, why: str) -> None:
        if self.halted is None:
            self.halted, self.why = status, why

    def on_result(self, result: WindowResult) -> None:
        if result.status == SKIPPED:
            assert self.summary is not None and self.halted is not None  # the gate skips a halted trial's windows
            self.summary.window(result.window_id).update(
                {"status": self.halted, "error": {"stage": "training", "type": "NotRun", "message": self.why}}
            )
            self.summary.stage(f"window_{result.window_id}", self.halted, 0.0)
            return
        super().on_result(result)
        if result.status == Status.FAILED:
            self.halt(Status.FAILED, f"not run: window {result.window_id} of this trial failed")
        self._report_progress()

    def _report_progress(self) -> None:
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
                    PRUNED,
                    f"not run: the trial was pruned after {len(self.values)} of {len(self.order)} windows "
                    f"({self.objective} {value:.4g} so far)",
                )

    def not_run(self, task: WindowTask, why: str, status: SummaryStatus = Status.INTERRUPTED) -> None:
        if self.halted == PRUNED and status == Status.FAILED:  # a warm-start chain cut by pruning
            status, why = PRUNED, self.why
        super().not_run(task, why, status)

    def finish(self, interrupted: bool) -> int:
        if self.halted != PRUNED or interrupted:
            return super().finish(interrupted)
        assert self.summary is not None
        doc = self.summary.doc
        done = [e for e in doc["windows"] if e["status"] == Status.COMPLETED]
        doc["aggregate"], doc["statistics"] = stitched(
            [self.series[e["id"]] for e in done], self.s.periods_per_year, self.cfg
        )
        doc.update(
            {
                "status": PRUNED,
                "finished_at": rf.now(),
                "seconds": round(time.perf_counter() - self.summary.started, 3),
            }
        )
        self.summary.stage("summary", STAGE_OK, 0.0)
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
