"""backend/run/options.py: the flags of a run split between Window Setup and the driver, each in exactly one half."""

from __future__ import annotations

import dataclasses

import pytest

from backend.run.options import DriverOptions, RunRequest, SetupOptions

SETUP = {f.name for f in dataclasses.fields(SetupOptions)}
DRIVER = {f.name for f in dataclasses.fields(DriverOptions)}


def _params(command) -> set[str]:
    return {p.name for p in command.params if p.name}


def test_the_halves_share_no_name():
    assert SETUP & DRIVER == set()


def test_every_wf_run_flag_lands_in_one_half():
    from backend.cli.app import run_command

    flags = _params(run_command) - {"n_seeds", "seed_list", "debug"}  # read by the command itself
    assert flags - (SETUP | DRIVER) == set()
    assert (SETUP | DRIVER) - flags == {"prefix"}  # the only field that is not a flag (a member's marker prefix)


def test_sweep_and_tune_flags_land_in_the_halves_too():
    from backend.cli.app import sweep_command
    from backend.cli.tune import tune_command
    from backend.studies.tune.storage import TuneOptions

    sweep = _params(sweep_command) - {"configs", "more_configs", "seeds", "seed_list", "debug"}
    assert sweep - (SETUP | DRIVER) == set()
    tune = _params(tune_command) - set(TuneOptions.__dataclass_fields__) - {"no_final", "debug"}
    assert tune - (SETUP | DRIVER) == set()


def test_from_flags_splits_by_name():
    req = RunRequest.from_flags(config="c.json", sets=["sac.gamma=0.9"], seed=3, output_dir="out", workers=2)
    assert req.setup == SetupOptions(config="c.json", sets=["sac.gamma=0.9"], seed=3)
    assert req.driver == DriverOptions(output_dir="out", workers=2)
    assert req.setup.overrides() == ["sac.gamma=0.9", "training.seed=3"]


def test_from_flags_refuses_an_unknown_name():  # negative control: a flag neither half reads is not dropped silently
    with pytest.raises(TypeError, match="no_such_flag"):
        RunRequest.from_flags(config="c.json", no_such_flag=1)
