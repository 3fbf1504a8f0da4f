"""Replay a saved agent on a window's unseen test span, against baselines — the replay half of a window task.

The walk-forward run, `wf eval`, `wf audit` and `wf tune` all replay through :func:`replay_agent`,
so a replay of an unchanged bundle on the same data reproduces the run's metrics exactly.
Nothing here unpickles anything from a bundle: the agent is rebuilt from the config and its
weights are loaded as tensors only; the normalisation statistics come from a plain ``.npz``
(see :mod:`backend.training.bundle`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config.models import Config
from backend.core.jsonio import write_atomic, write_json
from backend.core.stages import fmt_num, fmt_pct
from backend.envs.intraday_env import IntradayTradingEnv
from backend.evaluation import baselines as bl
from backend.evaluation.diagnostics import diagnose
from backend.evaluation.metrics import relative_metrics, trade_records
from backend.evaluation.simulate import Trajectory, run_policy
from backend.features.builtin import MarketArrays
from backend.training import bundle
from backend.training.trainer import set_threads
from backend.walkforward.windows import Window

COST_SCALES = (0.0, 1.0, 2.0)


@dataclass
class AgentReplay:
    """The agent's trajectories on the test span, one per cost scale, and what was loaded."""

    runs: dict[float, Trajectory]
    normalisation: tuple[np.ndarray, np.ndarray] | None
    clip_obs: float
    meta: dict[str, Any]

    @property
    def trajectory(self) -> Trajectory:
        return self.runs[1.0]


@dataclass
class ReplayResult:
    evaluation: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    beats: dict[str, bool | None]
    cost_sensitivity: dict[str, dict[str, Any]]
    diagnostics: dict[str, Any]
    benchmark: dict[str, Any] | None
    trajectory: Trajectory
    baseline_trajectories: dict[str, Trajectory]


def test_env_factory(cfg: Config, market: MarketArrays, features: np.ndarray, window: Window, norm, clip_obs: float):
    """The replay env of a window's test span: sequential sessions, account equity carried across them."""
    span = (window.test_start, window.test_end)

    def make(scale: float = 1.0) -> IntradayTradingEnv:
        return IntradayTradingEnv(
            market, features, span, cfg.env, "sequential", cost_scale=scale, normalisation=norm, clip_obs=clip_obs
        )

    return make


def replay_agent(
    bundle_dir: Path,
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    *,
    cost_scales: tuple[float, ...] = COST_SCALES,
    expected_hashes: dict[str, str] | None = None,
    record_observations: list | None = None,
) -> AgentReplay:
    """Load the bundle safely and play the agent over ``window``'s test span at each cost scale.

    ``expected_hashes`` (from a run's summary) must match the bundle's files too.
    ``record_observations``, if given, receives (bar, observation) pairs of the 1× run (the audit).
    """
    cfg = bundle.replay_config(cfg, bundle.read_metadata(bundle_dir), bundle_dir)  # auto: the backend that trained
    set_threads(cfg)
    agent, norm, clip_obs, meta = bundle.load_agent(bundle_dir, cfg, market, features, window, expected_hashes)
    make = test_env_factory(cfg, market, features, window, norm, clip_obs)
    act = agent.policy(cfg.evaluation.deterministic)
    runs: dict[float, Trajectory] = {}
    for scale in cost_scales:
        agent.seed_replay(cfg.evaluation.seed)  # stochastic replays repeat too
        policy = act
        if record_observations is not None and scale == 1.0:
            policy = _recording(act, record_observations)
        runs[scale] = run_policy(make(scale), policy, market.session_id)
    return AgentReplay(runs, norm, clip_obs, meta)


def _recording(act, sink: list):
    def policy(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        sink.append((env.current_bar, obs.copy()))
        return act(obs, env)

    return policy


def replay_bundle(
    bundle_dir: Path,
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    periods_per_year: float,
    *,
    benchmark: Any = None,
    expected_hashes: dict[str, str] | None = None,
) -> ReplayResult:
    """Replay the agent of ``bundle_dir`` on ``window``'s test span against the baselines (and a benchmark)."""
    rep = replay_agent(
        bundle_dir, cfg, market, features, window, cost_scales=COST_SCALES, expected_hashes=expected_hashes
    )
    make = test_env_factory(cfg, market, features, window, rep.normalisation, rep.clip_obs)
    capital = cfg.env.initial_capital
    agent = rep.trajectory
    evaluation = {"deterministic": cfg.evaluation.deterministic, **agent.metrics(periods_per_year, capital)}
    base = bl.run_baselines(make, market, agent, periods_per_year, capital, cfg.evaluation.seed)
    trajectories = {k: v.pop("_trajectory") for k, v in base.items()}
    bench_doc = None
    if benchmark is not None and benchmark.close is not None:
        bench_market = dataclasses.replace(market, close=benchmark.close)
        bench_env = IntradayTradingEnv(
            bench_market,
            features,
            (window.test_start, window.test_end),
            cfg.env,
            "sequential",
            normalisation=rep.normalisation,
        )
        traj = run_policy(bench_env, bl._constant(cfg.env.max_position), market.session_id)
        trajectories["benchmark"] = traj
        bench_doc = {
            "symbol": benchmark.symbol,
            "buy_and_hold": traj.metrics(periods_per_year, capital),
            "relative": relative_metrics(agent.returns, traj.returns, periods_per_year),
        }
    return ReplayResult(
        evaluation=evaluation,
        baselines=base,
        beats={name: bl.beats(evaluation, m) for name, m in base.items()},
        cost_sensitivity={f"{s:g}x": rep.runs[s].metrics(periods_per_year, capital) for s in COST_SCALES},
        diagnostics=diagnose(agent, cfg.env.max_position, evaluation["n_trades"]),
        benchmark=bench_doc,
        trajectory=agent,
        baseline_trajectories=trajectories,
    )


def evaluation_document(result: ReplayResult, window: Window, timestamps: np.ndarray, tz: str) -> dict[str, Any]:
    return {
        "window": window.describe(timestamps, tz),
        "evaluation": result.evaluation,
        "baselines": result.baselines,
        "beats": result.beats,
        "cost_sensitivity": result.cost_sensitivity,
        "diagnostics": result.diagnostics,
        "benchmark": result.benchmark,
    }


def _series(traj: Trajectory, prefix: str = "") -> dict[str, np.ndarray]:
    """The per-bar arrays the stitched aggregate and the trade ledger need (lossless)."""
    return {
        f"{prefix}return" if prefix else "net_return": traj.returns,
        f"{prefix}position": traj.positions,
        f"{prefix}held": traj.held,
        f"{prefix}cost": traj.costs,
        f"{prefix}trade_cost": traj.trade_costs,
        f"{prefix}traded": traj.traded,
    }


def equity_frame(result: ReplayResult, market: MarketArrays, tz: str, capital: float) -> pd.DataFrame:
    """equity.csv: one row per test bar, agent and buy-and-hold side by side (floats written losslessly)."""
    traj = result.trajectory
    lo, n = traj.start, len(traj.returns)
    stamps = pd.DatetimeIndex(market.timestamps[lo : lo + n], tz="UTC").tz_convert(tz)
    bh = result.baseline_trajectories["buy_and_hold"]
    frame = pd.DataFrame(
        {
            "timestamp": stamps.map(lambda t: t.isoformat()),
            "session": traj.session_id,
            "close": market.close[lo : lo + n],
            "action": traj.actions,
            **_series(traj),
            "equity": capital * np.cumprod(1.0 + traj.returns),
            **_series(bh, "buy_and_hold_"),
            "buy_and_hold_equity": capital * np.cumprod(1.0 + bh.returns),
        }
    )
    if "benchmark" in result.baseline_trajectories:
        frame["benchmark_equity"] = capital * np.cumprod(1.0 + result.baseline_trajectories["benchmark"].returns)
    return frame


def trades_frame(traj: Trajectory, market: MarketArrays, tz: str) -> pd.DataFrame:
    """trades.csv: one row per round trip; compounding its returns gives the equity curve's total return."""
    lo = traj.start
    cols = ["entry_time", "exit_time", "side", "bars", "entry_position", "return"]

    def stamp(i: int) -> str:
        return pd.Timestamp(int(market.timestamps[lo + i]), tz="UTC").tz_convert(tz).isoformat()

    rows = [
        {
            "entry_time": stamp(t["entry_bar"]),
            "exit_time": stamp(t["exit_bar"]),
            "side": "long" if t["side"] in (1, "long") else "short",
            "bars": t["bars"],
            "entry_position": t["entry_position"],
            "return": t["return"],
        }
        for t in trade_records(traj)
    ]
    return pd.DataFrame(rows, columns=cols)


def write_replay_files(
    out_dir: Path, result: ReplayResult, market: MarketArrays, tz: str, doc: dict[str, Any], capital: float
) -> None:
    """evaluation.json, equity.csv and trades.csv (each atomically; CSV floats round-trip exactly)."""
    equity = equity_frame(result, market, tz, capital)
    trades = trades_frame(result.trajectory, market, tz)
    write_json(out_dir / "evaluation.json", doc)
    write_atomic(out_dir / "equity.csv", lambda tmp: equity.to_csv(tmp, index=False))
    write_atomic(out_dir / "trades.csv", lambda tmp: trades.to_csv(tmp, index=False))


def read_series(path: Path) -> pd.DataFrame:
    """equity.csv back, bit for bit (written with shortest round-trip floats; pandas 3 parses them exactly)."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return pd.read_csv(path)
    return pd.read_csv(path, float_precision="round_trip")


def headline(evaluation: dict[str, Any]) -> str:
    return (
        f"Sharpe {fmt_num(evaluation.get('sharpe'))}, "
        f"return {fmt_pct(evaluation.get('total_return'))}, max DD {fmt_pct(evaluation.get('max_drawdown'))}, "
        f"{evaluation.get('n_trades', 0)} trades"
    )
