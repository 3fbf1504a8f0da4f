"""What every `wf` command shares: the error boundary (stage line + exit code) and option groups."""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import click

from backend.config.models import DATA_SOURCES
from backend.core import stages
from backend.core.errors import (
    EXIT_DATA,
    EXIT_EVALUATION,
    EXIT_INTERRUPTED,
    EXIT_TRAINING,
    ArtifactError,
    DataError,
    EvaluationError,
    FolderError,
    HarnessError,
    InputError,
    TrainingError,
)
from backend.core.intervals import INTERVALS
from backend.core.status import Status

STAGE_OF = {
    FolderError: "Run Folder",  # checked after Window Setup was declared ok: its own stage line
    InputError: "Window Setup",
    DataError: "Window Setup",
    TrainingError: "Training",
    EvaluationError: "Evaluation",
    ArtifactError: "Artifacts",
}
"""Stage of an error raised by a run-like command (one that prints Window Setup → Training → Evaluation)."""

RUN_LIKE_STAGES = ("Window Setup", "Audit")
"""Commands whose ``handle_errors`` stage is one of these label errors by type (:data:`STAGE_OF`); every other
command (``wf compare``, ``wf data …``, ``wf sweep``, ``wf eval`` …) labels every error with its own stage."""

_INTERNAL_EXIT = {"Evaluation": EXIT_EVALUATION, "Training": EXIT_TRAINING}
"""Exit code of an unexpected exception by the command's stage (``EXIT_DATA`` otherwise, as in the first round)."""


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    for name in ("yfinance", "peewee", "matplotlib", "tensorboard", "absl"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def stage_for(error: BaseException, default_stage: str, by_error_type: bool | None = None) -> str:
    """The stage an error is reported under: its own (``stage``), the command's, or (run-like) the error type's."""
    own = getattr(error, "stage", None)
    if isinstance(own, str):  # e.g. an executor that could not start: "Executor"
        return own
    if by_error_type is None:
        by_error_type = default_stage in RUN_LIKE_STAGES
    if by_error_type:
        return next((name for cls, name in STAGE_OF.items() if isinstance(error, cls)), default_stage)
    return default_stage


def handle_errors(
    default_stage: str, by_error_type: bool | None = None
) -> Callable[[Callable[..., int]], Callable[..., None]]:
    """Run a command body; map errors to a ❌ stage line and the error's exit code.

    ``default_stage`` is the command's own stage (``Compare``, ``Data``, ``Sweep`` …). Errors are reported
    under it, except in run-like commands (``by_error_type``; default: the stage is in :data:`RUN_LIKE_STAGES`),
    where the error type names the stage (an ``InputError`` belongs to Window Setup, a ``TrainingError`` to
    Training …). The stage is also kept on the wrapper (``wf_stage``) for :class:`StageCommand`'s usage errors.
    """

    def deco(fn: Callable[..., int]) -> Callable[..., None]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            debug = bool(kwargs.get("debug"))
            if kwargs.get("quiet"):
                _quiet_libraries()
            prefix = kwargs.get("member_name") or ""
            try:
                code = fn(*args, **kwargs)
            except HarnessError as e:
                stages.emit(False, stage_for(e, default_stage, by_error_type), f"{type(e).__name__}: {e}", prefix)
                if debug:
                    traceback.print_exc()
                sys.exit(e.exit_code)
            except KeyboardInterrupt:
                stages.emit(False, default_stage, Status.INTERRUPTED, prefix)
                sys.exit(EXIT_INTERRUPTED)
            except click.exceptions.Exit:
                raise
            except Exception as e:
                stages.emit(
                    False, default_stage, f"{type(e).__name__}: {e} (internal error; rerun with --debug)", prefix
                )
                if debug:
                    traceback.print_exc()
                sys.exit(_INTERNAL_EXIT.get(default_stage, EXIT_DATA))
            sys.exit(code)

        wrapper.wf_stage = default_stage  # type: ignore[attr-defined]
        return wrapper

    return deco


class StageCommand(click.Command):
    """A click command whose usage errors (a bad flag value, a missing argument) are stage lines too.

    ``wf compare --sort bogus`` prints ``[STAGE ❌] Compare — UsageError: Invalid value for '--sort': …`` on
    stdout (click names the flag as the user typed it) and click's help hint on stderr, and exits 2.
    The stage is the one given to :func:`handle_errors` for the command's body.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            stage = getattr(self.callback, "wf_stage", None) or (self.name or "Command").title()
            stages.emit(False, stage, f"UsageError: {e.format_message()}")
            if e.ctx is not None:
                hint = e.ctx.help_option_names[0] if e.ctx.help_option_names else "--help"
                click.echo(f"Try '{e.ctx.command_path} {hint}' for help.", err=True)
            sys.exit(e.exit_code)


class StageGroup(click.Group):
    """A click group whose commands are :class:`StageCommand` s (usage errors become stage lines)."""

    command_class = StageCommand


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--symbol", help="Ticker (the bundled sample is SPY)."),
            click.option(
                "--source",
                type=click.Choice(DATA_SOURCES),
                help="Where bars come from (default: file with --data, sample for SPY, else yfinance).",
            ),
            click.option("--data", "data", type=str, help="CSV/Parquet file of bars (implies --source file)."),
            click.option("--interval", type=click.Choice(INTERVALS), help="Bar interval."),
            click.option("--cache-dir", type=str, help="yfinance/import cache folder (default: the user's cache dir)."),
            click.option(
                "--benchmark", type=str, help="Benchmark symbol for the buy-and-hold line and relative metrics."
            ),
            click.option("--config", type=str, help="Config JSON (default configs/sac_intraday.json)."),
            click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Override a config value."),
            click.option("--quiet", is_flag=True, help="Only stage markers and the summary path."),
            click.option("--debug", is_flag=True, help="Show tracebacks of errors."),
        ]
    ):
        fn = opt(fn)
    return fn


def window_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--windows FILE, or automatic windows (--start/--end/--train-days/--test-days/--step-days/--mode)."""
    for opt in reversed(
        [
            click.option("--windows", type=str, help="Window file (list, or object with 'windows')."),
            click.option("--start", help="First date of automatic windows (YYYY-MM-DD)."),
            click.option("--end", help="Last date of automatic windows."),
            click.option("--train-days", type=int, help="Train span of automatic windows, in sessions."),
            click.option("--test-days", type=int, help="Test span of automatic windows, in sessions."),
            click.option(
                "--step-days", type=int, help="Step between automatic windows, in sessions (default: test days)."
            ),
            click.option("--mode", type=click.Choice(["rolling", "anchored"]), default="rolling", show_default=True),
            click.option("--embargo-bars", type=int, help="Bars left out between train and test."),
        ]
    ):
        fn = opt(fn)
    return fn


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--workers N, --executor local|ray, --ray-address ADDR (every driver of window tasks)."""
    for opt in reversed(
        [
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Window tasks at once (processes, one torch/JAX thread each; Ray: CPUs of a local cluster).",
            ),
            click.option(
                "--executor",
                type=click.Choice(["local", "ray"]),
                default="local",
                show_default=True,
                help="local: this machine; ray: Ray tasks (no shared disk needed).",
            ),
            click.option(
                "--ray-address", type=str, default=None, help="Existing Ray cluster (default: start a local one)."
            ),
        ]
    ):
        fn = opt(fn)
    return fn
