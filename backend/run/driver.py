"""`wf run`: one run folder as a driver over window tasks.

:func:`execute` runs one :class:`RunDriver`: it prepares the run folder, decides what resumes, plans one task per
window, folds each result into summary.json as it lands (the document: :mod:`backend.run.summary`) and finishes
the run (aggregate, status, report). The tasks run on an executor (in process, a local process pool, or Ray)
through the scheduling loop :func:`backend.run.dispatch.run_drivers`, which ``--seeds``, ``--symbols``, `wf sweep`
and `wf tune` share to run many drivers on one pool. Nothing here imports torch at module level: the dry-run path
stays light. The Window Setup API (``setup``, ``Setup``, ...) and ``run_drivers`` are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

from backend.config.models import config_dict, config_hash
from backend.core import stages
from backend.core.errors import (
    EXIT_ARTIFACTS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    ArtifactError,
    FolderError,
    InputError,
)
from backend.core.jsonio import write_json, write_text
from backend.core.status import STAGE_OK, Status, SummaryStatus
from backend.evaluation import report
from backend.evaluation.aggregate import stitched
from backend.run import executors
from backend.run import folder as rf
from backend.run.dispatch import run_drivers, sigterm_as_interrupt  # noqa: F401 - re-exported: sweep, seeds, tune
from backend.run.options import DriverOptions, RunRequest, SetupOptions  # noqa: F401 - re-exported
from backend.run.provenance import command_line, environment
from backend.run.summary import SummaryFile, WindowEntry, gates, run_status, summary_document, window_entry
from backend.run.tasks import WarmStart, WindowResult, WindowTask
from backend.run.window_setup import (  # noqa: F401 - the setup API is re-exported for drivers and scripts
    Setup,
    dry_run_table,
    setup,
    window_setup_detail,
    windows_hash,
)
from backend.training import bundle
from backend.training.tb import log_hparams
from backend.walkforward.windows import Window, windows_document


def execute(opts: DriverOptions, s: Setup) -> int:
    """Train and evaluate every window of one run; returns the exit code."""
    driver = RunDriver(opts, s)
    with driver:
        executor = executors.make_executor(
            opts.executor, opts.workers, ray_address=opts.ray_address, threads=s.cfg.training.torch_threads
        )
        interrupted = run_drivers([(driver, driver.plan())], executor, quiet=opts.quiet)
        return driver.finish(interrupted)


# ------------------------------------------------------------------------------------------ warm-start chains


def warm_start_sources(windows: list[Window], embargo: int) -> dict[str, str | None]:
    """Each window's warm-start source: the latest window whose train and test spans end before its test start.

    Windows are ordered by time whatever the file order; a window never starts from a model
    whose data reach its own test span (exit 2 if the windows cannot be ordered that way).
    """
    ordered = sorted(windows, key=lambda w: (w.test_start, w.train_start))
    sources: dict[str, str | None] = {}
    for k, w in enumerate(ordered):
        if k == 0:
            sources[w.id] = None
            continue
        prev = ordered[k - 1]
        if prev.train_end + embargo > w.test_start or prev.test_end > w.test_start:
            raise InputError(
                f"training.warm_start: window {w.id} would start from {prev.id}, whose spans reach its test span; "
                "give windows whose train and test spans follow each other in time, or turn warm_start off"
            )
        sources[w.id] = prev.id
    return sources


# ------------------------------------------------------------------------------------------ one run folder


class RunDriver:
    """One run folder: plans its window tasks, folds their results into summary.json, finishes the run."""

    def __init__(self, opts: DriverOptions, s: Setup, name: str | None = None) -> None:
        self.opts, self.s = opts, s
        self.name = opts.prefix if name is None else name
        self.out = rf.check_output_dir(opts.output_dir)
        self.cfg = s.cfg
        self.config_hash = config_hash(s.cfg)
        self.data_hash = s.bars.data_hash()
        self.summary: SummaryFile | None = None
        self.series: dict[str, dict[str, Any]] = {}
        self.failures: list[int] = []
        self.fatal = False
        self.sources: dict[str, str | None] = {}
        self.reasons: dict[str, str] = {}
        self._lock: rf.FolderLock | None = None
        self.unchanged: dict[str, Any] | None = None

    # -- set-up
    def __enter__(self) -> RunDriver:
        if self.opts.overwrite:
            rf.check_clearable(self.out)  # a folder that is not ours: refused before it even gets a lock file
        rf.create(self.out)
        self._lock = rf.FolderLock(self.out).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.__exit__()
            self._lock = None

    def plan(self) -> list[WindowTask]:
        """Folder checks, resume decisions, resolved files and the first summary; the tasks to run."""
        opts, s = self.opts, self.s
        previous = rf.read_previous(self.out) if not opts.overwrite else None
        if previous is not None and not opts.resume:
            raise FolderError(
                f"--output-dir {self.out}: already holds a run (summary.json); pass --resume to continue it, "
                "--overwrite to replace it, or choose another folder"
            )
        if opts.overwrite:
            rf.clear(self.out)
        entries = [window_entry(w, s) for w in s.windows]
        plan = (
            rf.plan_resume(
                previous, config_hash=self.config_hash, data_hash=self.data_hash, entries=entries, out=self.out
            )
            if previous is not None
            else rf.ResumePlan({}, {})
        )
        self.reasons = plan.reasons if previous is not None else {}
        self.sources = warm_start_sources(s.windows, s.embargo) if self.cfg.training.warm_start else {}
        if previous is not None and previous.get("status") == Status.COMPLETED and len(plan.skip) == len(s.windows):
            self.unchanged = previous  # nothing to do: leave the finished run exactly as it is
            for wid in plan.skip:
                stages.emit(True, f"Training [{wid}]", "skipped, completed earlier (--resume)", self.name)
            return []
        rf.check_paths(self.out, [w.id for w in s.windows])  # the report writes w01/report.png of skipped ones too
        self._write_run_files()
        doc = summary_document(
            s,
            entries,
            config_hash=self.config_hash,
            data_hash=self.data_hash,
            executor=opts.executor,
            workers=opts.workers,
        )
        self.summary = SummaryFile(self.out / "summary.json", doc)
        for wid, entry in plan.skip.items():
            self._restore(wid, entry)
        self.summary.save()
        if self.sources:
            by_time = sorted(s.windows, key=lambda w: (w.test_start, w.train_start))
            chain = " -> ".join(w.id for w in by_time)
            print(f"warm start: the windows form a chain and train in order ({chain})", flush=True)
        return [self._task(k, w) for k, w in enumerate(s.windows) if w.id not in plan.skip]

    def _write_run_files(self) -> None:
        s = self.s
        write_json(self.out / "config.resolved.json", config_dict(self.cfg))
        write_json(
            self.out / "windows.resolved.json",
            windows_document(s.windows, s.market.timestamps, s.timezone, s.embargo),
        )
        write_text(self.out / "command.txt", command_line())
        write_json(self.out / "environment.json", environment())

    def _restore(self, wid: str, entry: dict[str, Any]) -> None:
        from backend.evaluation.replay import headline, read_series  # heavy: gymnasium

        assert self.summary is not None
        k = next(i for i, w in enumerate(self.summary.doc["windows"]) if w["id"] == wid)
        self.summary.doc["windows"][k] = cast(WindowEntry, entry)  # checked by rf.plan_resume
        frame = read_series(self.out / wid / "equity.csv")
        self.series[wid] = {c: frame[c].to_numpy() for c in frame.columns}
        stages.emit(
            True,
            f"Training [{wid}]",
            "skipped, completed earlier (--resume; spans, config, data and bundle unchanged)",
            self.name,
        )
        stages.emit(True, f"Evaluation [{wid}]", headline(entry["evaluation"]), self.name)

    def _task(self, k: int, w: Window) -> WindowTask:
        s = self.s
        return WindowTask(
            run=self.name,
            config=self.cfg,
            window=w,
            position=(k + 1, len(s.windows)),
            embargo=s.embargo,
            timezone=s.timezone,
            data_hash=self.data_hash,
            provenance=s.bars.provenance,
            periods_per_year=s.periods_per_year,
            market=s.market,
            benchmark=s.benchmark,
            root=self.out,
            progress=not self.opts.quiet and self.opts.workers == 1 and self.opts.executor == "local",
        )

    @property
    def doc(self) -> Mapping[str, Any]:
        """The run's summary as it stands (the previous one when nothing had to run)."""
        if self.summary is not None:
            return self.summary.doc
        return self.unchanged or {"windows": [], "status": Status.PENDING}

    def source_of(self, task: WindowTask) -> str | None:
        return self.sources.get(task.window.id)

    def warm_start(self, source_id: str) -> WarmStart:
        """The source window's model, verified against its metadata and this run's summary first."""
        assert self.summary is not None
        wdir = self.out / source_id
        meta = bundle.read_metadata(wdir)
        record = self.summary.window(source_id).get("bundle")
        bundle.verify_files(wdir, meta, record.get("files") if record else None)
        return WarmStart(source_id, (wdir / bundle.MODEL_FILE).read_bytes(), bundle.data_end(meta))

    # -- results
    def on_submit(self, task: WindowTask) -> None:
        """The window's training is under way: summary.json says ``training`` until its result lands."""
        if self.summary is None:
            return
        entry = self.summary.window(task.window.id)
        if entry["status"] == Status.PENDING:
            entry["status"] = Status.TRAINING
            self.summary.save()

    def on_result(self, result: WindowResult) -> None:
        from backend.evaluation.replay import headline  # heavy: gymnasium

        assert self.summary is not None
        wid, entry = result.window_id, self.summary.window(result.window_id)
        if result.artifacts:
            rf.write_artifacts(self.out, result.artifacts)
        why = f" (retrained: {self.reasons[wid]})" if wid in self.reasons and self.opts.resume else ""
        if result.status == Status.COMPLETED:
            self._completed(entry, result)
            t = result.training or {}
            warm = f", warm start from {t['warm_start_from']}" if t.get("warm_start_from") else ""
            on = f" on {t['backend']}{' (auto)' if t.get('backend_choice') else ''}" if t.get("backend") else ""
            rate = f"{t['steps_per_second']:,.0f} steps/s{on}"
            stages.emit(
                True,
                f"Training [{wid}]",
                f"{t['timesteps']:,} steps, {t['seconds']:.1f} s, {rate}{warm}{why}",
                self.name,
            )
            stages.emit(True, f"Evaluation [{wid}]", headline(result.evaluation or {}), self.name)
        else:
            err = result.error or {"stage": "training", "type": "Error", "message": "unknown failure"}
            entry.update({"status": result.status, "error": err})
            stage = "Evaluation" if err["stage"] == "evaluation" else "Training"  # error stages: training, evaluation
            if result.status == Status.INTERRUPTED:
                text = f"interrupted (Ctrl-C / SIGTERM); rerun with --resume{why}"
            else:
                text = f"{err['type']}: {err['message']}{why}"
                self.failures.append(result.exit_code)
                self.fatal |= result.exit_code == EXIT_ARTIFACTS
            stages.emit(False, f"{stage} [{wid}]", text, self.name)
        self.summary.stage(f"window_{wid}", entry["status"], result.seconds)

    def _completed(self, entry: WindowEntry, result: WindowResult) -> None:
        entry.update(
            {
                "status": Status.COMPLETED,
                "error": None,
                "training": result.training,
                "evaluation": result.evaluation,
                "baselines": result.baselines,
                "beats": result.beats,
                "cost_sensitivity": result.cost_sensitivity,
                "diagnostics": result.diagnostics,
                "benchmark": result.benchmark,
                "bundle": {"files": result.bundle_files, "outputs": result.output_files},
                "gates": gates(self.cfg, result.evaluation or {}, result.beats or {}),
            }
        )
        self.series[result.window_id] = result.series or {}
        for warning in (result.diagnostics or {}).get("warnings", []):
            assert self.summary is not None
            self.summary.doc["warnings"].append(f"{result.window_id}: {warning}")
            stages.say(f"warning: {(self.name + ': ') if self.name else ''}{result.window_id}: {warning}", err=True)

    def not_run(self, task: WindowTask, why: str, status: SummaryStatus = Status.INTERRUPTED) -> None:
        assert self.summary is not None
        entry = self.summary.window(task.window.id)
        if entry["status"] in (Status.PENDING, Status.TRAINING):
            entry.update({"status": status, "error": {"stage": "training", "type": "NotRun", "message": why}})
            if status == Status.FAILED:
                self.failures.append(EXIT_PARTIAL)
                stages.emit(False, f"Training [{task.window.id}]", why, self.name)

    # -- the end
    def finish(self, interrupted: bool) -> int:
        if self.unchanged is not None:
            stages.emit(True, "Summary", f"{self.out / 'summary.json'} (unchanged: completed earlier)", self.name)
            return EXIT_OK
        assert self.summary is not None
        summary = self.summary
        entries = summary.doc["windows"]
        done = [e for e in entries if e["status"] == Status.COMPLETED]
        summary.doc["aggregate"], summary.doc["statistics"] = stitched(
            [self.series[e["id"]] for e in done], self.s.periods_per_year, self.cfg
        )
        gated = [g["passed"] for e in entries if (g := e.get("gates"))]
        if gated:
            summary.doc["gates"] = {"windows_passed": int(sum(gated)), "windows_checked": len(gated)}
        status, code = run_status(
            interrupted=interrupted, fatal=self.fatal, done=len(done), total=len(entries), failures=self.failures
        )
        if self.cfg.training.tensorboard and done:
            log_hparams(self.out / "tensorboard", self.cfg, summary.doc["aggregate"])
        summary.doc.update(
            {"status": status, "finished_at": rf.now(), "seconds": round(time.perf_counter() - summary.started, 3)}
        )
        summary.save()
        if not self.opts.no_report and done and not interrupted:
            code = self._report(code)
        summary.stage("summary", STAGE_OK, 0.0)
        text = f"{summary.path}" + (
            "" if summary.doc["status"] == Status.COMPLETED else f" (status {summary.doc['status']})"
        )
        stages.emit(summary.doc["status"] == Status.COMPLETED, "Summary", text, self.name)
        return code

    def _report(self, code: int) -> int:
        """report.html + PNGs: a failure is shown and recorded; a full disk is exit 6 and says so."""
        assert self.summary is not None
        t0 = time.perf_counter()
        try:
            path = report.build_report(self.out)
        except KeyboardInterrupt:
            self.summary.doc["warnings"].append("report interrupted (Ctrl-C); rebuild it with --resume")
            self.summary.stage("report", Status.INTERRUPTED, time.perf_counter() - t0)
            stages.emit(False, "Report", "interrupted", self.name)
            self.summary.doc["status"] = Status.INTERRUPTED
            self.summary.save()
            return EXIT_INTERRUPTED
        except ArtifactError as e:
            self.summary.doc.update(
                {"status": Status.FAILED, "error": {"stage": "report", "type": "ArtifactError", "message": str(e)}}
            )
            self.summary.stage("report", Status.FAILED, time.perf_counter() - t0)
            stages.emit(False, "Report", f"ArtifactError: {e}", self.name)
            return EXIT_ARTIFACTS
        except Exception as e:
            self.summary.doc["warnings"].append(f"report failed: {type(e).__name__}: {e}")
            self.summary.stage("report", Status.FAILED, time.perf_counter() - t0)
            stages.emit(False, "Report", f"{type(e).__name__}: {e}", self.name)
            return code
        self.summary.stage("report", STAGE_OK, time.perf_counter() - t0)
        stages.emit(True, "Report", str(path), self.name)
        return code
