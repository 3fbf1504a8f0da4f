"""Every benchmark script runs in the suite on tiny sizes ("what the suite does not run, rots").

Each runs as its user runs it (``python benchmarks/<script>.py ...``, a fresh process: the scripts configure torch
and JAX threads for their process) with the smallest arguments it takes, and its JSON keys and figures are checked.
benchmarks/run.py has its own smoke in tests/test_benchmarks.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _finite_positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_floor_script(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    stdout = _script("floor.py", "--arch", "8,8", "--batch", "8", "--repeats", "1", "--inner", "1", "--out", str(out))
    doc = json.loads(out.read_text())
    rep = doc["floor"]["8x8"]
    assert "floor [8, 8] batch 8" in stdout
    assert rep["net_arch"] == [8, 8] and rep["batch"] == 8
    for key in ("step_gflop", "floor_step_seconds", "floor_steps_per_second"):
        assert _finite_positive(rep[key]), key
    assert _finite_positive(rep["matmul_gflops"]["numpy"])
    assert doc["machine"]["cpu_model"]


def test_backends_script(tmp_path: Path) -> None:
    """[128,128]: the network of run.py's smoke, whose sbx compile this session's JAX cache then holds."""
    out = tmp_path / "backends.json"
    args = ("--arch", "128,128", "--steps", "8", "--warmup", "4", "--repeats", "1", "--concurrent", "--out", str(out))
    stdout = _script("backends.py", *args)
    row = json.loads(out.read_text())["128x128"]
    assert "| 128x128 |" in stdout
    for backend in ("sb3", "sbx"):
        for key in ("steps_per_second", "steps_per_cpu_second", "cpu_per_wall"):
            assert _finite_positive(row[f"{backend}_{key}"]), (backend, key)
    assert _finite_positive(row["sbx_vs_sb3_steps_per_second"]) and _finite_positive(
        row["sbx_vs_sb3_steps_per_cpu_second"]
    )


def test_learner_candidates_script(tmp_path: Path) -> None:
    """The library SACs (SB3's, SBX's) and FastSAC with fused Adam (the harness's sbx is build_model: the backends smoke
    runs it)."""
    out = tmp_path / "candidates.json"
    args = ("--arch", "16,16", "--steps", "8", "--warmup", "4", "--repeats", "1", "--concurrent")
    _script("learner_candidates.py", *args, "--candidates", "sb3,sb3_fast_fused,sbx_lib", "--out", str(out))
    doc = json.loads(out.read_text())
    assert set(doc["candidates"]) == {"sb3", "sb3_fast_fused", "sbx_lib"}
    for c, row in doc["candidates"].items():
        for key in ("steps_per_second", "steps_per_cpu_second", "updates_per_second", "learner_fraction_of_floor"):
            assert _finite_positive(row[key]), (c, key)
        assert row["runs"] == 1
    assert doc["floor"]["net_arch"] == [16, 16] and _finite_positive(doc["floor"]["floor_steps_per_second"])


def test_learner_candidates_rejects_an_unknown_candidate() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learner_candidates.py"), "--candidates", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown" in proc.stderr


def test_learner_ab_script(tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    _script("learner_ab.py", "--rounds", "2", "--updates", "2", "--arch", "16,16", "--batch", "32", "--out", str(out))
    doc = json.loads(out.read_text())
    for key in (
        "library_updates_per_second",
        "fast_updates_per_second",
        "fast_vs_library",
        "round_ratio_median",
        "round_ratio_min",
        "round_ratio_max",
    ):
        assert _finite_positive(doc[key]), key
    assert (doc["arch"], doc["batch"], doc["backend"]) == ("16,16", 32, "sb3")
    args = ("--backend", "sbx", "--train-freq", "2", "--rounds", "2", "--updates", "4", "--arch", "16,16")
    _script("learner_ab.py", *args, "--batch", "32", "--out", str(out))  # sbx.SAC.learn vs FastSBXSAC.learn
    doc = json.loads(out.read_text())
    assert (doc["backend"], doc["train_freq"]) == ("sbx", 2) and _finite_positive(doc["fast_vs_library"])


@pytest.fixture(scope="module")
def defaults_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """benchmarks/defaults.py on one setting × one window × 48 steps (sb3): a real sweep folder, and its table."""
    out = tmp_path_factory.mktemp("defaults")
    args = ("--out-dir", str(out), "--settings", "net64x64", "--windows", str(ROOT / "tmp" / "mini_window.json"))
    stdout = _script("defaults.py", *args, "--timesteps", "48", "--workers", "1", "--set", "agent.backend=sb3")
    return out, stdout


def test_defaults_script(defaults_run: tuple[Path, str]) -> None:
    out, stdout = defaults_run
    assert [p.name for p in (out / "configs").iterdir()] == ["net64x64.json"]
    row = next(line for line in stdout.splitlines() if line.startswith("| net64x64 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) > 0 and cells[2].endswith(" min")  # steps/s, time for 25k steps
    summary = json.loads((out / "sweep" / "net64x64_s0" / "summary.json").read_text())
    assert summary["backend"] == "sb3"


def test_defaults_rejects_an_unknown_setting(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "defaults.py"), "--out-dir", str(tmp_path), "--settings", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown" in proc.stderr


def test_parity_script(defaults_run: tuple[Path, str], tmp_path: Path) -> None:
    """parity.py reads two sweep folders (here the same real one twice) into one row per member and backend."""
    sweep = defaults_run[0] / "sweep"
    out = tmp_path / "parity.json"
    stdout = _script("parity.py", str(sweep), str(sweep), "--out", str(out))
    rows = json.loads(out.read_text())
    assert set(rows) == {"net64x64_s0"} and set(rows["net64x64_s0"]) == {"sb3", "sbx"}
    for fig in rows["net64x64_s0"].values():
        assert set(fig) == {
            "oos_sharpe",
            "oos_return",
            "oos_trades",
            "window_sharpe_sd",
            "steps_per_second",
            "collapsed",
            "reward_first_fifth",
            "reward_last_fifth",
        }
        assert _finite_positive(fig["steps_per_second"]) and math.isfinite(fig["oos_sharpe"])
    assert "net64x64_s0" in stdout
    _script("parity.py", str(sweep), str(sweep), "--labels", "tf1,tf4", "--out", str(out))
    assert set(json.loads(out.read_text())["net64x64_s0"]) == {"tf1", "tf4"}  # any two settings, named


def test_parity_curve_averages_the_first_and_last_fifth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """48 steps end no episode: the curve's arithmetic is checked on planted rewards instead."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import parity

    (tmp_path / "tensorboard" / "w01").mkdir(parents=True)
    (tmp_path / "tensorboard" / "w02").mkdir()
    points = {"w01": [(i, float(i)) for i in range(10)], "w02": [(i, 1.0) for i in range(3)]}  # w02: too few
    monkeypatch.setattr(parity, "episode_rewards", lambda tb: points[tb.name])
    assert parity.curve(tmp_path) == {"reward_first_fifth": 0.5, "reward_last_fifth": 8.5}


def test_concurrency_script(tmp_path: Path) -> None:
    out = tmp_path / "concurrency.json"
    _script("concurrency.py", "--backend", "sb3", "--steps", "40", "--warmup", "20", "--net", "8", "--out", str(out))
    doc = json.loads(out.read_text())
    assert _finite_positive(doc["alone_steps_per_second"]) and len(doc["together_steps_per_second"]) == 2
    assert all(_finite_positive(x) for x in doc["together_steps_per_second"])
    assert _finite_positive(doc["together_vs_alone"])
