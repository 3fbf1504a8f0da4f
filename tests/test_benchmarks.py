"""The benchmark never crashes on main again (issue 25): the floor's arithmetic and a smoke run of benchmarks/run.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import floor  # noqa: E402


def test_sac_step_flops_matches_hand_count() -> None:
    # actor 163->128->128->2, critic 164->128->128->1, batch 256
    actor = 2 * 256 * (163 * 128 + 128 * 128 + 128 * 2)
    critic = 2 * 256 * (164 * 128 + 128 * 128 + 128 * 1)
    expected = (actor + 2 * critic) + 2 * 3 * critic + (3 * actor + 2 * 3 * critic)
    got = floor.sac_step_flops(obs_dim=163, act_dim=1, net_arch=(128, 128), batch=256)
    assert got == expected
    assert 0.3 < got / 1e9 < 0.4  # the issue's ≈ 0.35 GFLOP at [128,128], batch 256


def test_flops_grow_with_the_network() -> None:
    small = floor.sac_step_flops(obs_dim=163, act_dim=1, net_arch=(64, 64), batch=256)
    big = floor.sac_step_flops(obs_dim=163, act_dim=1, net_arch=(256, 256), batch=256)
    assert big > 2 * small


def test_fraction_and_sweep_multiple() -> None:
    assert floor.fraction_of_floor(60.0, 100.0) == 0.6
    # 15 tasks × 20k steps × 6 ms / 2 workers = 900 s ideal; 1170 s wall = 1.3×
    assert floor.sweep_vs_floor(wall_seconds=1170, tasks=15, steps=20_000, floor_step_seconds=0.006, workers=2) == 1.3
    with pytest.raises(ValueError, match="floor_steps_per_second"):
        floor.fraction_of_floor(60.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        floor.sweep_vs_floor(wall_seconds=1, tasks=0, steps=1, floor_step_seconds=0.1, workers=1)


def test_floor_report_with_a_fixed_matmul_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floor, "matmul_gflops", lambda *a, **k: {"numpy": 50.0, "torch": 100.0, "jax": None})
    rep = floor.floor_report(obs_dim=163, act_dim=1, net_arch=(128, 128), batch=256)
    flops = floor.sac_step_flops(obs_dim=163, act_dim=1, net_arch=(128, 128), batch=256)
    assert rep["floor_step_seconds"] == pytest.approx(flops / 100e9)  # the best library sets the floor
    assert rep["matmul_gflops"]["jax"] is None


def test_machine_names_the_cpu_and_libraries() -> None:
    m = floor.machine()
    assert m["cpu_model"] and m["cpu_count"]
    assert m["libraries"]["numpy"]


def test_smoke_run_writes_the_floor_keys(tmp_path: Path) -> None:
    """`benchmarks/run.py --smoke` end to end on the groups that take seconds; the JSON carries the floor keys."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--only", "floor,env,dry_run,load"]
    cmd += ["--sweep-seconds", "1000", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["mode"] == "smoke"
    assert doc["floor"]["128x128"]["floor_steps_per_second"] > 0
    assert doc["mini_sweep_vs_floor"]["given"] > 0
    assert doc["figures"]["env_steps_per_second"] > 0
    assert doc["machine"]["cpu_model"]


def test_smoke_rejects_an_unknown_group(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown group" in proc.stderr


def _smoke(tmp_path: Path, groups: str, timeout: int = 600) -> dict:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--only", groups, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_smoke_of_the_training_groups(tmp_path: Path) -> None:
    """training, replay, projection and backends at tiny steps: every learner group runs to its figures."""
    doc = _smoke(tmp_path, "floor,training,replay,projection,backends")
    figures = doc["figures"]
    assert figures["training_overhead"] > 0 and figures["replay_bars_per_second"] > 0
    assert figures["production_steps_per_second_1_core"] > 0
    assert figures["sb3_steps_per_second_128x128"] > 0 and figures["sbx_steps_per_second_128x128"] > 0
    assert set(doc["learner_fraction_of_floor"]) == {"sb3_128x128", "sbx_128x128"}
    assert doc["harness_overhead"] == figures["training_overhead"]


@pytest.mark.slow
def test_smoke_of_the_sweep_and_window_groups(tmp_path: Path) -> None:
    """sweep and windows start `wf sweep` / `wf run` subprocesses (about a minute on 2 cores)."""
    figures = _smoke(tmp_path, "sweep,windows")["figures"]
    assert figures["sweep_speedup_2_workers"] > 0
    assert figures["window_parallel_speedup_2_workers_4_windows"] > 0  # the smoke runs the four windows only
    assert 0 <= figures["window_parallel_idle_share_4_windows"] <= 1
