"""The catalogue of issue 21: one test per case the review broke, each tried as a user would (the `wf` CLI).

Every case here failed before its fix (a deletion, a write outside the output folder, an internal error or a
false status). The slow cases — a SIGKILLed worker of `wf run` / `wf sweep --workers 2`, the 2 GiB zip bomb —
live in tests/test_reliability.py and are listed in :data:`ELSEWHERE`; a test below checks they still exist.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pytest

from tests.conftest import TINY_CONFIG, TINY_WINDOWS
from tests.helpers import wf

ELSEWHERE = {
    "killed worker of wf run --workers 2": "test_a_worker_killed_by_sigkill_fails_only_its_window",
    "killed worker of wf sweep --workers 2": "test_a_sweep_worker_killed_by_sigkill_fails_only_its_member",
    "zip bomb model.zip with re-signed hashes": "test_zip_bomb_with_resigned_hash_is_refused_fast_with_bounded_memory",
    "model.zip a symlink to /dev/zero": "test_model_zip_linked_to_dev_zero_is_refused_at_once",
    "model.zip member named ../..": "test_zip_member_with_dotdot_name_is_refused",
}


def test_the_slow_cases_are_still_tested_elsewhere():
    from tests import test_reliability

    missing = [row for row, name in ELSEWHERE.items() if not callable(getattr(test_reliability, name, None))]
    assert not missing, f"catalogue rows without their test: {missing}"


def _inputs(tmp_path: Path, windows: list[dict] | None = None) -> tuple[Path, Path]:
    (tmp_path / "c.json").write_text(json.dumps(TINY_CONFIG))
    (tmp_path / "w.json").write_text(json.dumps(windows or TINY_WINDOWS[:1]))
    return tmp_path / "c.json", tmp_path / "w.json"


def _run(tmp_path: Path, out: Path, *extra: str, windows: list[dict] | None = None):
    cfg, win = _inputs(tmp_path, windows)
    return wf("run", "--config", cfg, "--windows", win, "--output-dir", out, "--quiet", "--no-report", *extra)


def _snapshot(root: Path) -> dict[str, str]:
    """Every file (and link) below ``root`` with its content hash: what must stay untouched."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "-> " + str(p.readlink())
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------ --overwrite on folders that are not ours
@pytest.mark.parametrize("command", ["run", "seeds", "sweep"])
def test_overwrite_of_a_home_like_folder_is_refused_and_deletes_nothing(tmp_path, command):
    home = tmp_path / "home"
    for rel, text in {"Documents/thesis.txt": "years", ".ssh/id_ed25519": "key", ".git/HEAD": "ref"}.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    before = _snapshot(home)
    if command == "sweep":
        cfg, win = _inputs(tmp_path)
        res = wf("sweep", "--configs", cfg, "--windows", win, "--output-dir", home, "--overwrite", "--quiet")
    else:
        res = _run(tmp_path, home, "--overwrite", *(["--seeds", "2"] if command == "seeds" else []))
    assert res.exit_code == 2, res.output
    assert "not a run, seed or sweep folder" in res.output and "Nothing was deleted" in res.output
    assert ".ssh/" in res.output and "internal error" not in res.output
    assert _snapshot(home) == before


def test_overwrite_of_dot_in_a_checkout_is_refused(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (checkout / "backend").mkdir()
    (checkout / "backend" / "x.py").write_text("print(1)")
    cfg, win = _inputs(tmp_path)
    before = _snapshot(checkout)
    monkeypatch.chdir(checkout)
    res = wf("run", "--config", cfg, "--windows", win, "--output-dir", ".", "--overwrite", "--quiet", "--no-report")
    assert res.exit_code == 2 and "Nothing was deleted" in res.output, res.output
    assert _snapshot(checkout) == before


# ------------------------------------------------------------------ symlinks inside the output folder
def test_tensorboard_linked_to_another_runs_folder_is_left_untouched(tmp_path):
    other = tmp_path / "other_run" / "tensorboard"
    (other / "w01").mkdir(parents=True)
    (other / "w01" / "events.out.tfevents.1").write_bytes(b"the other run's curves")
    (other / "hparams").mkdir()
    (other / "hparams" / "events.out.tfevents.2").write_bytes(b"its hparams")
    before = _snapshot(other)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tensorboard").symlink_to(other)  # the shared-TensorBoard set-up of the review
    res = _run(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'tensorboard'} is a symbolic link to {other.resolve()}" in res.output
    assert "internal error" not in res.output
    assert _snapshot(other) == before
    assert not (out / "summary.json").exists()  # refused before anything was written


def test_window_folder_linked_elsewhere_gets_nothing_written(tmp_path):
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    for name in ("model.zip", "metadata.json", "evaluation.json"):
        (elsewhere / name).write_text(f"someone's {name}")
    before = _snapshot(elsewhere)
    out = tmp_path / "out"
    out.mkdir()
    (out / "w01").symlink_to(elsewhere)
    res = _run(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'w01'} is a symbolic link to {elsewhere.resolve()}" in res.output
    assert _snapshot(elsewhere) == before


def test_a_window_task_never_writes_through_a_link_out_of_the_run_folder(tmp_path):
    """The task's own guard (a driver that did not check, or a link made after planning): a FolderError."""
    from backend.core.errors import FolderError
    from backend.run.tasks import _fresh_window_folder

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (elsewhere / "w01").mkdir(parents=True)
    (elsewhere / "w01" / "events").write_text("keep")
    run.mkdir()
    (run / "tensorboard").symlink_to(elsewhere)
    with pytest.raises(FolderError, match="is a symbolic link to"):
        _fresh_window_folder(run, "w01")
    assert (elsewhere / "w01" / "events").read_text() == "keep"
    (run / "tensorboard").unlink()
    (run / "w01").mkdir()
    (run / "w01" / ".warm-start-w00.zip").symlink_to(elsewhere / "w01" / "events")  # a link to a file outside
    (run / "w01" / "inside.txt").write_text("ours")
    (run / "w01" / "link-inside").symlink_to(run / "w01" / "inside.txt")
    _fresh_window_folder(run, "w01")
    assert not (run / "w01" / ".warm-start-w00.zip").exists() and (elsewhere / "w01" / "events").read_text() == "keep"
    assert (run / "w01" / "link-inside").is_symlink()  # a link that stays inside is fine


def test_top_level_files_that_are_links_are_replaced_not_written_through(tmp_path):
    """A guard (the rename always replaced a link itself): summary.json as a link to someone's file."""
    from backend.core.jsonio import write_json

    target = tmp_path / "someone_elses.json"
    target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").symlink_to(target)
    write_json(out / "summary.json", {"a": 1}, root=out)
    assert target.read_text() == "keep me"
    assert not (out / "summary.json").is_symlink() and json.loads((out / "summary.json").read_text()) == {"a": 1}


def test_atomic_write_refuses_a_folder_link_leaving_the_root(tmp_path):
    from backend.core.errors import FolderError
    from backend.core.jsonio import write_json

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "w01").symlink_to(elsewhere)
    with pytest.raises(FolderError, match="symbolic link"):
        write_json(out / "w01" / "metadata.json", {}, root=out)
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_lock_file_is_exit_2_naming_the_link(tmp_path):
    target = tmp_path / "elsewhere.lock"
    target.write_text("not ours")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".wf.lock").symlink_to(target)
    res = _run(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert str(out / ".wf.lock") in res.output and "symbolic link" in res.output
    assert "internal error" not in res.output and "Too many levels" not in res.output
    assert target.read_text() == "not ours"


def test_seed_folder_linked_out_of_the_multi_seed_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "s0").symlink_to(elsewhere)
    res = _run(tmp_path, out, "--seeds", "2")
    assert res.exit_code == 2 and "is a symbolic link to" in res.output, res.output
    assert list(elsewhere.iterdir()) == []


def test_sweep_member_folder_linked_out_of_the_sweep_folder_is_refused(tmp_path):
    cfg, win = _inputs(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "c_s0").symlink_to(elsewhere)
    res = wf("sweep", "--configs", cfg, "--windows", win, "--output-dir", out, "--quiet", "--no-report")
    assert res.exit_code == 2 and f"{out / 'c_s0'} is a symbolic link to" in res.output, res.output
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ the bar cache
def _bars_csv(tmp_path: Path) -> Path:
    from backend.data import sources

    raw = sources.read_sample().loc["2019-01-02":"2019-01-03"]
    raw.to_csv(tmp_path / "bars.csv")
    return tmp_path / "bars.csv"


def test_a_symlinked_cache_lock_is_exit_2_naming_the_link(tmp_path):
    csv, cache = _bars_csv(tmp_path), tmp_path / "cache"
    cache.mkdir()
    target = tmp_path / "elsewhere.lock"
    target.write_text("not ours")
    (cache / "ABC_1m.lock").symlink_to(target)
    res = wf("data", "import", csv, "--symbol", "ABC", "--interval", "1m", "--cache-dir", cache)
    assert res.exit_code == 2, res.output
    assert str(cache / "ABC_1m.lock") in res.output and "symbolic link" in res.output
    assert "internal error" not in res.output and target.read_text() == "not ours"


def test_cache_entry_files_that_are_links_are_replaced_and_deleted_as_links(tmp_path):
    """A guard rather than a fix: renames already replaced links; deleting a dangling link is new."""
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "team_file.parquet"
    outside.write_bytes(b"the team's file")
    (cache / "ABC_1m.import.parquet").symlink_to(outside)
    (cache / "ABC_1m.import.manifest.json").symlink_to(tmp_path / "gone.json")  # dangling
    res = wf("data", "delete", "ABC", "--interval", "1m", "--import", "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    assert (
        not (cache / "ABC_1m.import.parquet").is_symlink() and not (cache / "ABC_1m.import.manifest.json").is_symlink()
    )
    assert outside.read_bytes() == b"the team's file"
    (cache / "ABC_1m.import.parquet").symlink_to(outside)
    from backend.data import cache as bar_cache
    from backend.data import sources

    e = bar_cache.entry(cache, "ABC", "1m", "import")
    with bar_cache.locked(e):
        bar_cache.write(e, sources.read_sample().loc["2019-01-02":"2019-01-02"], {"source": "import"})
    assert outside.read_bytes() == b"the team's file" and not e.data_path.is_symlink()


# ------------------------------------------------------------------ inputs that were internal errors
def test_a_config_nested_100000_deep_is_exit_2_naming_the_file(tmp_path):
    cfg, win = _inputs(tmp_path)
    cfg.write_text("[" * 100000 + "]" * 100000)
    res = wf("run", "--config", cfg, "--windows", win, "--output-dir", tmp_path / "out", "--dry-run")
    assert res.exit_code == 2, res.output
    assert str(cfg) in res.output and "nested deeper" in res.output and "RecursionError" not in res.output


def test_a_config_that_is_not_utf8_is_exit_2_naming_file_and_offset(tmp_path):
    cfg, win = _inputs(tmp_path)
    cfg.write_bytes(b'{"data": {"symbol": "caf\xe9"}}')
    res = wf("run", "--config", cfg, "--windows", win, "--output-dir", tmp_path / "out", "--dry-run")
    assert res.exit_code == 2, res.output
    assert str(cfg) in res.output and "byte offset 24" in res.output and "UnicodeDecodeError" not in res.output


# ------------------------------------------------------------------ executors that cannot start
def _failing_ray(error: BaseException) -> types.ModuleType:
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: False  # type: ignore[attr-defined]

    def init(**kwargs):
        raise error

    ray.init = init  # type: ignore[attr-defined]
    return ray


def test_ray_that_cannot_start_is_its_own_stage_with_its_cause(tmp_path, monkeypatch):
    long_path = "/tmp/" + "x" * 120 + "/sockets/plasma_store"
    monkeypatch.setitem(
        sys.modules, "ray", _failing_ray(OSError(f"AF_UNIX path length cannot exceed 107 bytes: {long_path!r}"))
    )
    res = _run(tmp_path, tmp_path / "out", "--executor", "ray", "--workers", "2")
    assert res.exit_code == 2, res.output
    assert "[STAGE ❌] Executor — ExecutorError: Ray could not start" in res.output
    assert "107 bytes" in res.output and "RAY_TMPDIR" in res.output
    assert "Window Setup ❌" not in res.output and "[STAGE ❌] Window Setup" not in res.output
    assert "internal error" not in res.output


def test_a_local_pool_that_cannot_start_is_its_own_stage(tmp_path, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    def no_processes(self, *a, **k):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ProcessPoolExecutor, "submit", no_processes)
    res = _run(tmp_path, tmp_path / "out", "--workers", "2")
    assert res.exit_code == 2, res.output
    assert "[STAGE ❌] Executor — ExecutorError: the local worker pool (--workers 2) could not start" in res.output
    assert "Resource temporarily unavailable" in res.output and "internal error" not in res.output


# ------------------------------------------------------------------ truthful statuses
def test_a_window_is_training_in_summary_json_while_it_trains(tmp_path, monkeypatch):
    from backend.run import executors

    seen: dict[str, str] = {}
    real = executors.run_window
    out = tmp_path / "out"

    def spy(task, *a, **k):  # what a user reading summary.json sees while the window trains
        doc = json.loads((out / "summary.json").read_text())
        seen[task.window.id] = next(w["status"] for w in doc["windows"] if w["id"] == task.window.id)
        return real(task, *a, **k)

    monkeypatch.setattr(executors, "run_window", spy)
    res = _run(tmp_path, out, windows=TINY_WINDOWS)
    assert res.exit_code == 0, res.output
    assert seen == {"w01": "training", "w02": "training"}
    done = json.loads((out / "summary.json").read_text())
    assert [w["status"] for w in done["windows"]] == ["completed", "completed"]


# ------------------------------------------------------------------ hostile bundles, through the CLI
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished one-window run (trained once for the module)."""
    base = tmp_path_factory.mktemp("trained")
    res = _run(base, base / "out")
    assert res.exit_code == 0, res.output
    return base


def _wf_process(*args: str, timeout: float = 120):
    """`wf ARGS` in a fresh process with a timeout, so that a hang fails the test instead of stalling it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "backend.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)


def test_wf_eval_of_a_model_zip_linked_to_dev_zero_is_exit_5_not_a_hang(trained, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained / "out", out, symlinks=True)
    (out / "w01" / "model.zip").unlink()
    (out / "w01" / "model.zip").symlink_to("/dev/zero")
    proc = _wf_process("eval", "--model-path", out / "w01" / "model.zip", "--config", trained / "c.json")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "symlink" in proc.stdout and "/dev/zero" in proc.stdout and "internal error" not in proc.stdout


def test_resume_over_a_model_zip_linked_to_dev_zero_retrains_it(trained, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained / "out", out, symlinks=True)
    (out / "w01" / "model.zip").unlink()
    (out / "w01" / "model.zip").symlink_to("/dev/zero")
    cfg, win = trained / "c.json", trained / "w.json"
    proc = _wf_process("run", "--config", cfg, "--windows", win, "--output-dir", out, "--resume", "--no-report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "retrained: its bundle cannot be trusted" in proc.stdout
    assert not (out / "w01" / "model.zip").is_symlink()  # the link was replaced, /dev/zero never read to the end


# ------------------------------------------------------------------ wf eval and wf tune stay inside their folders
def test_wf_eval_with_replay_linked_elsewhere_writes_nothing_there(trained, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained / "out", out, symlinks=True)
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    for name in ("evaluation.json", "equity.csv", "trades.csv"):
        (elsewhere / name).write_text(f"someone's {name}")
    before = _snapshot(elsewhere)
    (out / "w01" / "replay").symlink_to(elsewhere)
    res = wf("eval", "--model-path", out / "w01" / "model.zip", "--config", trained / "c.json", "--quiet")
    assert res.exit_code == 2, res.output
    assert f"{out / 'w01' / 'replay'} is a symbolic link to {elsewhere.resolve()}" in res.output
    assert "outside the bundle folder" in res.output and "internal error" not in res.output
    assert _snapshot(elsewhere) == before
    assert not [p for p in elsewhere.iterdir() if p.name.startswith(".tmp-")]


TUNE_SPACE = {"sac.gamma": {"type": "categorical", "choices": [0.9, 0.99]}}


def _tune(tmp_path: Path, out: Path, *extra: str):
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["training"]["tensorboard"] = False
    (tmp_path / "tc.json").write_text(json.dumps(cfg))
    (tmp_path / "w.json").write_text(json.dumps(TINY_WINDOWS[:1]))
    (tmp_path / "space.json").write_text(json.dumps(TUNE_SPACE))
    args = ["--config", tmp_path / "tc.json", "--windows", tmp_path / "w.json", "--space", tmp_path / "space.json"]
    return wf("tune", *args, "--output-dir", out, "--trials", "1", "--quiet", "--no-report", *extra)


def _another_run(trained: Path, tmp_path: Path) -> Path:
    """Someone else's finished run folder (ours in form: --overwrite would clear it if reached through a link)."""
    import shutil

    other = tmp_path / "other_run"
    shutil.copytree(trained / "out", other, symlinks=True)
    return other


def test_tune_trials_folder_linked_elsewhere_is_refused_before_the_study(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("WF_TUNE_STORAGE", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "0").symlink_to(_another_run(trained, tmp_path))  # what trial 0 would replace
    (elsewhere / "notes.txt").write_text("not the harness's")
    before = _snapshot(tmp_path / "other_run") | _snapshot(elsewhere)
    out = tmp_path / "tune"
    out.mkdir()
    (out / "trials").symlink_to(elsewhere)
    res = _tune(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'trials'} is a symbolic link to {elsewhere.resolve()}" in res.output
    assert "outside the tune folder" in res.output and "internal error" not in res.output
    assert _snapshot(tmp_path / "other_run") | _snapshot(elsewhere) == before
    assert not (out / "study.db").exists() and not (out / "tune_summary.json").exists()  # refused before the study


def test_a_tune_trial_folder_linked_to_another_run_is_refused_at_its_trial(trained, tmp_path, monkeypatch):
    """The per-trial guard (a link made after the start-up check): trial 0 never clears the run it leads to."""
    from backend.studies.tune import command

    monkeypatch.delenv("WF_TUNE_STORAGE", raising=False)
    monkeypatch.setattr(command, "check_tune_folder", lambda *a: None)  # only the guard before each trial is left
    other = _another_run(trained, tmp_path)
    before = _snapshot(other)
    out = tmp_path / "tune"
    (out / "trials").mkdir(parents=True)
    (out / "trials" / "0").symlink_to(other)
    res = _tune(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'trials' / '0'} is a symbolic link to {other.resolve()}" in res.output
    assert _snapshot(other) == before


def test_tune_over_a_foreign_final_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """A trial runs with --overwrite on trials/<n>, the final run on final/: a folder there that is not ours is
    refused — at start-up for final/ (before the search, not after it), deleting nothing."""
    monkeypatch.delenv("WF_TUNE_STORAGE", raising=False)
    out = tmp_path / "tune"
    for rel, text in {"final/notes.txt": "mine", "final/.git/HEAD": "ref", "trials/0/thesis.txt": "years"}.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    before = _snapshot(out)
    res = _tune(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'final'}: wf tune replaces this folder with its final run" in res.output
    assert "not a run, seed or sweep folder" in res.output and "Nothing was deleted" in res.output
    assert ".git/" in res.output and "internal error" not in res.output
    assert _snapshot(out) == before  # no study.db, no tune_summary.json, nothing deleted


def test_tune_over_a_foreign_trial_folder_deletes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("WF_TUNE_STORAGE", raising=False)
    out = tmp_path / "tune"
    (out / "trials" / "0" / ".ssh").mkdir(parents=True)
    (out / "trials" / "0" / ".ssh" / "id_ed25519").write_text("key")
    before = _snapshot(out / "trials")
    res = _tune(tmp_path, out, "--no-final")
    assert res.exit_code == 2, res.output
    assert f"{out / 'trials' / '0'}: wf tune replaces this folder with the run folder of trial 0" in res.output
    assert "Nothing was deleted" in res.output and "internal error" not in res.output
    assert _snapshot(out / "trials") == before


def test_a_study_database_that_is_a_link_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WF_TUNE_STORAGE", raising=False)
    target = tmp_path / "someone.db"
    target.write_bytes(b"")
    out = tmp_path / "tune"
    out.mkdir()
    (out / "study.db").symlink_to(target)
    res = _tune(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / 'study.db'}: the study database of this tune folder is a symbolic link" in res.output
    assert target.read_bytes() == b""


def test_wf_sanity_never_overwrites_a_run_folder_reached_through_a_link(trained, tmp_path):
    other = _another_run(trained, tmp_path)
    before = _snapshot(other)
    out = tmp_path / "sanity"
    out.mkdir()
    (out / "edge").symlink_to(other)
    res = wf("sanity", "--output-dir", out, "--timesteps", "600", "--quiet")
    assert res.exit_code == 2, res.output
    assert f"{out / 'edge'} is a symbolic link to {other.resolve()}" in res.output
    assert _snapshot(other) == before


def test_the_calendar_cache_is_never_written_through_a_link_leaving_it(tmp_path, monkeypatch):
    from backend.core import calendars

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "calendars").symlink_to(elsewhere)
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    table = calendars._exchange_table("XNYS", 2019, 2019)  # computed, but not cached through the link
    assert len(table.open) == 252
    calendars._exchange_profile.cache_clear()
    assert calendars._exchange_profile("XNYS")["calendar"] == "XNYS"
    calendars._exchange_profile.cache_clear()
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ --overwrite keeps what the harness never wrote
def _foreign_folders(tmp_path: Path) -> dict[str, Path]:
    """The review's folders that merely look like ours (issue 21, fourth review)."""
    f = tmp_path / "F"
    (f / "tensorboard" / "exp1").mkdir(parents=True)
    (f / "summary.json").write_text(json.dumps({"runs": ["exp1"], "tool": "other-tracker"}))
    (f / "tensorboard" / "exp1" / "events.out.tfevents.1").write_bytes(b"someone's curves")
    (f / "report.html").write_text("their report")
    g = tmp_path / "G"
    (g / "logs").mkdir(parents=True)
    (g / "summary.json").write_text("Summary of my thesis")
    (g / "logs" / "a.log").write_text("log")
    p = tmp_path / "P"
    foreign = (("draft", "text", "paper.tex"), ("k8s", json.dumps({"kind": "Deployment"}), "values.yaml"))
    for sub, summary, other in foreign:
        (p / sub).mkdir(parents=True)
        (p / sub / "summary.json").write_text(summary)
        (p / sub / other).write_text("precious")
    return {"F": f, "G": g, "P": p}


@pytest.mark.parametrize("name", ["F", "G", "P"])
@pytest.mark.parametrize("seeds", [False, True])
def test_overwrite_of_a_folder_with_a_foreign_summary_is_refused(tmp_path, name, seeds):
    folder = _foreign_folders(tmp_path)[name]
    before = _snapshot(folder)
    res = _run(tmp_path, folder, "--overwrite", *(["--seeds", "2"] if seeds else []))
    assert res.exit_code == 2, res.output
    assert "not a run, seed or sweep folder" in res.output and "Nothing was deleted" in res.output
    assert _snapshot(folder) == before


def test_overwrite_keeps_foreign_entries_inside_a_real_run_folder(trained, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained / "out", out)
    (out / "w01" / "my_notes.txt").write_text("mine")
    (out / "analysis").mkdir()
    (out / "analysis" / "metadata.json").write_text("{}")
    (out / "tensorboard" / "mine.txt").write_text("mine too")
    for _ in range(2):  # overwritten twice: still a run of ours each time
        res = _run(tmp_path, out, "--overwrite")
        assert res.exit_code == 0, res.output
        assert "kept entries the harness does not write" in res.output
    assert (out / "w01" / "my_notes.txt").read_text() == "mine"
    assert (out / "analysis" / "metadata.json").read_text() == "{}"
    assert (out / "tensorboard" / "mine.txt").read_text() == "mine too"
    assert json.loads((out / "summary.json").read_text())["windows"][0]["status"] == "completed"
    assert (out / "w01" / "model.zip").exists()


@pytest.mark.parametrize("link", ["w01", "tensorboard"])
def test_a_link_loop_in_the_run_folder_is_exit_2_naming_it(tmp_path, link):
    out = tmp_path / "out"
    out.mkdir()
    (out / link).symlink_to(link)
    res = _run(tmp_path, out)
    assert res.exit_code == 2, res.output
    assert f"{out / link} is a symbolic link loop" in res.output and "internal error" not in res.output


# -- the cache's own sub-folders (JAX compilation cache, backend choice) never written through a link
def test_a_jax_cache_link_leaving_the_cache_is_not_written_through(tmp_path, monkeypatch, capsys):
    pytest.importorskip("jax")
    from backend.training import threads

    victim, cache = tmp_path / "victim", tmp_path / "cache"
    victim.mkdir()
    cache.mkdir()
    (cache / "jax").symlink_to(victim)
    monkeypatch.setenv("WF_CACHE_DIR", str(cache))
    monkeypatch.delenv("WF_JAX_CACHE", raising=False)
    assert threads.enable_compilation_cache() is None
    assert list(victim.iterdir()) == []
    assert "JAX compilation cache not used" in capsys.readouterr().err


def test_a_backend_choice_link_leaving_the_cache_is_exit_2_naming_it(tmp_path, monkeypatch):
    pytest.importorskip("sbx")
    from backend.core.errors import FolderError
    from backend.training import auto_backend as ab
    from tests.conftest import tiny_cfg

    victim, cache = tmp_path / "victim", tmp_path / "cache"
    victim.mkdir()
    cache.mkdir()
    (cache / "backend_choice").symlink_to(victim)
    monkeypatch.setenv("WF_CACHE_DIR", str(cache))
    monkeypatch.setattr(ab, "_CHOSEN", {})
    cfg = tiny_cfg()
    cfg.agent.backend = "auto"
    with pytest.raises(FolderError, match="backend_choice is a symbolic link"):
        ab.choice(cfg, 19, measure=lambda *a: {"sb3": 1.0, "sbx": 2.0})
    assert list(victim.iterdir()) == []
