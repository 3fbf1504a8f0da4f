"""`wf tune`: hyperparameter search on Optuna that never sees the test spans (docs/tune.md).

The command only parses flags; :mod:`backend.studies.tune.study` (imported when the command runs, so that
`wf --help` stays light) does the work.
"""

from __future__ import annotations

from typing import Any

import click

from backend.cli.common import StageCommand, data_options, executor_options, handle_errors, window_options
from backend.run.options import RunRequest


class _Registered(click.ParamType):
    """A name from a list kept in backend.studies.tune.study (the one definition), checked when the command runs."""

    def __init__(self, attribute: str, name: str) -> None:
        self.attribute, self.name = attribute, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from backend.studies.tune import study as tune  # lazy: wf --help loads no numpy/pandas

        names = list(getattr(tune, self.attribute))
        if value not in names:
            self.fail(f"{value!r}: use one of {', '.join(names)}", param, ctx)
        return value


@click.command("tune", cls=StageCommand)
@click.option("--space", required=True, type=str, help="Search space JSON: config key paths -> distributions.")
@click.option(
    "--trials",
    "n_trials",
    required=True,
    type=click.IntRange(min=1),
    help="Trials the study holds when done (total, counting earlier ones with --resume).",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Start no new trial after S seconds.")
@click.option(
    "--storage",
    type=str,
    envvar="WF_TUNE_STORAGE",
    help="Optuna RDB URL (default sqlite:///<output-dir>/study.db; or the WF_TUNE_STORAGE variable).",
)
@click.option("--study", "study", type=str, help="Study name (default <config stem>--<space stem>).")
@click.option("--output-dir", required=True, type=str, help="Tune folder: trials/, best_config.json, final/.")
@click.option("--resume", is_flag=True, help="Continue an existing study up to --trials in total.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the sampler.")
@click.option(
    "--validation-days",
    type=click.IntRange(min=1),
    help="Sessions at the end of each train span that trials are scored on (default: a fifth, at least 1).",
)
@click.option(
    "--objective",
    type=_Registered("OBJECTIVES", "objective"),
    default="sharpe",
    show_default=True,
    help="Trial score on the validation sessions (docs/tune.md lists them).",
)
@click.option(
    "--pruner", type=_Registered("PRUNERS", "pruner"), default="median", show_default=True, help="median or none."
)
@click.option(
    "--pruner-startup-trials",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Completed trials before the median pruner may prune.",
)
@click.option(
    "--pruner-warmup-windows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Windows a trial finishes before it may be pruned.",
)
@click.option("--timesteps", type=int, help="Override training.total_timesteps (trials and the final run).")
@click.option("--no-final", is_flag=True, help="Search only; do not run the best config on the test spans.")
@click.option("--no-report", is_flag=True, help="Skip report.html of the final run.")
@click.option("--dry-run", is_flag=True, help="Show the train/validation/test split and check the space; no study.")
@click.option(
    "--strict",
    is_flag=True,
    help="Strict nested tuning: one study per outer window, its trials reading only bars before its test start.",
)
@window_options
@data_options
@executor_options
@handle_errors("Tune")
def tune_command(**kw: Any) -> int:
    """Search hyperparameters on validation sessions carved from the train spans; test the chosen config once."""
    from backend.studies.tune.command import run_tune  # lazy: wf --help loads no numpy/pandas
    from backend.studies.tune.storage import TuneOptions  # lazy: wf --help loads no numpy/pandas

    kw.pop("debug")
    tune_keys = set(TuneOptions.__dataclass_fields__) - {"run"}
    tune = {k: kw.pop(k) for k in list(kw) if k in tune_keys}
    tune["final"] = not kw.pop("no_final")
    kw["sets"] = list(kw["sets"])
    return run_tune(TuneOptions(run=RunRequest.from_flags(**kw), **tune))
