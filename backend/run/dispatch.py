"""The scheduling loop of `wf run`, `--seeds`, `--symbols`, `wf sweep` and `wf tune`: window tasks on one executor.

:func:`run_drivers` submits the planned tasks of one or many run drivers (:class:`backend.run.driver.RunDriver`)
as workers free up, holds a task back until its warm-start source has finished, hands every result to the
driver that owns it, and on Ctrl-C / SIGTERM winds down: running windows stop cleanly, the rest are marked.
The loop knows a driver only through :class:`TaskOwner`; nothing here imports torch.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import contextmanager
from typing import Any, Protocol

from backend.core.errors import EXIT_INTERRUPTED, EXIT_PARTIAL, EXIT_TRAINING
from backend.core.progress import RunProgress
from backend.core.status import Status, SummaryStatus
from backend.run.executor_api import Executor
from backend.run.tasks import WarmStart, WindowResult, WindowTask

INTERRUPT_GRACE_S = 120.0


class TaskOwner(Protocol):
    """What the loop needs of a run driver: its name, its warm-start sources and where its results go."""

    name: str
    fatal: bool  # an artifact could not be written: the driver's remaining tasks are dropped

    def source_of(self, task: WindowTask) -> str | None:
        """The window ``task`` warm-starts from (None: it starts from scratch)."""
        ...

    def warm_start(self, source_id: str) -> WarmStart:
        """The finished source window's model, verified."""
        ...

    def on_submit(self, task: WindowTask) -> None:
        """``task`` was handed to a worker."""
        ...

    def on_result(self, result: WindowResult) -> None:
        """A task's result landed."""
        ...

    def not_run(self, task: WindowTask, why: str, status: SummaryStatus = Status.INTERRUPTED) -> None:
        """``task`` will not run (interrupted, or its warm-start source failed)."""
        ...


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (KeyboardInterrupt), so the summary stays true."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_drivers(  # noqa: C901 - the scheduling loop (submit, wait, release dependants, wind down) in one view
    planned: Sequence[tuple[TaskOwner, list[WindowTask]]], executor: Executor, quiet: bool = False
) -> bool:
    """Run every driver's planned tasks on one executor; returns True if interrupted.

    Tasks whose warm-start source has not finished wait for it; everything else runs as soon
    as a worker is free, so every worker stays busy until the last task.
    """
    owner: dict[tuple[str, str], TaskOwner] = {}
    ready: list[WindowTask] = []
    waiting: dict[tuple[str, str], list[WindowTask]] = {}
    for d, tasks in planned:
        ids = {t.window.id for t in tasks}
        for t in tasks:
            owner[t.key] = d
            src = d.source_of(t)
            if src is None:
                ready.append(t)
            elif src in ids:
                waiting.setdefault((d.name, src), []).append(t)
            else:  # the source finished in an earlier run (resume)
                t.warm_start = d.warm_start(src)
                ready.append(t)
    running: dict[Any, WindowTask] = {}
    interrupted = False
    progress = RunProgress(sum(len(tasks) for _, tasks in planned), quiet=quiet)  # a bar on a terminal only
    with sigterm_as_interrupt(), progress:
        try:
            while ready or running:
                while ready and len(running) < executor.workers and not interrupted:
                    task = ready.pop(0)
                    owner[task.key].on_submit(task)
                    try:
                        running[executor.submit(task)] = task
                    except KeyboardInterrupt:
                        ready.insert(0, task)
                        raise
                    progress.on_submit(task)
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    result = _result(fut, task)
                    d = owner[task.key]
                    d.on_result(result)
                    progress.on_result(result)
                    interrupted |= result.status == Status.INTERRUPTED
                    _release(d, task, result, waiting, ready)
                    if d.fatal:
                        _drop(d, ready, waiting, "not run: an artifact could not be written", Status.FAILED)
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            _wind_down(executor, running, owner, ready, waiting)
        executor.close(cancel=interrupted)
    return interrupted


def _result(fut: Any, task: WindowTask) -> WindowResult:
    """A task's result; an executor failure (a worker lost twice) becomes a failed window."""
    try:
        return fut.result()
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        interrupted = "cancel" in type(e).__name__.lower()
        return WindowResult(
            task.run,
            task.window.id,
            Status.INTERRUPTED if interrupted else Status.FAILED,
            EXIT_INTERRUPTED if interrupted else EXIT_TRAINING,
            {"stage": "training", "type": type(e).__name__, "message": f"the worker running it failed: {e}"},
        )


def _release(d: TaskOwner, task: WindowTask, result: WindowResult, waiting: dict, ready: list) -> None:
    for dep in waiting.pop(task.key, []):
        if result.status == Status.COMPLETED:
            dep.warm_start = d.warm_start(task.window.id)
            ready.append(dep)
        else:
            d.not_run(dep, f"not run: its warm-start source {task.window.id} did not complete", Status.FAILED)
            _release(d, dep, WindowResult(dep.run, dep.window.id, Status.FAILED, EXIT_PARTIAL), waiting, ready)


def _drop(d: TaskOwner, ready: list[WindowTask], waiting: dict, why: str, status: SummaryStatus) -> None:
    for t in [t for t in ready if t.run == d.name]:
        ready.remove(t)
        d.not_run(t, why, status)
    for key in [k for k in waiting if k[0] == d.name]:
        for t in waiting.pop(key):
            d.not_run(t, why, status)


def _wind_down(executor: Executor, running: dict, owner: dict, ready: list, waiting: dict) -> None:
    """Ctrl-C / SIGTERM: stop every running window cleanly, keep what finished, mark the rest."""
    executor.interrupt()
    deadline = time.time() + INTERRUPT_GRACE_S
    while running and time.time() < deadline:
        try:
            done, _ = wait(list(running), timeout=max(0.1, deadline - time.time()), return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            break  # a second Ctrl-C: stop waiting
        for fut in done:
            task = running.pop(fut)
            owner[task.key].on_result(_result(fut, task))
    for task in list(running.values()) + ready + [t for ts in waiting.values() for t in ts]:
        owner[task.key].not_run(task, "not run: the run was interrupted")
