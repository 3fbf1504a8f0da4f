"""Nothing lost, nothing misattributed: resume by content, locked run folders, truthful statuses."""

import json
import shutil
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_CONFIG, TINY_WINDOWS
from tests.helpers import hold_lock, no_temp_files, strict_json, wf


def run(cfg, wins, out, *extra):
    return wf("run", "--config", cfg, "--windows", wins, "--output-dir", out, "--quiet", "--no-report", *extra)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A finished two-window run, copied per test."""
    tmp = tmp_path_factory.mktemp("done")
    cfg, wins = tmp / "tiny.json", tmp / "w.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    wins.write_text(json.dumps(TINY_WINDOWS))
    res = run(cfg, wins, tmp / "out")
    assert res.exit_code == 0, res.output
    return tmp


@pytest.fixture
def copy(done, tmp_path):
    shutil.copytree(done / "out", tmp_path / "out")
    shutil.copy(done / "tiny.json", tmp_path / "tiny.json")
    shutil.copy(done / "w.json", tmp_path / "w.json")
    return tmp_path


def test_resume_of_an_unchanged_run_changes_nothing(copy):
    before = {p.name: p.read_bytes() for p in (copy / "out").rglob("*") if p.is_file() and p.suffix != ".lock"}
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 0, res.output
    assert "Training [w01] — skipped" in res.output and "unchanged" in res.output
    after = {p.name: p.read_bytes() for p in (copy / "out").rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert after == before


def test_an_edited_window_file_never_reuses_old_results(copy):
    moved = json.loads(json.dumps(TINY_WINDOWS))
    moved[0].update(train_start="2019-04-01", train_end="2019-04-10", test_start="2019-04-11", test_end="2019-04-12")
    (copy / "w.json").write_text(json.dumps(moved))
    old = (copy / "out" / "summary.json").read_bytes()
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 2 and "window w01 moved" in res.output and "--overwrite" in res.output
    assert (copy / "out" / "summary.json").read_bytes() == old  # nothing was touched
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--overwrite")
    assert res.exit_code == 0, res.output
    assert strict_json(copy / "out" / "summary.json")["windows"][0]["test_start"].startswith("2019-04-11")


@pytest.mark.parametrize("change", ["config", "corrupt"])
def test_resume_refuses_to_discard_finished_work_silently(copy, change):
    if change == "config":
        cfg = json.loads(json.dumps(TINY_CONFIG))
        cfg["sac"]["learning_rate"] = 1e-4
        (copy / "tiny.json").write_text(json.dumps(cfg))
        needle = "the config changed"
    else:
        (copy / "out" / "summary.json").write_text('{"status": "completed", "windows": [')
        needle = "malformed JSON"
    model = (copy / "out" / "w01" / "model.zip").read_bytes()
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 2 and needle in res.output and "--overwrite" in res.output, res.output
    assert (copy / "out" / "w01" / "model.zip").read_bytes() == model


def test_a_damaged_bundle_is_retrained_and_the_stage_line_says_why(copy):
    (copy / "out" / "w02" / "obs_stats.npz").write_bytes(b"garbage")
    (copy / "out" / "w02" / "replay").mkdir()  # a stale replay of the old model
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 0, res.output
    assert "Training [w01] — skipped" in res.output
    line = next(x for x in res.output.splitlines() if x.startswith("[STAGE ✅] Training [w02]"))
    # the statistics file's zip directory is checked (bounded) before its hash: garbage is not a zip archive
    assert "retrained: its bundle cannot be trusted" in line and "obs_stats.npz: not a readable zip archive" in line
    assert not (copy / "out" / "w02" / "replay").exists()


def test_a_second_writer_on_a_run_folder_is_refused_and_a_dead_holder_is_taken_over(copy):
    out = copy / "out"
    with hold_lock(out) as holder:
        res = run(copy / "tiny.json", copy / "w.json", out, "--overwrite")
        assert res.exit_code == 2 and f"another run (pid {holder.pid}" in res.output
        assert (out / "w01" / "model.zip").exists() and (out / "tensorboard" / "w01").exists()  # nothing deleted
    res = run(copy / "tiny.json", copy / "w.json", out, "--resume")  # the holder died (SIGKILL)
    assert res.exit_code == 0, res.output


def test_two_real_runs_on_one_folder(tmp_path):
    """Two `wf run --overwrite` processes on the same folder: one trains, the other is refused at once."""
    cfg, wins = tmp_path / "c.json", tmp_path / "w.json"
    slow = json.loads(json.dumps(TINY_CONFIG))
    slow["training"]["total_timesteps"] = 3000
    cfg.write_text(json.dumps(slow))
    wins.write_text(json.dumps(TINY_WINDOWS))
    cmd = [sys.executable, "-m", "backend.cli", "run", "--config", str(cfg), "--windows", str(wins)]
    cmd += ["--output-dir", str(tmp_path / "out"), "--quiet", "--no-report", "--overwrite"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert first.stdout is not None
    assert "Window Setup" in first.stdout.readline()
    while not (tmp_path / "out" / "summary.json").exists():
        pass
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    rest, _ = first.communicate(timeout=300)
    assert second.returncode == 2 and "another run" in second.stdout, second.stdout
    assert first.returncode == 0, rest
    assert strict_json(tmp_path / "out" / "summary.json")["status"] == "completed"


def test_overwrite_removes_the_whole_previous_run(copy):
    (copy / "out" / "w99").mkdir()
    (copy / "out" / "w99" / "model.zip").write_bytes(b"old")
    one = [TINY_WINDOWS[0]]
    (copy / "w.json").write_text(json.dumps(one))
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--overwrite")
    assert res.exit_code == 0, res.output
    assert not (copy / "out" / "w99").exists() and not (copy / "out" / "w02").exists()


def test_outputs_are_readable_by_the_team(copy):
    for path in (copy / "out").rglob("*"):
        if path.is_file() and not path.name.startswith(".wf.lock"):
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o044 == 0o044, (path, oct(mode))  # not 0600: group and others may read (umask 022)


def test_empty_output_dir_and_reserved_window_ids_are_refused(copy, tmp_path):
    res = wf("run", "--config", copy / "tiny.json", "--windows", copy / "w.json", "--output-dir", "")
    assert res.exit_code == 2 and "--output-dir is empty" in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[STAGE ❌] Window Setup")  # no ✅ before the ❌
    bad = [dict(TINY_WINDOWS[0], id="tensorboard")]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = wf("run", "--config", copy / "tiny.json", "--windows", tmp_path / "bad.json", "--dry-run")
    assert res.exit_code == 2 and "tensorboard" in res.output


def test_progress_file_says_interrupted_after_ctrl_c(tiny_config, tiny_windows, tmp_path, monkeypatch):
    from backend.training import callbacks

    real = callbacks.ProgressFileCallback._on_step

    def ctrl_c(self):
        if self.n_calls == 120:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(callbacks.ProgressFileCallback, "_on_step", ctrl_c)
    res = run(tiny_config, tiny_windows, tmp_path / "out")
    assert res.exit_code == 130
    progress = strict_json(tmp_path / "out" / "w01" / "training_progress.json")
    assert progress["status"] == "interrupted" and progress["timesteps_done"] >= 100
    assert no_temp_files(tmp_path / "out")


def test_diverged_training_ends_with_the_harness_message(tiny_config, tiny_windows, tmp_path):
    res = run(tiny_config, tiny_windows, tmp_path / "out", "--set", "sac.learning_rate=1e12")
    assert res.exit_code == 4, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("[STAGE ❌] Training [w01]"))
    assert "non-finite" in line and "step" in line and "learning_rate" in line
    assert "Traceback" not in res.output and "Expected parameter" not in res.output


def test_a_full_disk_during_the_report_is_exit_6_with_a_truthful_summary(
    tiny_config, tiny_windows, tmp_path, monkeypatch
):
    import errno

    from backend.core.errors import ArtifactError
    from backend.evaluation import report

    def full(run_dir):
        raise ArtifactError(f"{run_dir}/report.html: cannot write ({errno.errorcode[errno.ENOSPC]})")

    monkeypatch.setattr(report, "build_report", full)
    res = wf("run", "--config", tiny_config, "--windows", tiny_windows, "--output-dir", tmp_path / "out", "--quiet")
    assert res.exit_code == 6
    assert "[STAGE ❌] Report" in res.output and "[STAGE ❌] Summary" in res.output
    summary = strict_json(tmp_path / "out" / "summary.json")
    assert summary["status"] == "failed" and summary["error"]["stage"] == "report"
    assert [w["status"] for w in summary["windows"]] == ["completed", "completed"]  # finished work is kept


def test_bundle_metadata_that_is_not_an_object_is_a_clear_error(copy):
    (copy / "out" / "w01" / "metadata.json").write_text("[1, 2]")
    res = wf("eval", "--model-path", copy / "out" / "w01" / "model.zip", "--quiet")
    assert res.exit_code == 5 and "not a bundle metadata object" in res.output and "internal error" not in res.output


def test_a_bundle_crafted_to_run_code_never_runs_it(copy, tmp_path):
    """The attacker writes the whole folder: pickled payloads in model.zip and vecnormalize.pkl, hashes fixed up."""
    import pickle
    import zipfile

    from backend.training import bundle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    out = copy / "out"
    wdir = out / "w01"
    blob = pickle.dumps(Payload())
    src = zipfile.ZipFile(wdir / "model.zip")
    with src, zipfile.ZipFile(tmp_path / "evil.zip", "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "data":
                doc = json.loads(data)
                doc["policy_class"] = {
                    ":type:": "<class 'abc.ABCMeta'>",
                    ":serialized:": __import__("base64").b64encode(blob).decode(),
                }
                data = json.dumps(doc).encode()
            dst.writestr(name, data)
    shutil.copy(tmp_path / "evil.zip", wdir / "model.zip")
    (wdir / "vecnormalize.pkl").write_bytes(blob)
    meta = strict_json(wdir / "metadata.json")
    for name in ("model.zip", "vecnormalize.pkl"):
        meta["files"][name] = bundle.sha256_file(wdir / name)
    (wdir / "metadata.json").write_text(json.dumps(meta))
    summary = strict_json(out / "summary.json")
    summary["windows"][0]["bundle"]["files"] = meta["files"]
    (out / "summary.json").write_text(json.dumps(summary))
    res = wf("eval", "--model-path", wdir / "model.zip", "--output-dir", tmp_path / "replay", "--quiet")
    assert res.exit_code == 0, res.output  # the weights are intact, so the replay runs — without unpickling
    assert not marker.exists()
    # a payload in the tensors themselves is refused, still without running it
    with zipfile.ZipFile(tmp_path / "evil.zip") as src, zipfile.ZipFile(wdir / "model.zip", "w") as dst:
        for name in src.namelist():
            dst.writestr(name, blob if name == "policy.pth" else src.read(name))
    meta["files"]["model.zip"] = bundle.sha256_file(wdir / "model.zip")
    (wdir / "metadata.json").write_text(json.dumps(meta))
    summary["windows"][0]["bundle"]["files"] = meta["files"]
    (out / "summary.json").write_text(json.dumps(summary))
    res = wf("eval", "--model-path", wdir / "model.zip", "--output-dir", tmp_path / "replay2", "--quiet")
    assert res.exit_code == 5 and not marker.exists(), res.output


def test_resume_never_trusts_edited_equity_files(copy):
    eq = copy / "out" / "w01" / "equity.csv"
    eq.write_text(eq.read_text().replace("\n", "\n", 1) + "")  # unchanged content: still trusted
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 0 and "unchanged" in res.output, res.output
    lines = eq.read_text().splitlines()
    eq.write_text("\n".join(lines[:-5]) + "\n")  # truncated: the aggregate would silently shrink
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("[STAGE ✅] Training [w01]"))
    assert "equity.csv differs from what the run wrote" in line
    summary = strict_json(copy / "out" / "summary.json")
    assert summary["aggregate"]["n_bars"] == sum(w["test_bars"] for w in summary["windows"])


def test_a_malformed_summary_entry_is_a_clear_refusal(copy):
    doc = strict_json(copy / "out" / "summary.json")
    doc["windows"][0]["train_start"] = 5
    (copy / "out" / "summary.json").write_text(json.dumps(doc))
    res = run(copy / "tiny.json", copy / "w.json", copy / "out", "--resume")
    assert res.exit_code == 2 and "[STAGE ❌] Run Folder" in res.output and "internal error" not in res.output


def test_a_forced_exit_too_early_for_any_trade_fails_at_window_setup(tiny_config, tiny_windows):
    res = wf(
        "run", "--config", tiny_config, "--windows", tiny_windows, "--dry-run", "--set", "env.forced_exit_minutes=15"
    )
    assert res.exit_code == 3 and "forced_exit_minutes" in res.output and "[STAGE ❌] Window Setup" in res.output


def test_a_model_warm_started_from_the_future_never_replays_on_the_past(tiny_config, tmp_path, monkeypatch):
    """Even if the dispatcher picked a later window as the source, replay refuses: data_end is in the bundle."""
    from backend.run import driver

    def from_the_future(windows, embargo):
        ordered = sorted(windows, key=lambda w: w.test_start)
        return {w.id: (ordered[k + 1].id if k + 1 < len(ordered) else None) for k, w in enumerate(ordered)}

    monkeypatch.setattr(driver, "warm_start_sources", from_the_future)
    anchored = [dict(TINY_WINDOWS[0]), dict(TINY_WINDOWS[1], train_start="2019-01-02")]
    (tmp_path / "w.json").write_text(json.dumps(anchored))
    res = run(tiny_config, tmp_path / "w.json", tmp_path / "out", "--set", "training.warm_start=true")
    assert res.exit_code == 1, res.output  # w02 completes; w01 (warm-started from w02) cannot be evaluated
    line = next(x for x in res.output.splitlines() if x.startswith("[STAGE ❌] Evaluation [w01]"))
    assert "cannot be evaluated on the test span" in line
    assert strict_json(tmp_path / "out" / "w01" / "metadata.json")["data_end"].startswith("2019-01-25")
