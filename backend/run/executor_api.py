"""The executor interface: what the run driver needs from whatever runs its window tasks.

Implemented by :class:`backend.run.executors.InProcess`, ``LocalPool`` and ``RayPool`` and by the tune study's
per-trial gate (``backend.studies.tune.trial._Gate``); ``tests/test_typing.py`` checks each of them against it.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # tasks imports the config and features: only the annotation needs them
    from backend.run.tasks import WindowResult, WindowTask


@runtime_checkable
class Executor(Protocol):
    """Runs window tasks, at most ``workers`` at a time; each ``submit`` returns a future of the task's result."""

    workers: int

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        """Start (or run at once) one window task."""
        ...

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: ask the running tasks to stop (they finish as `interrupted`)."""
        ...

    def close(self, cancel: bool = False) -> None:
        """Release the workers; ``cancel``: drop the tasks not started yet."""
        ...
