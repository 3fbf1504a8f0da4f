"""Benchmark suite: figures and ratios measured side by side in one run (median of repeats).

    python benchmarks/run.py --quick --out /tmp/b.json     # a few minutes on 2 cores
    python benchmarks/run.py --out benchmarks/latest.json  # longer, steadier

Figures (targets in TARGETS; ratios hold on any machine):

* env_steps_per_second     raw step() throughput of our env (lookback 32, all default features,
                           random actions, one core)
* env_vs_gym_trading_env   ours / Gym-Trading-Env on the same bars (optional dependency)
* env_vs_gym_anytrading    ours / gym-anytrading on the same bars (optional dependency)
* training_overhead        CPU time per step of the harness's SAC training (our env with frozen
                           normalisation, callbacks, TensorBoard, saving the bundle) / bare SAC.learn
                           on a null env with the same spaces and hyperparameters
* dry_run_seconds          wall time of the dry-run command on tmp/mini_windows_multi.json
* sweep_speedup_2_workers  1-worker time / 2-worker time for 4 equal sweep members
* replay_bars_per_second   deterministic replay throughput of a saved agent
* sample_load_seconds      load + validate + resample the bundled sample to 5m (cold)
* window_parallel_speedup_2_workers    `wf run --workers 1` time / `--workers 2` time on the 3-window mini run
                           (bound 1.5: two rounds of work), and the same on four equal windows
* production_steps_per_second_1_core   the production config's training speed, and a projection table
                           (windows × 200k steps × workers → hours, locally and on Ray)
* sbx_vs_sb3_steps_per_second_<net>    SBX (JAX) / SB3 (torch) SAC steps per second, one core, side by side
* mini_sweep_<backend>_seconds         `--sweep sbx|sb3`: the seed's full mini sweep (long), workers' idle share
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

TARGETS = {
    "env_steps_per_second": (">=", 100_000),
    "env_vs_gym_trading_env": (">=", 1.5),
    "training_overhead": ("<=", 1.03),
    "dry_run_seconds": ("<=", 1.0),
    "sweep_speedup_2_workers": (">=", 1.8),
    "window_parallel_speedup_2_workers": (">=", 1.8),
    "window_parallel_speedup_2_workers_4_windows": (">=", 1.8),
    "sbx_vs_sb3_steps_per_second_128x128": (">=", 1.5),
    "mini_sweep_sbx_seconds": ("<=", 900),
    "mini_sweep_sb3_seconds": ("<=", 900),
    "replay_bars_per_second": (">=", 5_000),
}


def median_of(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


# ------------------------------------------------------------------------------------------ env


def _market():
    from backend.config.models import DataConfig, EnvConfig
    from backend.core.intervals import INTERVAL_MINUTES
    from backend.data.loader import load_bars
    from backend.features.builtin import MarketArrays, compute_features

    bars = load_bars(DataConfig(interval="5m"))
    market = MarketArrays.from_bars(bars.frame, bars.session_open, bars.session_close, INTERVAL_MINUTES["5m"])
    return bars, market, compute_features(market, EnvConfig().features)


def bench_env(market, features, steps: int, repeats: int) -> float:
    from backend.config.models import EnvConfig
    from backend.envs.intraday_env import IntradayTradingEnv

    span = (1_000, 41_000)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 1)).astype(np.float32)

    def once() -> float:
        env = IntradayTradingEnv(market, features, span, EnvConfig(lookback=32))
        env.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            _, _, done, _, _ = env.step(a)
            if done:
                env.reset()
        return steps / (time.perf_counter() - t0)

    return median_of(once, repeats)


def _discrete_steps_per_second(make, actions: np.ndarray) -> float:
    """Random-action step() throughput of a peer env with a discrete action space."""
    env = make()
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        _, _, done, truncated, _ = env.step(int(a))
        if done or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - t0)


def bench_gym_trading_env(bars, features, steps: int, repeats: int) -> float | None:
    try:
        import gym_trading_env  # noqa: F401
        from gym_trading_env.environments import TradingEnv
    except ImportError:
        return None
    from backend.config.models import EnvConfig

    df = bars.frame.iloc[1_000:41_000].copy()
    df.index = df.index.tz_localize(None)  # it reads index.values every step; keep that warning-free
    for j, name in enumerate(EnvConfig().features):
        df[f"feature_{name}"] = features[1_000:41_000, j]
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, steps)

    def make():
        return TradingEnv(df=df, positions=[-1, 0, 1], windows=32, verbose=0, initial_position=0, trading_fees=0.0001)

    return median_of(lambda: _discrete_steps_per_second(make, actions), repeats)


def bench_gym_anytrading(bars, steps: int, repeats: int) -> float | None:
    try:
        from gym_anytrading.envs import StocksEnv
    except ImportError:
        return None
    df = bars.frame.iloc[1_000:41_000].rename(columns=str.capitalize)
    actions = np.random.default_rng(0).integers(0, 2, steps)

    return median_of(
        lambda: _discrete_steps_per_second(
            lambda: StocksEnv(df=df, window_size=32, frame_bound=(32, len(df))), actions
        ),
        repeats,
    )


# ------------------------------------------------------------------------------------------ training


def bench_training_overhead(steps: int, repeats: int) -> dict[str, float]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv

    from backend.features.builtin import compute_features
    from backend.run import driver as pipeline
    from backend.training.algorithms import model_kwargs
    from backend.training.trainer import train_window

    def sac_kwargs(cfg):
        return model_kwargs(cfg)[0]

    torch.set_num_threads(1)
    s = pipeline.setup(
        pipeline.RunOptions(
            config=str(ROOT / "tmp" / "mini_config_v1_default.json"),
            windows=str(ROOT / "tmp" / "mini_window.json"),
            sets=[f"training.total_timesteps={steps}", f"sac.learning_starts={min(100, steps // 2)}"],
        )
    )
    cfg = s.cfg
    feats = compute_features(s.market, cfg.env.features)
    obs_dim = cfg.env.lookback * feats.shape[1] + 3

    class NullEnv(gym.Env):
        """Same spaces, constant observations, sessions of 78 steps; no work at all."""

        def __init__(self) -> None:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
            self._obs = np.zeros(obs_dim, np.float32)
            self._t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self._t = 0
            return self._obs.copy(), {}

        def step(self, action):
            self._t += 1
            return self._obs.copy(), 0.0, self._t >= 77, False, {}

    # CPU time of this process (torch uses one thread): steadier than wall time on a shared VM
    def harness() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            train_window(
                cfg,
                s.market,
                feats,
                s.windows[0],
                out_dir=Path(tmp),
                tb_dir=Path(tmp) / "tb",
                data_hash="bench",
                provenance={},
            )
            return (time.process_time() - t0) / steps

    def bare() -> float:
        model = SAC(
            "MlpPolicy", DummyVecEnv([NullEnv]), seed=cfg.training.seed, device="cpu", verbose=0, **sac_kwargs(cfg)
        )
        model.set_logger(configure(None, []))
        t0 = time.process_time()
        model.learn(total_timesteps=steps)
        return (time.process_time() - t0) / steps

    warm = SAC("MlpPolicy", DummyVecEnv([NullEnv]), device="cpu", verbose=0, **sac_kwargs(cfg))  # one-time imports
    warm.learn(total_timesteps=min(200, steps))
    pairs = [(harness(), bare()) for _ in range(repeats)]
    return {
        "training_overhead": statistics.median(h / b for h, b in pairs),
        "training_harness_steps_per_second": statistics.median(1 / h for h, _ in pairs),
        "training_bare_steps_per_second": statistics.median(1 / b for _, b in pairs),
        "training_overhead_min": min(h / b for h, b in pairs),
        "training_overhead_max": max(h / b for h, b in pairs),
    }


# ------------------------------------------------------------------------------------------ commands


def bench_dry_run(repeats: int) -> float:
    cmd = [
        sys.executable,
        str(ROOT / "backend" / "scripts" / "run_walk_forward.py"),
        "--symbol",
        "SPY",
        "--source",
        "sample",
        "--windows",
        str(ROOT / "tmp" / "mini_windows_multi.json"),
        "--dry-run",
    ]

    def once() -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - t0

    once()  # warm the file cache
    return median_of(once, repeats)


def bench_sweep(timesteps: int, seeds: int = 4, backend: str | None = None) -> dict[str, float]:
    def sweep(workers: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "backend.cli",
                "sweep",
                "--configs",
                str(ROOT / "tmp" / "mini_config_v1_default.json"),
                "--seeds",
                str(seeds),
                "--windows",
                str(ROOT / "tmp" / "mini_window.json"),
                "--timesteps",
                str(timesteps),
                "--set",
                f"sac.learning_starts={min(1000, timesteps // 3)}",  # short smoke sizes must still learn
                "--workers",
                str(workers),
                *(["--set", f"agent.backend={backend}"] if backend else []),
                "--output-dir",
                tmp,
                "--quiet",
                "--no-report",
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            return time.perf_counter() - t0

    one, two = sweep(1), sweep(2)
    return {"sweep_1_worker_seconds": one, "sweep_2_workers_seconds": two, "sweep_speedup_2_workers": one / two}


def bench_replay(repeats: int, train_steps: int = 300) -> float:
    """Deterministic replay throughput of a saved agent through the real replay path (agent only, 1x costs)."""
    import dataclasses

    from backend.evaluation.replay import replay_agent
    from backend.features.builtin import compute_features
    from backend.run import driver as pipeline
    from backend.training.trainer import train_window

    s = pipeline.setup(
        pipeline.RunOptions(
            config=str(ROOT / "tmp" / "mini_config_v1_default.json"),
            windows=str(ROOT / "tmp" / "mini_window.json"),
            sets=[f"training.total_timesteps={train_steps}", f"sac.learning_starts={min(100, train_steps // 2)}"],
        )
    )
    feats = compute_features(s.market, s.cfg.env.features)
    w = s.windows[0]
    long_test = dataclasses.replace(w, test_end=min(w.test_start + 5_000, len(s.market)))  # ~64 sessions of 5m bars
    with tempfile.TemporaryDirectory() as tmp:
        train_window(s.cfg, s.market, feats, w, out_dir=Path(tmp), tb_dir=None, data_hash="bench", provenance={})

        def once() -> float:
            t0 = time.perf_counter()
            rep = replay_agent(Path(tmp), s.cfg, s.market, feats, long_test, cost_scales=(1.0,))
            return len(rep.trajectory.returns) / (time.perf_counter() - t0)

        return median_of(once, repeats)


# ------------------------------------------------------------------------------------------ window tasks


def task_seconds(summary: dict) -> float:
    """Seconds the run's window tasks were busy (summary stages window_<id>; Window Setup excluded)."""
    return sum(v["seconds"] for k, v in summary["stages"].items() if k.startswith("window_") and k != "window_setup")


def _wf_run(
    windows: Path, workers: int, timesteps: int, config: Path, executor: str = "local", backend: str | None = None
) -> dict[str, float]:
    """One `wf run` in a subprocess: wall seconds and the busy seconds of its window tasks."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "backend.cli", "run", "--config", str(config), "--windows", str(windows)]
        cmd += ["--timesteps", str(timesteps), "--workers", str(workers), "--executor", executor]
        cmd += ["--set", f"sac.learning_starts={min(1000, timesteps // 3)}"]  # short smoke sizes must still learn
        cmd += ["--set", f"agent.backend={backend}"] if backend else []
        cmd += ["--output-dir", str(Path(tmp) / "run"), "--quiet", "--no-report"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        busy = sum(
            v["seconds"] for k, v in summary["stages"].items() if k.startswith("window_") and k != "window_setup"
        )
        return {"wall": wall, "busy": busy}


def four_windows(folder: Path) -> Path:
    """Four equal mini windows (17 train sessions, 3 test sessions each) on the sample."""
    spans = [
        ("2019-04-01", "2019-04-23", "2019-04-24", "2019-04-26"),
        ("2019-04-29", "2019-05-21", "2019-05-22", "2019-05-24"),
        ("2019-05-28", "2019-06-19", "2019-06-20", "2019-06-24"),
        ("2019-06-25", "2019-07-18", "2019-07-19", "2019-07-23"),
    ]
    keys = ("train_start", "train_end", "test_start", "test_end")
    path = folder / "four_windows.json"
    path.write_text(json.dumps([dict(zip(keys, s, strict=True)) for s in spans]))
    return path


def bench_windows(timesteps: int, backend: str | None = None, three_windows: bool = True) -> dict[str, float | None]:
    """`wf run --workers 2` vs `--workers 1`: the 3-window mini run and four equal windows, side by side.

    Three equal windows on two workers cannot beat a speedup of 1.5 (two rounds of work); four can reach 2.
    ``three_windows=False`` (the smoke) runs only the four (the same code path; its 3-window figures are None).
    """
    config = ROOT / "tmp" / "mini_config_v1_default.json"
    three = ROOT / "tmp" / "mini_windows_multi.json"
    one3: dict[str, float | None] = {"wall": None}
    two3: dict[str, float | None] = {"wall": None}
    with tempfile.TemporaryDirectory() as tmp:
        four = four_windows(Path(tmp))
        if three_windows:
            one3 = dict(_wf_run(three, 1, timesteps, config, backend=backend))
            two3 = dict(_wf_run(three, 2, timesteps, config, backend=backend))
        one4 = _wf_run(four, 1, timesteps, config, backend=backend)
        two4 = _wf_run(four, 2, timesteps, config, backend=backend)
    w1, w2 = one3["wall"], two3["wall"]
    return {
        "window_run_3w_1_worker_seconds": w1,
        "window_run_3w_2_workers_seconds": w2,
        "window_parallel_speedup_2_workers": w1 / w2 if w1 and w2 else None,
        "window_parallel_time_ratio_2_workers": w2 / w1 if w1 and w2 else None,
        "window_parallel_speedup_bound_3_windows": 1.5,
        "window_parallel_speedup_2_workers_4_windows": one4["wall"] / two4["wall"],
        "window_parallel_idle_share_4_windows": 1.0 - two4["busy"] / (2 * two4["wall"]),
    }


def bench_mini_sweep(backend: str) -> dict[str, float]:
    """The seed's mini sweep (5 mini configs × 3 windows × 20k steps, --workers 2): wall time and worker idle share."""
    import glob

    configs = sorted(glob.glob(str(ROOT / "tmp" / "mini_config_*.json")))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "backend.cli", "sweep", "--configs", *configs]
        cmd += ["--windows", str(ROOT / "tmp" / "mini_windows_multi.json"), "--workers", "2"]
        cmd += ["--set", f"agent.backend={backend}", "--output-dir", str(Path(tmp) / "sweep"), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rows = json.loads((Path(tmp) / "sweep" / "sweep.json").read_text())["members"]
        busy = 0.0
        for r in rows:
            summary = json.loads((Path(tmp) / "sweep" / r["name"] / "summary.json").read_text())
            busy += sum(
                v["seconds"] for k, v in summary["stages"].items() if k.startswith("window_") and k != "window_setup"
            )
        completed = sum(r["status"] == "completed" for r in rows)
        print(proc.stdout[-3000:])
    return {
        f"mini_sweep_{backend}_seconds": wall,
        f"mini_sweep_{backend}_members_completed": completed,
        f"mini_sweep_{backend}_idle_share": 1.0 - busy / (2 * wall),
    }


def bench_projection(steps: int) -> dict[str, float]:
    """Training speed of the production config ([256, 256], batch 256) on one core → hours for big walk-forwards."""
    from backend.features.builtin import compute_features
    from backend.run import driver as pipeline
    from backend.training.trainer import train_window

    s = pipeline.setup(
        pipeline.RunOptions(
            config=str(ROOT / "configs" / "sac_intraday.json"),
            windows=str(ROOT / "tmp" / "mini_window.json"),
            sets=[
                f"training.total_timesteps={steps + min(200, 4 * steps)}",
                f"sac.learning_starts={min(200, 4 * steps)}",
                "training.tensorboard=false",
            ],
        )
    )
    feats = compute_features(s.market, s.cfg.env.features)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train_window(
            s.cfg, s.market, feats, s.windows[0], out_dir=Path(tmp), tb_dir=None, data_hash="bench", provenance={}
        )
        sps = result.timesteps / result.seconds
        del t0
    return {"production_steps_per_second_1_core": sps}


def projection_table(sps: float, per_window_steps: int = 200_000) -> str:
    rows = ["windows  workers  where                      hours"]
    for windows in (1, 24, 88):
        for workers, where in (
            (1, "this machine, 1 worker"),
            (2, "this machine, 2 workers"),
            (16, "Ray, 16 CPUs"),
            (64, "Ray, 64 CPUs"),
        ):
            rounds = -(-windows // workers)
            rows.append(f"{windows:>7}  {workers:>7}  {where:<25} {rounds * per_window_steps / sps / 3600:>6.1f}")
    return "\n".join(rows)


def bench_sample_load(repeats: int) -> float:
    from backend.config.models import DataConfig
    from backend.data import sources
    from backend.data.loader import load_bars

    def once() -> float:
        sources._read_sample.cache_clear()
        t0 = time.perf_counter()
        load_bars(DataConfig(interval="5m"))
        return time.perf_counter() - t0

    return median_of(once, repeats)


# ------------------------------------------------------------------------------------------ main


def verdict(name: str, value: float | None) -> str:
    if name not in TARGETS:
        return ""
    if value is None:
        return "n/a (optional dependency missing, or not run in this mode)"
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{'PASS' if ok else 'MISS'} (target {op} {target:,})"


GROUPS = (
    "floor",
    "env",
    "peers",
    "training",
    "dry_run",
    "sweep",
    "replay",
    "load",
    "windows",
    "projection",
    "backends",
)

# steps / repeats per mode: smoke = seconds, every group on its smallest inputs (the test suite runs it)
SIZES = {
    "smoke": {  # seconds per group: tiny steps, one repeat (the figures mean nothing)
        "reps": 1,
        "env": 500,
        "peers": 200,
        "training": (64, 1),
        "sweep": 48,
        "sweep_seeds": 2,
        "subprocess_backend": "sb3",  # the wf subprocesses of sweep/windows: no JAX start-up (backends covers sbx)
        "three_windows": False,
        "replay_train": 64,
        "windows": 48,
        "projection": 16,
        "backends": (32, 1, 16),
        "floor": (1, 3),
        "floor_nets": ((128, 128),),
    },
    "quick": {
        "reps": 3,
        "env": 50_000,
        "peers": 5_000,
        "training": (1_500, 3),
        "sweep": 1_500,
        "windows": 2_000,
        "projection": 500,
        "backends": (800, 1, 300),
        "floor": (3, 50),
    },
    "full": {
        "reps": 5,
        "env": 200_000,
        "peers": 20_000,
        "training": (5_000, 5),
        "sweep": 5_000,
        "windows": 20_000,
        "projection": 2_000,
        "backends": (3000, 2, 300),
        "floor": (5, 100),
    },
}

# mini sweep: five mini configs × 3 windows × 20k steps, --workers 2 (issue 25)
MINI_SWEEP = {"tasks": 15, "steps": 20_000, "workers": 2}


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer steps and repeats (a few minutes on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="every group on its smallest inputs (figures meaningless)")
    parser.add_argument("--out", type=str, help="write the figures as JSON")
    parser.add_argument("--only", type=str, help="comma-separated groups: " + ",".join(GROUPS))
    parser.add_argument(
        "--sweep",
        action="append",
        choices=["sb3", "sbx"],
        help="also run the seed's full mini sweep on this backend (long: 10-25 minutes each)",
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=None, help="a measured mini-sweep wall time, for mini_sweep_vs_floor"
    )
    parser.add_argument("--window-steps", type=int, default=None, help="steps per window of the windows group")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(GROUPS)
        if unknown:
            parser.error(f"--only: unknown group(s) {sorted(unknown)}; choose from {','.join(GROUPS)}")
    return args


def _mode(args: argparse.Namespace) -> str:
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def _env_groups(groups: set[str], size: dict, figures: dict) -> None:
    bars, market, feats = _market()
    ours = bench_env(market, feats, size["env"], size["reps"])
    if "env" in groups:
        figures["env_steps_per_second"] = ours
    if "peers" in groups:
        gte = bench_gym_trading_env(bars, feats, size["peers"], size["reps"])
        gat = bench_gym_anytrading(bars, size["peers"], size["reps"])
        figures["gym_trading_env_steps_per_second"] = gte
        figures["gym_anytrading_steps_per_second"] = gat
        figures["env_vs_gym_trading_env"] = ours / gte if gte else None
        figures["env_vs_gym_anytrading"] = ours / gat if gat else None


def _floor_group(size: dict) -> dict:
    from benchmarks.backends import BATCH, OBS_SIZE
    from benchmarks.floor import floor_report

    repeats, inner = size["floor"]
    return {
        f"{a}x{b}": floor_report(
            obs_dim=OBS_SIZE, act_dim=1, net_arch=(a, b), batch=BATCH, repeats=repeats, inner=inner
        )
        for a, b in size.get("floor_nets", ((64, 64), (128, 128), (256, 256)))
    }


def _backends_group(size: dict, figures: dict, floors: dict, smoke: bool) -> None:
    from benchmarks.backends import measure_backends
    from benchmarks.floor import fraction_of_floor

    steps, repeats, warmup = size["backends"]
    archs = ((128, 128),) if smoke else ((64, 64), (128, 128), (256, 256))
    for arch, row in measure_backends(archs=archs, steps=steps, warmup=warmup, repeats=repeats).items():
        for backend in ("sb3", "sbx"):
            figures[f"{backend}_steps_per_second_{arch}"] = row[f"{backend}_steps_per_second"]
            if arch in floors:
                figures[f"learner_fraction_of_floor_{backend}_{arch}"] = fraction_of_floor(
                    row[f"{backend}_steps_per_second"], floors[arch]["floor_steps_per_second"]
                )
        figures[f"sbx_vs_sb3_steps_per_second_{arch}"] = row["sbx_vs_sb3_steps_per_second"]


def _mini_sweep_vs_floor(figures: dict, floors: dict, given: float | None) -> dict[str, float]:
    """Each measured (or given) mini-sweep wall time as a multiple of its floor at [128,128]."""
    from benchmarks.floor import sweep_vs_floor

    if "128x128" not in floors:
        return {}
    walls = {
        k.removeprefix("mini_sweep_").removesuffix("_seconds"): v
        for k, v in figures.items()
        if k.startswith("mini_sweep_") and k.endswith("_seconds")
    }
    if given is not None:
        walls["given"] = given
    step = floors["128x128"]["floor_step_seconds"]
    return {
        f"mini_sweep_vs_floor_{name}": sweep_vs_floor(wall_seconds=wall, floor_step_seconds=step, **MINI_SWEEP)
        for name, wall in walls.items()
    }


GROUP_SECONDS: dict[str, float] = {}  # wall seconds of each group of the last run_groups (in the --out JSON)


def _timed(name: str, fn, *args):
    t0 = time.perf_counter()
    try:
        return fn(*args)
    finally:
        GROUP_SECONDS[name] = round(time.perf_counter() - t0, 1)


def run_groups(groups: set[str], args: argparse.Namespace) -> tuple[dict, dict, str | None]:
    """(figures, floors, projection table) of the selected groups, in the order of GROUPS."""
    size = SIZES[_mode(args)]
    GROUP_SECONDS.clear()
    figures: dict[str, float | None] = {}
    floors = _timed("floor", _floor_group, size) if "floor" in groups else {}
    if groups & {"env", "peers"}:
        _timed("env,peers", _env_groups, groups, size, figures)
    if "training" in groups:
        figures.update(_timed("training", bench_training_overhead, *size["training"]))
    if "dry_run" in groups:
        figures["dry_run_seconds"] = _timed("dry_run", bench_dry_run, size["reps"])
    if "sweep" in groups:
        sweep_args = (size["sweep"], size.get("sweep_seeds", 4), size.get("subprocess_backend"))
        figures.update(_timed("sweep", bench_sweep, *sweep_args))
    if "replay" in groups:
        figures["replay_bars_per_second"] = _timed("replay", bench_replay, size["reps"], size.get("replay_train", 300))
    if "load" in groups:
        figures["sample_load_seconds"] = _timed("load", bench_sample_load, size["reps"])
    if "windows" in groups:
        window_args = (
            args.window_steps or size["windows"],
            size.get("subprocess_backend"),
            size.get("three_windows", True),
        )
        figures.update(_timed("windows", bench_windows, *window_args))
    table = None
    if "projection" in groups:
        figures.update(_timed("projection", bench_projection, size["projection"]))
        table = projection_table(figures["production_steps_per_second_1_core"])
    if "backends" in groups:
        _timed("backends", _backends_group, size, figures, floors, args.smoke)
    for backend in args.sweep or []:
        figures.update(_timed(f"mini_sweep_{backend}", bench_mini_sweep, backend))
    figures.update(_mini_sweep_vs_floor(figures, floors, args.sweep_seconds))
    return figures, floors, table


def _print(figures: dict, floors: dict, table: str | None) -> None:
    for arch, f in floors.items():
        print(
            f"floor {arch}: {f['step_gflop']} GFLOP/step, matmul GFLOP/s {f['matmul_gflops']}, "
            f"floor {f['floor_steps_per_second']:,.1f} steps/s"
        )
    width = max((len(k) for k in figures), default=0)
    for name, value in figures.items():
        shown = "n/a" if value is None else (f"{value:,.3f}" if value < 100 else f"{value:,.0f}")
        print(f"{name:<{width}}  {shown:>14}  {verdict(name, value)}")
    if table:
        print("\nProjection for the production config (200,000 steps a window, measured steps/s on one core):")
        print(table)


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.floor import machine

    args = _parse_args(argv)
    groups = set(args.only.split(",")) if args.only else set(GROUPS)
    started = time.perf_counter()
    host = machine()  # measured first: the figures' provenance (load average included)
    figures, floors, table = run_groups(groups, args)
    _print(figures, floors, table)
    doc = {
        "figures": figures,
        "floor": floors,
        "learner_fraction_of_floor": {
            k.removeprefix("learner_fraction_of_floor_"): v
            for k, v in figures.items()
            if k.startswith("learner_fraction_of_floor_")
        },
        "mini_sweep_vs_floor": {
            k.removeprefix("mini_sweep_vs_floor_"): v
            for k, v in figures.items()
            if k.startswith("mini_sweep_vs_floor_")
        },
        "harness_overhead": figures.get("training_overhead"),
        "group_seconds": dict(GROUP_SECONDS),
        "projection": table,
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "mode": _mode(args),
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": host,
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
