"""The `wf` command line (click). Heavy libraries are imported inside commands only.

wf run ...     walk-forward: Window Setup → Training → Evaluation → Summary
wf eval ...    replay a saved agent on its test window (also: python -m backend.training.walk_forward_eval)
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from backend.cli.common import StageGroup, data_options, executor_options, handle_errors, window_options
from backend.cli.config import config_group
from backend.cli.data import data_group
from backend.cli.features import features_command
from backend.cli.inspect import compare_command, diff_command, ls_command
from backend.cli.tune import tune_command
from backend.config.agent import ALGORITHMS, BACKENDS
from backend.config.models import DATA_SOURCES
from backend.core import stages
from backend.core.errors import EXIT_DATA, EXIT_OK, InputError
from backend.core.intervals import INTERVALS
from backend.run.options import RunRequest


class Group(StageGroup):
    """Bad usage exits 2; its message is a ❌ stage line of the command's stage (its commands are StageCommands)."""


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Walk-forward research harness for intraday SAC trading agents."""


SYMBOLS_HELP = "A universe: run the config on each symbol (comma-separated), a run folder per symbol, one pool."


@cli.command("run")
@window_options
@data_options
@click.option("--symbols", type=str, help=SYMBOLS_HELP)
@click.option("--output-dir", type=str, help="Run folder (default runs/<symbol>-<interval>-<time>).")
@click.option("--dry-run", is_flag=True, help="Resolve windows against the data and print them; no training.")
@click.option("--stochastic", is_flag=True, help="Evaluate with the stochastic policy.")
@click.option("--seed", type=int, help="Override training.seed.")
@click.option("--timesteps", type=int, help="Override training.total_timesteps.")
@click.option("--seeds", "n_seeds", type=int, help="Train every window with seeds 0..N-1; report the spread.")
@click.option("--seed-list", type=str, help="Comma-separated seeds (instead of --seeds).")
@click.option("--resume", is_flag=True, help="Continue a run folder, skipping finished windows.")
@click.option("--overwrite", is_flag=True, help="Replace the run in --output-dir.")
@click.option("--no-report", is_flag=True, help="Skip report.html and the PNG plots.")
@executor_options
@handle_errors("Window Setup")
def run_command(**kw: Any) -> int:
    """Train SAC on each train span and replay it on the unseen test span."""
    from backend.run import driver  # lazy: wf --help loads no numpy/pandas
    from backend.run.window_setup import load_run_config  # lazy: wf --help loads no numpy/pandas

    kw.pop("debug")
    seeds = _seed_list(kw.pop("n_seeds"), kw.pop("seed_list"), kw.get("seed"))
    kw["sets"] = list(kw["sets"])
    req = RunRequest.from_flags(**kw)
    opts = req.driver
    loaded = load_run_config(req.setup)
    if loaded.config.data.symbols:
        return _run_universe(req, loaded, seeds)
    s = driver.setup(req.setup, loaded)
    if req.setup.dry_run:
        print(driver.dry_run_table(s), flush=True)
        stages.emit(True, "Window Setup", driver.window_setup_detail(s))
        return EXIT_OK
    if opts.output_dir is None:
        opts.output_dir = str(Path("runs") / f"{s.bars.symbol}-{s.cfg.data.interval}-{datetime.now():%Y%m%d-%H%M%S}")
    from backend.run.folder import check_output_dir  # lazy: wf --help loads no numpy/pandas

    check_output_dir(opts.output_dir)  # before Window Setup is declared ok: one truthful marker per stage
    if not opts.quiet:
        print(driver.dry_run_table(s), flush=True)
    for w in s.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    stages.emit(True, "Window Setup", driver.window_setup_detail(s), opts.prefix)
    if seeds is not None:
        from backend.run.seeds import run_seeds  # lazy: wf --help loads no numpy/pandas

        return run_seeds(opts, s, seeds)
    return driver.execute(opts, s)


def _run_universe(req: RunRequest, loaded: Any, seeds: list[int] | None) -> int:
    """`wf run --symbols A,B,C` (or data.symbols): backend.run.universe."""
    from backend.run import universe  # lazy: wf --help loads no numpy/pandas

    if req.setup.dry_run:
        return universe.dry_run(req, loaded)
    opts = req.driver
    if opts.output_dir is None:
        opts.output_dir = str(Path("runs") / f"universe-{loaded.config.data.interval}-{datetime.now():%Y%m%d-%H%M%S}")
    from backend.run.folder import check_output_dir  # lazy: wf --help loads no numpy/pandas

    check_output_dir(opts.output_dir)
    for w in loaded.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    return universe.run_universe(req, loaded, seeds)


def _seed_list(n: int | None, listed: str | None, single: int | None) -> list[int] | None:
    if n is None and listed is None:
        return None
    if single is not None:
        raise InputError("--seed and --seeds/--seed-list exclude each other")
    if n is not None and listed is not None:
        raise InputError("--seeds and --seed-list exclude each other")
    if listed is not None:
        try:
            seeds = [int(x) for x in listed.split(",") if x.strip()]
        except ValueError as e:
            raise InputError(f"--seed-list {listed!r}: expected integers like 0,1,7") from e
    else:
        seeds = list(range(n or 0))
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise InputError("seeds must be distinct non-negative integers (--seeds N with N >= 1)")
    return seeds


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
    from backend.run.replay import replay  # lazy: wf --help loads no numpy/pandas

    kw.pop("debug")
    return replay(**kw)


@cli.command("audit")
@window_options
@data_options
@click.option("--seed", "audit_seed", type=int, default=0, show_default=True, help="Seed of the random cuts.")
@click.option(
    "--steps", type=click.IntRange(min=50), default=300, show_default=True, help="SAC steps per audit training."
)
@click.option(
    "--cuts", type=click.IntRange(min=0), default=2, show_default=True, help="Random interior test-span cuts."
)
@click.option(
    "--env-check/--no-env-check",
    default=True,
    show_default=True,
    help="The exhaustive env check: every bar of every session, future perturbed and truncated (no agent).",
)
@click.option("--env-only", is_flag=True, help="Only the exhaustive env check: train and replay no agent.")
@handle_errors("Audit")
def audit_command(**kw: Any) -> int:
    """Prove that training and replay are blind to the future: perturb it, compare bit for bit."""
    from backend.checks.audit import AuditOptions, run_audit  # lazy: wf --help loads no numpy/pandas
    from backend.run import driver  # lazy: wf --help loads no numpy/pandas

    kw.pop("debug")
    opts = AuditOptions(
        steps=kw.pop("steps"),
        interior_cuts=kw.pop("cuts"),
        seed=kw.pop("audit_seed"),
        env_check=kw.pop("env_check"),
        agent=not kw.pop("env_only"),
    )
    if not (opts.env_check or opts.agent):
        raise InputError("--env-only with --no-env-check leaves nothing to audit: drop one of them")
    kw["sets"] = list(kw["sets"])
    s = driver.setup(RunRequest.from_flags(**kw).setup)
    stages.emit(True, "Window Setup", driver.window_setup_detail(s))
    findings, notes = run_audit(s, opts)
    if not kw["quiet"]:
        for note in notes:
            print(note)
    if findings:
        for f in findings:
            print(f"look-ahead [{f.window}] {f.check}: {f.message}")
        first = findings[0]
        stages.emit(
            False,
            "Audit",
            f"look-ahead found in window {first.window}, check '{first.check}': {first.message}; "
            f"{len(findings)} finding(s)",
        )
        return EXIT_DATA
    proved = ["the env identical at every bar with the future perturbed or truncated"] if opts.env_check else []
    if opts.agent:
        proved.append(
            "training bundles bit-identical with the future perturbed, replays identical up to every cut, "
            "train/test separated"
        )
    stages.emit(True, "Audit", f"no look-ahead found ({len(s.windows)} windows: {'; '.join(proved)})")
    return EXIT_OK


@cli.command("sanity")
@click.option("--timesteps", type=int, default=5000, show_default=True, help="SAC steps per run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output-dir", type=str, default=None, help="Folder for both runs (default runs/sanity-<time>).")
@click.option(
    "--backend", type=click.Choice(BACKENDS), default="sb3", show_default=True, help="sb3 (PyTorch) or sbx (JAX)."
)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="sac", show_default=True)
@click.option("--quiet", is_flag=True)
@click.option("--debug", is_flag=True)
@handle_errors("Sanity")
def sanity_command(
    timesteps: int, seed: int, output_dir: str | None, backend: str, algorithm: str, quiet: bool, debug: bool
) -> int:
    """Planted edge must be found; a random walk must not show one."""
    from backend.checks.sanity import run_sanity  # lazy: wf --help loads no numpy/pandas

    if timesteps < 600:
        raise InputError("--timesteps must be at least 600 (SAC starts learning after 500 steps)")
    out = Path(output_dir) if output_dir else Path("runs") / f"sanity-{datetime.now():%Y%m%d-%H%M%S}"
    return run_sanity(out, timesteps=timesteps, seed=seed, quiet=quiet, backend=backend, algorithm=algorithm)


@cli.command("sweep")
@click.option("--configs", "configs", multiple=True, help="Config files or globs; more paths may follow it.")
@click.argument("more_configs", nargs=-1)
@click.option("--seeds", type=int, default=None, help="Seeds 0..N-1 for every config.")
@click.option("--seed-list", type=str, default=None, help="Comma-separated seeds, e.g. 0,1,7.")
@window_options
@click.option("--symbol")
@click.option("--symbols", type=str, help=SYMBOLS_HELP + " Every member runs the universe.")
@click.option("--source", type=click.Choice(DATA_SOURCES))
@click.option("--data", type=str)
@click.option("--interval", type=click.Choice(INTERVALS))
@click.option("--cache-dir", type=str)
@click.option("--benchmark", type=str)
@click.option("--timesteps", type=int)
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE")
@click.option("--stochastic", is_flag=True)
@click.option("--no-report", is_flag=True)
@executor_options
@click.option("--output-dir", type=str, required=True, help="Sweep folder.")
@click.option("--resume", is_flag=True, help="Skip completed, unchanged members; rerun the rest.")
@click.option("--overwrite", is_flag=True, help="Replace existing member folders.")
@click.option("--quiet", is_flag=True)
@click.option("--debug", is_flag=True)
@handle_errors("Sweep")
def sweep_command(**kw: Any) -> int:
    """Run every config × seed as a walk-forward member and compare them."""
    from backend.studies import sweep  # lazy: wf --help loads no numpy/pandas

    seeds = _seed_list(kw.pop("seeds"), kw.pop("seed_list"), None) or [0]
    patterns = list(kw.pop("configs")) + list(kw.pop("more_configs"))
    kw.pop("debug")
    kw["sets"] = list(kw["sets"])
    return sweep.run_sweep(patterns, seeds, RunRequest.from_flags(**kw))


def main() -> None:
    cli(prog_name="wf")


def _register_subcommands() -> None:
    cli.add_command(data_group)
    cli.add_command(tune_command)
    cli.add_command(config_group)
    cli.add_command(compare_command)
    cli.add_command(ls_command)
    cli.add_command(diff_command)
    cli.add_command(features_command)


_register_subcommands()


def run_main() -> None:
    run_command.main(prog_name="run_walk_forward.py")


if __name__ == "__main__":
    main()
