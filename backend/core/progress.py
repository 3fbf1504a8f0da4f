"""Progress in a terminal: the run's window tasks (k of n, ETA) and one window's training steps.

Both bars are tqdm lines at the bottom of the terminal; stage markers keep printing above them
(:func:`backend.core.stages.emit` and :func:`backend.core.stages.say` go through :meth:`RunProgress.write` while
a bar is shown, which clears the bar, prints the line and redraws the bar). Under ``--quiet``, or
when stdout is not a terminal (a pipe, a CI log, a file), there are no bars at all: only the stage
markers.

ETAs come from measured rates only: the run's from the tasks finished so far (tasks per second over
the whole run, which is right with several workers too), a window's from the steps per second since
SAC started learning (``learning_starts``): the random-action warm-up before it runs many times
faster than learning and would make any ETA taken from it far too short.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from backend.core import stages
from backend.core.status import Status


def _terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunProgress:
    """Window tasks done of total, what is running, and an ETA; the run driver calls it.

    ``total``: the tasks planned (every window of every member or seed); ``enabled``: show a bar
    (default: stdout is a terminal and not ``quiet``). Use as a context manager or call :meth:`close`.
    ``on_submit(task)`` when a task starts, ``on_result(result)`` when it lands (after the driver has
    printed its stage lines), ``write(line)`` for any line that must not tear the bar.
    """

    def __init__(self, total: int, quiet: bool = False, enabled: bool | None = None, desc: str = "windows") -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.enabled = (not quiet and _terminal()) if enabled is None else enabled
        self.running: dict[tuple[str, str], tuple[int, int] | None] = {}
        self.started = time.perf_counter()
        self.bar: Any = None
        if self.enabled and total > 0:
            self.bar = tqdm(
                total=total,
                desc=desc,
                unit="window",
                position=0,
                leave=False,
                dynamic_ncols=True,
                smoothing=0.0,  # the average over the run: tasks of one run take about the same time
                bar_format="{desc}: {n_fmt} of {total_fmt} done |{bar}| {elapsed} elapsed, ETA {remaining}{postfix}",
            )
            self._previous_writer = stages.set_writer(self.write)

    # -- the driver's calls
    def on_submit(self, task: Any) -> None:
        self.running[task.key] = getattr(task, "position", None)
        self._postfix()

    def on_result(self, result: Any) -> None:
        self.running.pop(result.key, None)
        self.done += 1
        self.failed += getattr(result, "status", Status.COMPLETED) != Status.COMPLETED
        if self.bar is not None:
            self.bar.update(1)
        self._postfix()

    def write(self, line: str, err: bool = False) -> None:
        """Print a line above the bar (tqdm.write clears and redraws it); plain print without a bar."""
        stream = sys.stderr if err else sys.stdout
        if self.bar is not None:
            self.bar.write(line, file=stream)
            stream.flush()
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            stages.set_writer(self._previous_writer)
            self.bar.close()
            self.bar = None

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- text
    def describe(self) -> str:
        """What runs now: ``a_s0 w01 (window 1 of 3)``, …; failures so far."""
        parts = []
        for (run, wid), pos in list(self.running.items())[:3]:
            where = f" (window {pos[0]} of {pos[1]})" if pos else ""
            parts.append(f"{run + ' ' if run else ''}{wid}{where}")
        if len(self.running) > 3:
            parts.append(f"+{len(self.running) - 3} more")
        text = "running " + ", ".join(parts) if parts else ""
        if self.failed:
            text += f"{'; ' if text else ''}{self.failed} failed"
        return text

    def _postfix(self) -> None:
        if self.bar is not None:
            text = self.describe()
            self.bar.set_postfix_str(text, refresh=True)


class TrainingBar:
    """One window's training steps with an ETA from the rate measured after ``learning_starts``.

    A drop-in for the tqdm bar that ``ProgressFileCallback`` updates once per step (``update(1)``,
    ``close()``). Before learning starts it says so; after, it shows the learning rate in steps/s and
    the time left at that rate. ``enabled`` defaults to stdout being a terminal.
    """

    REFRESH_S = 0.5

    def __init__(
        self, total: int, learning_starts: int = 0, desc: str = "training", enabled: bool | None = None
    ) -> None:
        self.total, self.learning_starts = int(total), max(0, int(learning_starts))
        self.n = 0
        self.learn_t: float | None = None
        self.learn_n = 0
        self._shown = 0.0
        self.bar: Any = None
        if _terminal() if enabled is None else enabled:
            self.bar = tqdm(
                total=self.total,
                desc=desc,
                unit="step",
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps, {elapsed}{postfix}",
            )
            self.bar.set_postfix_str(self.status(time.perf_counter()), refresh=False)

    def status(self, now: float) -> str:
        """``warm-up …`` before learning starts, then ``212 steps/s learning, ETA 1:05``."""
        if self.learn_t is None:
            return f"warm-up (random actions) until step {self.learning_starts:,}; ETA once learning runs"
        steps, seconds = self.n - self.learn_n, now - self.learn_t
        if steps < 10 or seconds < 1.0:
            return "learning; measuring the rate"
        rate = steps / seconds
        return f"{rate:,.0f} steps/s learning, ETA {_clock((self.total - self.n) / rate)}"

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left at the learning rate measured so far (None before there is one)."""
        now = time.perf_counter() if now is None else now
        if self.learn_t is None or self.n - self.learn_n < 10 or now - self.learn_t < 1.0:
            return None
        return (self.total - self.n) / ((self.n - self.learn_n) / (now - self.learn_t))

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.learn_t is None and self.n >= self.learning_starts:
            self.learn_t, self.learn_n = now, self.n
        if self.bar is not None:
            if now - self._shown >= self.REFRESH_S:
                self.bar.set_postfix_str(self.status(now), refresh=False)
                self._shown = now
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
