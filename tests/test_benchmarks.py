"""The benchmark never crashes on main again (issue 25): the floor's arithmetic and a smoke run of benchmarks/run.py.

The other benchmark scripts' smokes: tests/test_benchmarks_scripts.py.
"""

from __future__ import annotations

import json
import math
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


def _finite_positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_smoke_runs_every_group(tmp_path: Path) -> None:
    """`benchmarks/run.py --smoke` end to end, every group (what the before-stop hook runs): the JSON's keys."""
    out = tmp_path / "bench.json"
    kept = tmp_path / "kept_sweep"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--sweep-seconds", "1000", "--out", str(out)]
    cmd += ["--keep-sweep", str(kept)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (kept / "sweep.json").is_file()  # --keep-sweep: the mini sweep's folder stays (for benchmarks/parity.py)
    doc = json.loads(out.read_text())
    assert doc["mode"] == "smoke" and doc["machine"]["cpu_model"]
    assert set(doc["group_seconds"]) == {"floor", "env,peers", "training", "dry_run", "sweep", "replay", "load",
                                         "windows", "projection", "backends", "mini_sweep", "floor_again"}  # fmt: skip
    assert all(f"[{group}] " in proc.stdout for group in doc["group_seconds"])  # a line per group as it ends
    figures = doc["figures"]
    for key in (
        "env_steps_per_second",
        "training_overhead",
        "dry_run_seconds",
        "sweep_speedup_2_workers",
        "replay_bars_per_second",
        "sample_load_seconds",
        "window_parallel_speedup_2_workers_4_windows",
        "production_steps_per_second_1_core",
        "sb3_steps_per_second_128x128",
        "sbx_steps_per_second_128x128",
        "mini_sweep_sb3_seconds",
    ):
        assert _finite_positive(figures[key]), key
    assert 0 <= figures["window_parallel_idle_share_4_windows"] <= 1
    floor = doc["floor"]["128x128"]
    assert floor["floor_steps_per_second"] == max(floor["samples_steps_per_second"]) > 0  # measured twice
    assert 0 <= floor["spread"] < 1 and floor["blas_threads"] == "1"
    assert doc["harness_overhead"] == figures["training_overhead"]
    assert set(doc["learner_fraction_of_floor"]) == {"sb3_128x128", "sbx_128x128", "default"}
    assert doc["default_backend"] in ("sb3", "sbx")
    assert (
        doc["learner_fraction_of_floor"]["default"]
        == doc["learner_fraction_of_floor"][f"{doc['default_backend']}_128x128"]
    )
    assert set(doc["mini_sweep_vs_floor"]) == {
        "sb3",
        "given",
    }  # the smoke's tiny sweep (pinned to sb3), --sweep-seconds
    assert all(_finite_positive(v) for v in doc["mini_sweep_vs_floor"].values())
    record = doc["mini_sweep"]["sb3"]
    assert (record["configs"], record["windows"], record["tasks"], record["steps"]) == (2, 1, 2, 48)
    assert record["members_completed"] == 2 and record["trained_on"] == ["sb3"]
    assert 0 <= record["idle_share"] <= 1


def test_only_runs_the_named_groups(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--only", "env,load", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["group_seconds"]) == {"env,peers", "load"}
    assert set(doc["figures"]) == {"env_steps_per_second", "sample_load_seconds"}
    assert doc["floor"] == {} and doc["mini_sweep_vs_floor"] == {}


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


# ------------------------------------------------------------------------------------------ no process needed


class _Agent:
    def __init__(self, backend: str) -> None:
        self.agent = type("A", (), {"backend": backend})()


@pytest.mark.parametrize(("setting", "expected"), [("auto", "sbx"), ("sb3", "sb3"), ("sbx", "sbx")])
def test_default_backend_asks_the_harness(monkeypatch: pytest.MonkeyPatch, setting: str, expected: str) -> None:
    """auto -> the faster learner measured at [128,128]; a pinned default -> that one, however fast."""
    from backend.config import models
    from benchmarks import groups

    monkeypatch.setattr(models, "Config", lambda: _Agent(setting))
    res = groups.Results(
        figures={"sb3_steps_per_second_128x128": 100.0, "sbx_steps_per_second_128x128": 150.0},
        floors={"128x128": {"floor_steps_per_second": 250.0}},
    )
    groups._default_backend(res)
    groups.fractions_of_floor(res)
    assert res.default_backend == {"setting": setting, "backend": expected}
    assert res.figures["learner_fraction_of_floor_sb3_128x128"] == 0.4
    assert res.figures["learner_fraction_of_floor_sbx_128x128"] == 0.6
    assert (
        res.figures["learner_fraction_of_floor_default"] == res.figures[f"learner_fraction_of_floor_{expected}_128x128"]
    )


def test_the_floor_measured_again_keeps_the_faster_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow first sample (a busy neighbour) must not flatter the fractions: the faster of the two counts."""
    from benchmarks import groups

    common = {"step_gflop": 0.35, "matmul_gflops": {"numpy": 90.0}}
    res = groups.Results(floors={"128x128": {**common, "floor_steps_per_second": 200.0, "floor_step_seconds": 0.005}})
    again = {"128x128": {**common, "floor_steps_per_second": 250.0, "floor_step_seconds": 0.004}}
    monkeypatch.setattr(groups, "measure_floors", lambda size: again)
    res.figures["sbx_steps_per_second_128x128"] = 150.0
    groups.floor_again({}, res)
    groups.fractions_of_floor(res)
    floor = res.floors["128x128"]
    assert floor["floor_steps_per_second"] == 250.0 and floor["samples_steps_per_second"] == [200.0, 250.0]
    assert floor["spread"] == 0.2 and res.figures["learner_fraction_of_floor_sbx_128x128"] == 0.6
    assert "samples 200.0 and 250.0" in groups.floor_line("128x128", floor)


def test_the_real_mini_sweep_and_its_floor_multiple() -> None:
    from benchmarks import bench_mini_sweep as mini

    real = mini.REAL
    assert [p.name for p in real.config_paths()] == [f.name for f in sorted((ROOT / "tmp").glob("mini_config_v*.json"))]
    assert (real.configs, real.window_count(), real.workers, real.backend) == (5, 3, 2, None)
    assert real.steps_per_config() == [20_000] * 5  # the configs' own steps
    # 15 tasks × 20k steps × 6 ms / 2 workers = 900 s ideal; 1170 s wall = 1.3×
    record = {"seconds": 1170.0, "total_steps": 15 * 20_000, "workers": 2, "configs": 5, "members_completed": 5}
    assert mini.vs_floor(record, 0.006) == 1.3
    # a member that failed early makes the sweep short, not near its floor: no multiple, and a MISS
    assert mini.vs_floor({**record, "seconds": 300.0, "members_completed": 4}, 0.006) is None
    failed = mini.figures_of({**record, "backend": "auto", "idle_share": 0.1, "members_completed": 4})
    from benchmarks import run

    assert run.verdict("mini_sweep_auto_members_failed", failed["mini_sweep_auto_members_failed"]).startswith("MISS")
    assert mini.SMOKE.window_count() == 1 and mini.SMOKE.steps_per_config() == [48, 48]


def test_one_null_env() -> None:
    from benchmarks.backends import EPISODE_BARS, OBS_SIZE, null_env

    env = null_env()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_SIZE,) and env.action_space.shape == (1,)
    for t in range(1, EPISODE_BARS + 1):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert reward == 0.0 and not terminated and truncated == (t == EPISODE_BARS)
    assert null_env(7, 2).observation_space.shape == (7,) and null_env(7, 2).action_space.shape == (2,)


def test_targets_by_name_and_by_pattern() -> None:
    from benchmarks import run

    assert run.verdict("env_steps_per_second", 200_000.0).startswith("PASS")
    assert run.verdict("mini_sweep_vs_floor_auto", 1.2).startswith("PASS")  # the configs' own backend, any name
    assert run.verdict("mini_sweep_vs_floor_sbx", 1.4).startswith("MISS")
    assert run.verdict("mini_sweep_auto_seconds", 901.0).startswith("MISS")
    assert run.verdict("mini_sweep_auto_idle_share", 0.5) == ""
    assert run.verdict("learner_fraction_of_floor_default", None).startswith("n/a")
