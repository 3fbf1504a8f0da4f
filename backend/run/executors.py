"""Where window tasks run: in this process, in a local pool of worker processes, or as Ray tasks.

Every executor turns ``submit(task)`` into a :class:`concurrent.futures.Future` of a
:class:`~backend.run.tasks.WindowResult`, so drivers schedule all three the same way.

* ``InProcess`` — runs the task at once (``--workers 1``); Ctrl-C reaches the training loop directly.
* ``LocalPool`` — ``--workers N`` spawned processes, one torch/JAX thread each by default. Workers
  ignore SIGINT; on Ctrl-C / SIGTERM the driver sets a shared stop flag that every running training
  loop checks (:class:`~backend.training.callbacks.StopCallback`), so each window ends ``interrupted``.
* ``RayPool`` — ``--executor ray [--ray-address ADDR]``. The bars go to the object store once per
  data hash; each task works in a scratch folder on its node and returns its files as bytes, which
  the driver alone writes: nothing needs a shared disk. A task whose worker dies is retried once;
  a task that fails twice is a failed window, not a crashed run.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from backend.core import stages
from backend.core.errors import EXIT_INPUT, HarnessError, InputError
from backend.run.executor_api import Executor
from backend.run.tasks import WindowResult, WindowTask, run_window

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
START_TIMEOUT_S = 300.0  # a local worker that has not started (imported the harness) by then is a start-up failure
UNIX_SOCKET_MAX = 107  # bytes of a Unix socket path (Linux); Ray's sockets live under its temp folder


class ExecutorError(HarnessError):
    """The executor could not start (Ray, the local worker pool); reported under its own stage, exit 2."""

    exit_code = EXIT_INPUT
    stage = stages.EXECUTOR


def one_thread_environment(threads: int = 1) -> None:
    """Thread limits for a worker, set before torch is imported there.

    JAX is configured when the first sbx agent is built (``algorithms.configure_worker``:
    its CPU pool is sized at initialisation), never here.
    """
    for name in THREAD_VARS:
        os.environ[name] = str(threads)


class InProcess:
    name = "in-process"
    workers = 1

    def submit(self, task: WindowTask) -> Future:
        fut: Future = Future()
        fut.set_result(run_window(task))
        return fut

    def interrupt(self) -> None:
        pass

    def close(self, cancel: bool = False) -> None:
        pass


_STOP: Any = None


def _init_worker(stop: Any, threads: int) -> None:
    global _STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us through the shared flag
    one_thread_environment(threads)
    _STOP = stop
    _exit_with_parent()


def _exit_with_parent() -> None:
    """A worker whose driver died (kill -9) exits instead of training on as an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(2.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="wf-parent-watch", daemon=True).start()


def _run_in_worker(task: WindowTask) -> WindowResult:
    return run_window(task, stop=_STOP)


def _ready() -> int:
    """A no-op task: the worker started and imported the harness."""
    return os.getpid()


class _Slot:
    """One worker process of a :class:`LocalPool`: a one-process executor, rebuilt when its process dies."""

    def __init__(self, ctx: Any, stop: Any, threads: int) -> None:
        self.ctx, self.stop, self.threads = ctx, stop, threads
        self.pool: ProcessPoolExecutor | None = None
        self.busy = False

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=self.ctx, initializer=_init_worker, initargs=(self.stop, self.threads)
        )

    def start(self) -> Future:
        """Start the worker process now (a no-op task); the future fails if it cannot start."""
        if self.pool is None:
            self.pool = self._new_pool()
        return self.pool.submit(_ready)

    def reset(self) -> None:
        """Drop this slot's process (it failed to start); the next task starts a fresh one."""
        dead, self.pool = self.pool, None
        if dead is not None:
            dead.shutdown(wait=False, cancel_futures=True)

    def submit(self, task: WindowTask) -> Future:
        if self.pool is None:
            self.pool = self._new_pool()
        try:
            inner = self.pool.submit(_run_in_worker, task)
        except BrokenProcessPool:  # the worker died while idle, between two tasks: no window was lost
            self.pool.shutdown(wait=False)
            self.pool = self._new_pool()
            inner = self.pool.submit(_run_in_worker, task)
        processes = list(getattr(self.pool, "_processes", {}).values())  # the worker (for its exit code)
        outer: Future = Future()
        self.busy = True
        inner.add_done_callback(lambda f: self._finish(f, outer, processes))
        return outer

    def _finish(self, inner: Future, outer: Future, processes: list[Any]) -> None:
        self.busy = False
        error = inner.exception() if not inner.cancelled() else None
        if inner.cancelled():
            outer.cancel()
            outer.set_running_or_notify_cancel()
        elif isinstance(error, BrokenProcessPool):
            dead, self.pool = self.pool, None  # the next task gets a fresh process
            if dead is not None:
                dead.shutdown(wait=False)
            outer.set_exception(WorkerDied(_death(processes)))
        elif error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(inner.result())

    def close(self, cancel: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


class WorkerDied(RuntimeError):
    """The worker process running a window task ended without a result (killed by a signal, OOM, crash)."""


def _death(processes: list[Any]) -> str:
    """'pid 123 killed by SIGKILL (exit code -9)' for the worker that died, as far as the OS told us."""
    for proc in processes:
        proc.join(timeout=1.0)
        code = proc.exitcode
        if code is None:
            continue
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"worker pid {proc.pid} killed by {name} (exit code {code}; an OOM kill is SIGKILL)"
        return f"worker pid {proc.pid} exited with code {code}"
    return "the worker process ended without a result"


class LocalPool:
    """``--workers N`` worker processes, one per slot, so that one worker's death fails only its own window.

    A worker killed by a signal (kill -9, the OOM killer) fails the window it was running, with the
    signal and exit code in its error; its slot starts a fresh process for the next task and the other
    workers keep training. The window is not retried: training is deterministic, so an OOM would recur,
    and ``--resume`` reruns exactly the failed windows (docs/parallel.md).
    """

    name = "local"

    def __init__(self, workers: int, threads: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workers = workers
        try:
            self.stop = ctx.Event()
        except OSError as e:  # no semaphores (e.g. /dev/shm missing or read-only)
            raise ExecutorError(
                f"the local worker pool (--workers {workers}) could not start: {type(e).__name__}: {e}; "
                "multiprocessing needs a writable /dev/shm — fix it or run with --workers 1"
            ) from e
        self.slots = [_Slot(ctx, self.stop, threads) for _ in range(workers)]

    def start(self, timeout: float = START_TIMEOUT_S) -> LocalPool:
        """Start every worker process now, so that a pool that cannot start fails before any window runs.

        A pool none of whose workers starts is an :class:`ExecutorError` (stage Executor, exit 2); a slot whose
        worker alone failed to start gets a fresh process at its first task.
        """
        errors: list[BaseException] = []
        started: list[tuple[_Slot, Future]] = []
        for slot in self.slots:
            try:
                started.append((slot, slot.start()))
            except Exception as e:  # OSError: the process could not be spawned
                errors.append(e)
                slot.reset()
        for slot, fut in started:
            try:
                fut.result(timeout=timeout)
            except Exception as e:  # BrokenProcessPool: it died starting; TimeoutError: it hangs
                errors.append(e)
                slot.reset()
        if len(errors) == len(self.slots):
            self.close(cancel=True)
            first = errors[0]
            raise ExecutorError(
                f"the local worker pool (--workers {self.workers}) could not start its worker processes: "
                f"{type(first).__name__}: {first or 'no result'}; check the limits on processes and memory "
                "(ulimit -u, cgroups) or run with --workers 1"
            ) from first
        return self

    def submit(self, task: WindowTask) -> Future:
        free = [slot for slot in self.slots if not slot.busy]
        if not free:  # drivers submit at most `workers` tasks at once; queue on the first slot otherwise
            free = self.slots[:1]
        try:
            return free[0].submit(task)
        except OSError as e:  # a fresh worker (after a death) could not be started: this window fails
            failed: Future = Future()
            failed.set_exception(ExecutorError(f"the local pool could not start a worker process: {e}"))
            return failed

    def interrupt(self) -> None:
        self.stop.set()

    def close(self, cancel: bool = False) -> None:
        for slot in self.slots:
            slot.close(cancel)


def _ray_run(task: WindowTask, market: Any, threads: int) -> WindowResult:
    one_thread_environment(threads)
    return run_window(task, market=market)


class RayPool:
    name = "ray"

    def __init__(self, workers: int, address: str | None = None, threads: int = 1, gpus_per_task: float = 0.0):
        try:
            import ray
        except ImportError as e:
            raise InputError("--executor ray needs Ray: pip install '.[ray]' (or pip install ray)") from e
        self.ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = max(1, workers)
            try:
                ray.init(**kwargs)
            except Exception as e:  # a socket path too long, a cluster that cannot be reached, no resources ...
                raise ExecutorError(_ray_start_failure(e, address)) from e
        self.workers = workers
        self.threads = threads
        self._remote = ray.remote(num_cpus=threads, num_gpus=gpus_per_task, max_retries=1, retry_exceptions=False)(
            _ray_run
        )
        self._bars: dict[str, Any] = {}
        self._refs: list[Any] = []

    def submit(self, task: WindowTask) -> Future:
        if task.data_hash not in self._bars:
            self._bars[task.data_hash] = self.ray.put(task.market)
        shipped = dataclasses.replace(task, market=None, root=None, progress=False)
        ref = self._remote.remote(shipped, self._bars[task.data_hash], self.threads)
        self._refs.append(ref)
        return ref.future()

    def interrupt(self) -> None:
        """Stop running tasks now (force: a worker started with SIGINT ignored would not hear a soft cancel)."""
        for ref in self._refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:
                pass

    def close(self, cancel: bool = False) -> None:
        self._bars.clear()


def _ray_start_failure(error: BaseException, address: str | None) -> str:
    """Why Ray did not start, and what to do about it."""
    cause = f"{type(error).__name__}: {error}"
    if address is not None:
        return (
            f"Ray could not connect to --ray-address {address} ({cause}); check the address and that the "
            "cluster is up (ray status), or leave --ray-address out to start a local Ray"
        )
    tmp = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    hint = (
        f"Ray's socket paths live under its temp folder {tmp} (plus about 60 characters) and a Unix socket path "
        f"may not exceed {UNIX_SOCKET_MAX} bytes: set RAY_TMPDIR to a short folder (e.g. export RAY_TMPDIR=/tmp/ray)"
        if "107" in str(error) or "path length" in str(error).lower() or len(tmp) > 40
        else "check free memory and disk in the temp folder, or use --executor local"
    )
    return f"Ray could not start a local instance ({cause}); {hint}"


def make_executor(kind: str, workers: int, *, ray_address: str | None = None, threads: int = 1) -> Executor:
    """The executor of ``kind``, started: a Ray or pool start-up failure is an :class:`ExecutorError` (exit 2)."""
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if kind == "ray":
        return RayPool(workers, ray_address, threads)
    if kind != "local":
        raise InputError(f"--executor {kind!r}: use local or ray")
    return InProcess() if workers == 1 else LocalPool(workers, threads).start()
