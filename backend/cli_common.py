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

from backend import stages
from backend.config import DATA_SOURCES
from backend.errors import (
    EXIT_INTERRUPTED,
    ArtifactError,
    DataError,
    EvaluationError,
    HarnessError,
    InputError,
    TrainingError,
)
from backend.intervals import INTERVALS

STAGE_OF = {
    InputError: "Window Setup",
    DataError: "Window Setup",
    TrainingError: "Training",
    EvaluationError: "Evaluation",
    ArtifactError: "Artifacts",
}


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    for name in ("yfinance", "peewee", "matplotlib", "tensorboard", "absl"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def handle_errors(default_stage: str) -> Callable[[Callable[..., int]], Callable[..., None]]:
    """Run a command body; map errors to a ❌ stage line and the stage's exit code."""

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
                stage = next((name for cls, name in STAGE_OF.items() if isinstance(e, cls)), default_stage)
                stages.emit(False, stage, f"{type(e).__name__}: {e}", prefix)
                if debug:
                    traceback.print_exc()
                sys.exit(e.exit_code)
            except KeyboardInterrupt:
                stages.emit(False, default_stage, "interrupted", prefix)
                sys.exit(EXIT_INTERRUPTED)
            except click.exceptions.Exit:
                raise
            except Exception as e:
                stages.emit(
                    False, default_stage, f"{type(e).__name__}: {e} (internal error; rerun with --debug)", prefix
                )
                if debug:
                    traceback.print_exc()
                sys.exit({"Evaluation": 5, "Training": 4}.get(default_stage, 3))
            sys.exit(code)

        return wrapper

    return deco


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
