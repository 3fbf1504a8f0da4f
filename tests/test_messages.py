"""What the researcher reads in a terminal: every error under its own stage or command, flags as typed,
and progress lines that never tear the stage markers."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from backend.cli.common import StageCommand, StageGroup, handle_errors, stage_for
from backend.cli.inspect import compare_command, diff_command, ls_command
from backend.core import stages
from backend.core.errors import DataError, EvaluationError, InputError, TrainingError
from tests.helpers import wf


def invoke(command: click.Command, *args: str):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def stage_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("[STAGE")]


# ----------------------------------------------------------------------------- the stage of an error


def test_run_like_commands_name_the_stage_by_error_type_others_by_command():
    assert stage_for(InputError("x"), "Window Setup") == "Window Setup"
    assert stage_for(TrainingError("x"), "Window Setup") == "Training"
    assert stage_for(EvaluationError("x"), "Audit") == "Evaluation"
    assert stage_for(DataError("x"), "Data") == "Data"  # not "Window Setup"
    assert stage_for(InputError("x"), "Compare") == "Compare"
    assert stage_for(InputError("x"), "Sweep") == "Sweep"
    assert stage_for(InputError("x"), "Evaluation") == "Evaluation"
    assert stage_for(TrainingError("x"), "Compare", by_error_type=True) == "Training"


def test_compare_bad_sort_is_a_compare_stage_line_naming_the_flag():
    res = invoke(compare_command, "--sort", "bogus", "somewhere")
    assert res.exit_code == 2
    lines = stage_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("[STAGE ❌] Compare — UsageError: Invalid value for '--sort'")
    assert "'bogus'" in lines[0] and "oos_sharpe" in lines[0] and "Window Setup" not in res.output


def test_compare_help_lists_the_sort_choices():
    res = invoke(compare_command, "--help")
    assert res.exit_code == 0
    for key in ("oos_sharpe", "oos_total_return", "median_window_sharpe", "psr", "dsr", "name"):
        assert key in res.output


def test_compare_missing_folder_argument_and_a_folder_without_a_run(tmp_path):
    res = invoke(compare_command)
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Compare — UsageError: Missing")
    res = wf("compare", tmp_path)
    assert res.exit_code == 2
    assert stage_lines(res.output) == [
        f"[STAGE ❌] Compare — InputError: FOLDERS {tmp_path}: neither a run folder (summary.json) "
        "nor a sweep folder (sweep.json)"
    ]
    res = invoke(compare_command, "--long", tmp_path)
    assert res.exit_code == 2 and "--long" in res.output and "--csv" in res.output


def test_ls_and_diff_errors_are_their_own_stages(tmp_path):
    res = invoke(ls_command, tmp_path / "nope")
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] List — InputError: FOLDER ")
    res = invoke(diff_command, tmp_path, tmp_path)
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Diff — InputError: RUN_A ")


def test_data_fetch_errors_are_data_stage_lines():
    res = wf("data", "fetch", "TNA", "--interval", "1m", "--start", "2001-01-02", "--end", "2001-01-03")
    assert res.exit_code == 3, res.output
    lines = stage_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("[STAGE ❌] Data — DataError: yfinance serves 1m bars only")
    res = wf("data", "fetch", "../x", "--start", "2026-01-01", "--end", "2026-01-02")
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Data — InputError: SYMBOL")


def test_sweep_sanity_and_eval_errors_are_their_commands_stages(tmp_path):
    res = wf("sweep", "--output-dir", tmp_path / "s", "--seeds", "0")
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Sweep — InputError: seeds must")
    res = wf("sanity", "--timesteps", "5")
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Sanity — InputError: --timesteps")
    res = wf("eval", "--model-path", tmp_path / "model.zip")
    assert res.exit_code == 5 and stage_lines(res.output)[0].startswith("[STAGE ❌] Evaluation — EvaluationError:")


def test_run_errors_keep_their_stage_by_type(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"sac": {"learning_rat": 0.1}}')
    res = wf("run", "--config", p, "--windows", "tmp/mini_window.json", "--dry-run")
    assert res.exit_code == 2
    assert stage_lines(res.output)[0].startswith("[STAGE ❌] Window Setup — InputError:")


def test_stage_group_turns_usage_errors_of_every_command_into_stage_lines():
    """What backend/cli/app.py gets with ``command_class = StageCommand``: click's errors under the command's stage."""

    @click.group(cls=StageGroup)
    def group() -> None:
        pass

    @group.command("run")
    @click.option("--interval", type=click.Choice(["1m", "5m"]))
    @click.option("--workers", type=click.IntRange(min=1), default=1)
    @handle_errors("Window Setup")
    def run(interval: str | None, workers: int) -> int:
        return 0

    @group.command("fetch")
    @click.argument("symbol")
    @handle_errors("Data")
    def fetch(symbol: str) -> int:
        return 0

    res = CliRunner().invoke(group, ["run", "--interval", "7m"])
    assert res.exit_code == 2
    assert stage_lines(res.output) == [
        "[STAGE ❌] Window Setup — UsageError: Invalid value for '--interval': '7m' is not one of '1m', '5m'."
    ]
    res = CliRunner().invoke(group, ["run", "--workers", "0"])
    assert res.exit_code == 2 and "'--workers': 0 is not in the range x>=1" in stage_lines(res.output)[0]
    res = CliRunner().invoke(group, ["run", "--bogus"])
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Window Setup — UsageError:")
    assert "--bogus" in res.output
    res = CliRunner().invoke(group, ["fetch"])
    assert res.exit_code == 2 and stage_lines(res.output)[0].startswith("[STAGE ❌] Data — UsageError: Missing")
    assert CliRunner().invoke(group, ["run", "--interval", "5m"]).exit_code == 0
    assert isinstance(group.commands["run"], StageCommand)


def test_internal_errors_name_the_command_and_ask_for_debug():
    @click.command(cls=StageCommand)
    @click.option("--debug", is_flag=True)
    @handle_errors("Compare")
    def broken(debug: bool) -> int:
        raise KeyError("members")

    res = CliRunner().invoke(broken, [])
    assert res.exit_code == 3
    assert stage_lines(res.output) == ["[STAGE ❌] Compare — KeyError: 'members' (internal error; rerun with --debug)"]
    assert "Traceback" in CliRunner().invoke(broken, ["--debug"]).output


# ----------------------------------------------------------------------------- progress


class _Task:
    def __init__(self, run: str, wid: str, k: int, n: int) -> None:
        self.key, self.position = (run, wid), (k, n)


class _Result:
    def __init__(self, run: str, wid: str, status: str = "completed") -> None:
        self.key, self.status = (run, wid), status


def test_progress_off_when_not_a_terminal_or_quiet(capsys):
    from backend.core.progress import RunProgress, TrainingBar

    with RunProgress(3) as p:  # pytest's stdout is not a terminal
        assert p.bar is None
        p.on_submit(_Task("a_s0", "w01", 1, 3))
        stages.emit(True, "Training [w01]", "200 steps")
        p.on_result(_Result("a_s0", "w01"))
    assert RunProgress(3, quiet=True, enabled=None).bar is None
    assert TrainingBar(200, 50).bar is None
    out = capsys.readouterr()
    assert out.out == "[STAGE ✅] Training [w01] — 200 steps\n" and out.err == ""


def test_progress_bar_says_what_runs_and_keeps_stage_lines_whole(capsys):
    from backend.core.progress import RunProgress

    with RunProgress(4, enabled=True) as p:
        assert p.bar is not None and p.bar.total == 4
        p.on_submit(_Task("a_s0", "w01", 1, 2))
        p.on_submit(_Task("a_s1", "w01", 1, 2))
        assert p.describe() == "running a_s0 w01 (window 1 of 2), a_s1 w01 (window 1 of 2)"
        stages.emit(True, "Training [w01]", "200 steps", "a_s0")
        p.on_result(_Result("a_s0", "w01"))
        p.on_result(_Result("a_s1", "w01", "failed"))
        assert p.done == 2 and p.describe() == "1 failed" and p.bar.n == 2
    assert stages._writer is None  # closed: stage lines print plainly again
    out = capsys.readouterr()
    assert "[a_s0] [STAGE ✅] Training [w01] — 200 steps\n" in out.out
    assert "2 of 4 done" in out.err or "of 4" in out.err  # tqdm draws on stderr


def test_training_eta_uses_the_rate_after_learning_starts(monkeypatch):
    from backend.core import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = progress.TrainingBar(total=1000, learning_starts=100, enabled=False)
    for _ in range(99):  # warm-up: random-action steps at 1,000 steps/s
        clock[0] += 0.001
        bar.update(1)
    assert bar.eta_seconds() is None and "warm-up (random actions) until step 100" in bar.status(clock[0])
    clock[0] += 0.001
    bar.update(1)  # step 100: learning starts, the clock for the rate starts here
    assert bar.eta_seconds() is None and "measuring the rate" in bar.status(clock[0])
    for _ in range(100):  # learning: 100 steps in 10 s (10 steps/s)
        clock[0] += 0.1
        bar.update(1)
    # 800 steps left at 10 steps/s; the rate over all 200 steps (~19.8 steps/s) would have said ~40 s
    assert bar.eta_seconds() == pytest.approx(80.0)
    assert "10 steps/s learning, ETA 1:20" in bar.status(clock[0])
