"""The `wf` command line (click). Heavy libraries are imported inside commands only.

wf run ...     walk-forward: Window Setup → Training → Evaluation → Summary
wf eval ...    replay a saved agent on its test window (also: python -m backend.training.walk_forward_eval)
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from backend import stages
from backend.errors import (
    EXIT_INTERRUPTED,
    ArtifactError,
    DataError,
    EvaluationError,
    HarnessError,
    InputError,
    TrainingError,
)

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
            prefix = kwargs.get("prefix") or ""
            try:
                code = fn(*args, **kwargs)
            except HarnessError as e:
                stage = next((name for cls, name in STAGE_OF.items() if isinstance(e, cls)), default_stage)
                if stage == "Window Setup" and default_stage == "Evaluation":
                    stage = "Evaluation" if isinstance(e, EvaluationError) else stage
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
                type=click.Choice(["sample", "file", "yfinance", "synthetic"]),
                help="Where bars come from (default: file with --data, sample for SPY, else yfinance).",
            ),
            click.option("--data", "data", type=str, help="CSV/Parquet file of bars (implies --source file)."),
            click.option("--interval", type=click.Choice(["1m", "5m", "15m", "30m", "1h"]), help="Bar interval."),
            click.option("--config", type=str, help="Config JSON (default configs/sac_intraday.json)."),
            click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Override a config value."),
            click.option("--quiet", is_flag=True, help="Only stage markers and the summary path."),
            click.option("--debug", is_flag=True, help="Show tracebacks of errors."),
        ]
    ):
        fn = opt(fn)
    return fn


class Group(click.Group):
    """Bad usage exits 2 with click's one-line message (click's default too)."""


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Walk-forward research harness for intraday SAC trading agents."""


@cli.command("run")
@click.option("--windows", type=str, help="Window file (list, or object with 'windows').")
@click.option("--start", help="First date of automatic windows (YYYY-MM-DD).")
@click.option("--end", help="Last date of automatic windows.")
@click.option("--train-days", type=int, help="Train span of automatic windows, in sessions.")
@click.option("--test-days", type=int, help="Test span of automatic windows, in sessions.")
@click.option("--step-days", type=int, help="Step between automatic windows, in sessions (default: test days).")
@click.option("--mode", type=click.Choice(["rolling", "anchored"]), default="rolling", show_default=True)
@click.option("--embargo-bars", type=int, help="Bars left out between train and test.")
@data_options
@click.option("--output-dir", type=str, help="Run folder (default runs/<symbol>-<interval>-<time>).")
@click.option("--dry-run", is_flag=True, help="Resolve windows against the data and print them; no training.")
@click.option("--stochastic", is_flag=True, help="Evaluate with the stochastic policy.")
@click.option("--seed", type=int, help="Override training.seed.")
@click.option("--timesteps", type=int, help="Override training.total_timesteps.")
@click.option("--resume", is_flag=True, help="Continue a run folder, skipping finished windows.")
@click.option("--overwrite", is_flag=True, help="Replace the run in --output-dir.")
@click.option("--no-report", is_flag=True, help="Skip report.html and the PNG plots.")
@handle_errors("Window Setup")
def run_command(**kw: Any) -> int:
    """Train SAC on each train span and replay it on the unseen test span."""
    from backend import pipeline

    kw.pop("debug")
    kw["sets"] = list(kw["sets"])
    opts = pipeline.RunOptions(**kw)
    s = pipeline.setup(opts)
    if opts.dry_run:
        print(pipeline.dry_run_table(s), flush=True)
        stages.emit(True, "Window Setup", pipeline.window_setup_detail(s))
        return 0
    if opts.output_dir is None:
        from datetime import datetime

        opts.output_dir = str(Path("runs") / f"{s.bars.symbol}-{s.cfg.data.interval}-{datetime.now():%Y%m%d-%H%M%S}")
    if not opts.quiet:
        print(pipeline.dry_run_table(s), flush=True)
    for w in s.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    stages.emit(True, "Window Setup", pipeline.window_setup_detail(s), opts.prefix)
    return pipeline.execute(opts, s)


@cli.command("eval")
@click.option("--model-path", required=True, type=str, help="model.zip of a trained window.")
@click.option("--windows", type=str, help="Window file (default: the run folder's windows.resolved.json).")
@click.option("--window", "window_id", type=str, help="Window id (default: the bundle's folder name).")
@data_options
@click.option("--stochastic", is_flag=True, help="Replay with the stochastic policy.")
@click.option("--output-dir", type=str, help="Where to write (default: replay/ beside the model).")
@handle_errors("Evaluation")
def eval_command(**kw: Any) -> int:
    """Replay a saved agent on its window's test span, against baselines."""
    from backend.replay_cli import replay

    kw.pop("debug")
    return replay(**kw)


def main() -> None:
    cli(prog_name="wf")


def run_main() -> None:
    run_command.main(prog_name="run_walk_forward.py")


if __name__ == "__main__":
    main()
