"""Reliability (issue 21): --overwrite, bounded reading, hostile bundles, and SIGKILLed workers of run and sweep.

The CLI-level catalogue (one test per broken case of the issue: links in the output folder and the cache, lock
files, executor start-up, the `training` status …) is tests/test_reliability_catalogue.py; it checks that the slow
cases here still exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from backend.core.errors import EvaluationError, FolderError, InputError
from backend.core.jsonio import load_json
from backend.run import folder as rf
from backend.training import bundle


# ------------------------------------------------------------------ --overwrite: the output folder is a boundary
def _home_like(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "thesis.txt").write_text("years of work")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("key")
    (home / ".git").mkdir()
    (home / ".git" / "HEAD").write_text("ref: refs/heads/main")
    return home


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_overwrite_refuses_a_foreign_folder_and_deletes_nothing(tmp_path):
    home = _home_like(tmp_path)
    before = _files(home)
    with pytest.raises(FolderError) as e:
        rf.clear(home)
    msg = str(e.value)
    assert str(home) in msg and "Documents/" in msg and ".ssh/" in msg and ".git/" in msg
    assert "Nothing was deleted" in msg
    assert _files(home) == before


def test_overwrite_of_dot_is_refused(tmp_path, monkeypatch):
    repo = _home_like(tmp_path)
    monkeypatch.chdir(repo)
    before = _files(repo)
    with pytest.raises(FolderError):
        rf.clear(Path("."))
    assert _files(repo) == before


def test_overwrite_clears_a_run_folder_but_only_its_own_entries(tmp_path):
    out = tmp_path / "run"
    (out / "w01").mkdir(parents=True)
    (out / "w01" / "metadata.json").write_text("{}")
    (out / "summary.json").write_text(
        json.dumps({"status": "completed", "config_hash": "c0", "windows": [{"id": "w01"}]})
    )
    (out / "command.txt").write_text("wf run")
    (out / "notes-of-the-user.txt").write_text("mine")
    outside = tmp_path / "shared_tb"
    (outside / "w01").mkdir(parents=True)
    (outside / "w01" / "events").write_text("other run")
    (out / "tensorboard").symlink_to(outside)  # a link: removed as a link, its target untouched
    (out / "w99").mkdir()  # a stale window folder of ours (only bundle files): removed
    (out / "w99" / "model.zip").write_bytes(b"old")
    (out / "photos").mkdir()  # a user's folder: kept
    (out / "photos" / "cat.jpg").write_bytes(b"cat")
    rf.clear(out)
    assert sorted(p.name for p in out.iterdir()) == ["notes-of-the-user.txt", "photos"]
    assert (outside / "w01" / "events").read_text() == "other run"
    assert (out / "photos" / "cat.jpg").read_bytes() == b"cat"


def _trial_folder(folder: Path, status: str) -> Path:
    """A `wf tune` trial's run folder as the trial driver leaves it: w01 trained, w02 trained or (pruned) not run."""
    ran = ["w01"] if status == "pruned" else ["w01", "w02"]
    for wid in ran:
        (folder / wid).mkdir(parents=True)
        (folder / wid / "model.zip").write_bytes(b"weights")
        (folder / wid / "evaluation.json").write_text("{}")
    windows = [{"id": w, "status": "completed" if w in ran else status} for w in ("w01", "w02")]
    (folder / "summary.json").write_text(json.dumps({"status": status, "config_hash": "c0", "windows": windows}))
    (folder / "config.resolved.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    return folder


def test_overwrite_takes_a_pruned_trial_folder_like_a_completed_one(tmp_path):
    from backend.studies.tune.study import check_replaceable
    from backend.studies.tune.trial import PRUNED

    trials = tmp_path / "trials"
    completed, pruned = _trial_folder(trials / "0", "completed"), _trial_folder(trials / "1", PRUNED)
    for folder in (completed, pruned):
        check_replaceable(folder, f"the run folder of trial {folder.name}")  # what a trial checks before replacing
        rf.clear(folder)
        assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"], folder  # ours removed, the user's kept
    _trial_folder(tmp_path / "again" / "0", "completed")
    _trial_folder(tmp_path / "again" / "1", PRUNED)
    rf.clear(tmp_path / "again")  # a folder holding only trial folders: ours as well
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "again").rglob("*")) == [
        "again/0", "again/0/notes.txt", "again/1", "again/1/notes.txt"
    ]  # fmt: skip
    _trial_folder(tmp_path / "odd", "bogus")  # negative control: a status neither Status nor pruned is foreign
    with pytest.raises(FolderError):
        rf.check_clearable(tmp_path / "odd")


def test_overwrite_of_an_empty_folder_is_fine(tmp_path):
    rf.clear(tmp_path)  # negative control: nothing to refuse


# ------------------------------------------------------------------ config and window files: bounded, UTF-8, depth
def test_config_nested_100000_deep_is_an_input_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError) as e:
        load_json(path, "config file")
    assert str(path) in str(e.value) and "nested deeper" in str(e.value)


def test_brackets_inside_strings_do_not_count_as_depth(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"a": "[" * 1000}))
    assert load_json(path) == {"a": "[" * 1000}


@pytest.mark.parametrize("what", ["config file", "window file"])
def test_non_utf8_file_names_file_and_byte_offset(tmp_path, what):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(InputError) as e:
        load_json(path, what)
    assert str(path) in str(e.value) and "byte offset 13" in str(e.value) and "0xe9" in str(e.value)


def test_oversized_file_refused_before_reading(tmp_path, monkeypatch):
    from backend.core import jsonio

    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 1000 + "0]")
    monkeypatch.setattr(jsonio, "MAX_JSON_BYTES", 100)
    with pytest.raises(InputError) as e:
        jsonio.load_json(path, "window file")
    assert "over the limit of 100" in str(e.value)


def test_config_that_is_a_device_is_refused(tmp_path):
    with pytest.raises(InputError) as e:
        load_json("/dev/zero", "config file")
    assert "not a regular file" in str(e.value)


def test_load_config_refuses_non_utf8_with_exit_2(tmp_path):
    from backend.config.models import load_config

    path = tmp_path / "cfg.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert e.value.exit_code == 2 and "byte offset 0" in str(e.value)


# ------------------------------------------------------------------ hostile bundles: refused fast, bounded memory
def _signed_bundle(tmp_path: Path, model: Path | None = None) -> tuple[Path, dict]:
    wdir = tmp_path / "w01"
    wdir.mkdir()
    files = {}
    if model is not None:
        files["model.zip"] = hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else "0" * 64
    meta = {"files": files, "compatibility": {"normalize_obs": False}}
    return wdir, meta


def _zip_bomb(path: Path, size: int) -> None:
    chunk = b"\0" * (1 << 24)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("policy.pth", "w", force_zip64=True) as fh:
            for _ in range(size // len(chunk)):
                fh.write(chunk)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "model.zip"
    _zip_bomb(path, 2 << 30)  # 2 GiB of zeros, ~2 MB on disk
    return path


MEASURE = """
import json, resource, sys, time
from pathlib import Path
from backend.core.errors import EvaluationError
from backend.training import bundle
wdir = Path(sys.argv[1]); meta = json.loads((wdir / "metadata.json").read_text())
rss0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
try:
    bundle.verify_files(wdir, meta, meta["files"]); msg = "accepted"
except EvaluationError as e:
    msg = str(e)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "extra_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, "msg": msg}))
"""


def test_zip_bomb_with_resigned_hash_is_refused_fast_with_bounded_memory(tmp_path, bomb):
    """Measured in a fresh process, so that the peak resident memory is the refusal's own."""
    import subprocess
    import sys

    wdir, meta = _signed_bundle(tmp_path)
    os.link(bomb, wdir / "model.zip")
    meta["files"]["model.zip"] = bundle.sha256_file(wdir / "model.zip")  # hashes re-signed
    (wdir / "metadata.json").write_text(json.dumps(meta))
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(wdir)], capture_output=True, text=True, check=True)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"zip bomb ({bomb.stat().st_size} bytes on disk, 2 GiB inside) refused in {got['seconds']:.3f} s, "
        f"peak RSS +{got['extra_mib']:.1f} MiB: {got['msg']}"
    )
    assert "zip bomb" in got["msg"]
    assert got["seconds"] <= 1.0 and got["extra_mib"] <= 200


def test_model_zip_linked_to_dev_zero_is_refused_at_once(tmp_path):
    wdir, meta = _signed_bundle(tmp_path)
    (wdir / "model.zip").symlink_to("/dev/zero")
    meta["files"]["model.zip"] = "0" * 64
    t0 = time.perf_counter()
    with pytest.raises(EvaluationError) as e:
        bundle.verify_files(wdir, meta)
    assert time.perf_counter() - t0 <= 1.0
    assert "symlink" in str(e.value) and "/dev/zero" in str(e.value)


def test_zip_member_with_dotdot_name_is_refused(tmp_path):
    wdir, meta = _signed_bundle(tmp_path)
    with zipfile.ZipFile(wdir / "model.zip", "w") as z:
        z.writestr("../../etc/evil", b"x")
    meta["files"]["model.zip"] = bundle.sha256_file(wdir / "model.zip")
    with pytest.raises(EvaluationError) as e:
        bundle.verify_files(wdir, meta)
    assert "'..'" in str(e.value)


def test_a_plain_small_zip_passes(tmp_path):
    wdir, meta = _signed_bundle(tmp_path)  # negative control: an honest archive is accepted
    from tests.test_hostile_inputs import torch_like  # what torch.save writes: a zip holding data.pkl

    with zipfile.ZipFile(wdir / "model.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("policy.pth", torch_like({"w": list(os.urandom(64))}))
    meta["files"]["model.zip"] = bundle.sha256_file(wdir / "model.zip")
    bundle.verify_files(wdir, meta)


def test_hashing_is_bounded(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(EvaluationError):
        bundle.sha256_file(path, limit=4096)


# ------------------------------------------------------------------ a dead worker is one failed window


def _spawned_workers(parent: int) -> list[int]:
    """Pids of the pool workers (multiprocessing spawn children) of ``parent``, from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def _training(out: Path) -> int:
    """How many windows the summaries below ``out`` show `training` (the workers have them)."""
    n = 0
    for path in out.rglob("summary.json"):
        try:
            n += sum(w.get("status") == "training" for w in json.loads(path.read_text()).get("windows", []))
        except (OSError, ValueError):
            continue
    return n


def _kill_one_worker_while_training(proc, out: Path) -> int:
    """Wait until two workers train a window each, then SIGKILL the first worker; its pid."""
    import signal

    deadline = time.time() + 120
    while (len(_spawned_workers(proc.pid)) < 2 or _training(out) < 2) and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    workers = _spawned_workers(proc.pid)
    assert len(workers) == 2 and _training(out) >= 2, "the pool never trained two windows at once"
    time.sleep(1.5)  # both are inside their windows' training
    os.kill(workers[0], signal.SIGKILL)
    return workers[0]


def _kill_test_inputs(tmp_path: Path, windows: list[dict]) -> tuple[Path, Path]:
    from tests.conftest import TINY_CONFIG

    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["training"]["total_timesteps"] = 4000
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    (tmp_path / "w.json").write_text(json.dumps(windows))
    return tmp_path / "c.json", tmp_path / "w.json"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker pids from /proc")
def test_a_worker_killed_by_sigkill_fails_only_its_window(tmp_path):
    import subprocess
    import sys

    from tests.conftest import TINY_WINDOWS

    third = dict(TINY_WINDOWS[1], id="w03", train_start="2019-02-01", train_end="2019-02-12")
    third.update(test_start="2019-02-13", test_end="2019-02-14")
    cfg, win = _kill_test_inputs(tmp_path, [*TINY_WINDOWS, third])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "backend.cli", "run", "--config", str(cfg), "--windows", str(win)]
    cmd += ["--output-dir", str(out), "--workers", "2", "--quiet", "--no-report"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = _kill_one_worker_while_training(proc, out)
    output, _ = proc.communicate(timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    statuses = {w["id"]: w["status"] for w in summary["windows"]}
    failed = [w for w in summary["windows"] if w["status"] == "failed"]
    assert proc.returncode == 1, output
    assert len(failed) == 1 and sorted(statuses.values()) == ["completed", "completed", "failed"], statuses
    assert "SIGKILL" in failed[0]["error"]["message"] and str(killed) in failed[0]["error"]["message"]
    assert summary["status"] not in {"running", "completed"}
    assert "BrokenProcessPool" not in output and "internal error" not in output


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker pids from /proc")
def test_a_sweep_worker_killed_by_sigkill_fails_only_its_member(tmp_path):
    """`wf sweep --workers 2`, three members of one window each; one worker SIGKILLed while it trains."""
    import subprocess
    import sys

    from tests.conftest import TINY_WINDOWS

    cfg, win = _kill_test_inputs(tmp_path, TINY_WINDOWS[:1])
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "backend.cli", "sweep", "--configs", str(cfg), "--seed-list", "0,1,2"]
    cmd += ["--windows", str(win), "--output-dir", str(out), "--workers", "2", "--quiet", "--no-report"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = _kill_one_worker_while_training(proc, out)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    sweep = json.loads((out / "sweep.json").read_text())
    statuses = {m["name"]: m["status"] for m in sweep["members"]}
    assert sorted(statuses.values()) == ["completed", "completed", "failed"], statuses
    failed = next(m for m in sweep["members"] if m["status"] == "failed")
    assert "SIGKILL" in (failed["error"] or "") and str(killed) in failed["error"]
    for m in sweep["members"]:  # each member's own summary is true as well
        summary = json.loads((out / m["name"] / "summary.json").read_text())
        assert summary["status"] == ("failed" if m is failed else "completed"), summary["status"]
        assert [w["status"] for w in summary["windows"]] == [summary["status"]]
    assert "BrokenProcessPool" not in output and "internal error" not in output
