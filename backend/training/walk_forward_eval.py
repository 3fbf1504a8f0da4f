"""Replay a saved agent on its window's unseen test span, against baselines.

    python -m backend.training.walk_forward_eval --config <cfg> --model-path <run>/w01/model.zip \
        --windows tmp/mini_window.json [--window w01] [--source ...] [--stochastic] [--output-dir DIR] [--quiet]

The walk-forward run evaluates every window through :func:`replay_bundle` too, so a replay
of an unchanged bundle on the same data reproduces the run's metrics exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config import Config
from backend.envs.intraday_env import STATE_NAMES, IntradayTradingEnv
from backend.errors import EvaluationError
from backend.evaluation import baselines as bl
from backend.evaluation.diagnostics import diagnose
from backend.evaluation.metrics import relative_metrics, trades
from backend.evaluation.simulate import Trajectory, run_policy
from backend.features import MarketArrays
from backend.jsonio import write_atomic, write_json
from backend.training import bundle
from backend.training.trainer import feature_stats_from
from backend.windows import Window

COST_SCALES = (0.0, 1.0, 2.0)


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


def load_agent(bundle_dir: Path, cfg: Config, n_features: int, env_fn):
    """Verify the bundle (metadata, hashes) and load policy + frozen normalisation."""
    meta = bundle.read_metadata(bundle_dir)
    bundle.verify_files(bundle_dir, meta)
    bundle.check_compatible(meta, bundle.compatibility_fields(cfg, n_features, len(STATE_NAMES)), bundle_dir)
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    try:
        model = SAC.load(str(bundle_dir / bundle.MODEL_FILE), device="cpu")
    except Exception as e:
        raise EvaluationError(f"{bundle_dir / bundle.MODEL_FILE}: cannot load the model: {e}") from e
    normaliser = None
    if bundle.STATS_FILE in meta["files"]:
        try:
            normaliser = VecNormalize.load(str(bundle_dir / bundle.STATS_FILE), DummyVecEnv([env_fn]))
        except Exception as e:
            raise EvaluationError(f"{bundle_dir / bundle.STATS_FILE}: cannot load the statistics: {e}") from e
        normaliser.training = False
        normaliser.norm_reward = False
    return model, normaliser, meta


def fast_policy(model, deterministic: bool):
    """``model.predict`` for one observation without its per-call overhead (same actions, bit for bit).

    Run the actor under no_grad and map the squashed action to the action space with the
    policy's own ``unscale_action``, as ``predict`` does.
    """
    import torch

    policy = model.policy
    policy.set_training_mode(False)
    actor = policy.actor

    def act(obs: np.ndarray, env: IntradayTradingEnv) -> np.ndarray:
        with torch.no_grad():
            a = actor(torch.as_tensor(obs[None], dtype=torch.float32), deterministic=deterministic).numpy()
        return policy.unscale_action(a)[0]

    return act


def replay_bundle(
    bundle_dir: Path,
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    interval: str,
    benchmark: Any = None,
) -> ReplayResult:
    """Replay the agent of ``bundle_dir`` on ``window``'s test span (and a benchmark, if given)."""
    import torch
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(cfg.training.torch_threads)
    span = (window.test_start, window.test_end)

    model, normaliser, _ = load_agent(
        bundle_dir, cfg, features.shape[1], lambda: IntradayTradingEnv(market, features, span, cfg.env)
    )
    norm = feature_stats_from(normaliser, features.shape[1]) if normaliser is not None else None

    def env_fn(scale: float = 1.0) -> IntradayTradingEnv:
        return IntradayTradingEnv(
            market,
            features,
            span,
            cfg.env,
            "sequential",
            cost_scale=scale,
            normalisation=norm,
            clip_obs=normaliser.clip_obs if normaliser else 10.0,
        )

    deterministic = cfg.evaluation.deterministic
    policy = fast_policy(model, deterministic)

    capital = cfg.env.initial_capital
    runs: dict[float, Trajectory] = {}
    for scale in COST_SCALES:
        set_random_seed(cfg.evaluation.seed)  # stochastic replays repeat too
        runs[scale] = run_policy(env_fn(scale), policy, market.session_id)
    agent = runs[1.0]
    evaluation = {"deterministic": deterministic, **agent.metrics(interval, capital)}
    base = bl.run_baselines(env_fn, market, agent, interval, capital, cfg.evaluation.seed)
    trajectories = {k: v.pop("_trajectory") for k, v in base.items()}
    bench_doc = None
    if benchmark is not None and benchmark.close is not None:
        bench_market = dataclasses.replace(market, close=benchmark.close)
        bench_env = IntradayTradingEnv(bench_market, features, span, cfg.env, "sequential", normalisation=norm)
        traj = run_policy(bench_env, bl._constant(cfg.env.max_position), market.session_id)
        trajectories["benchmark"] = traj
        bench_doc = {
            "symbol": benchmark.symbol,
            "buy_and_hold": traj.metrics(interval, capital),
            "relative": relative_metrics(agent.returns, traj.returns, interval),
        }
    return ReplayResult(
        evaluation=evaluation,
        baselines=base,
        beats={name: bl.beats(evaluation, m) for name, m in base.items()},
        cost_sensitivity={f"{s:g}x": runs[s].metrics(interval, capital) for s in COST_SCALES},
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


def write_replay_files(
    out_dir: Path, result: ReplayResult, market: MarketArrays, tz: str, doc: dict[str, Any], capital: float
) -> None:
    """evaluation.json, equity.csv and trades.csv (each atomically)."""
    traj = result.trajectory
    lo = traj.start
    n = len(traj.returns)
    stamps = pd.DatetimeIndex(market.timestamps[lo : lo + n], tz="UTC").tz_convert(tz)
    bh = result.baseline_trajectories["buy_and_hold"]
    equity = pd.DataFrame(
        {
            "timestamp": stamps.map(lambda t: t.isoformat()),
            "close": market.close[lo : lo + n],
            "position": traj.positions,
            "action": traj.actions,
            "net_return": traj.returns,
            "cost": traj.costs,
            "traded": traj.traded,
            "equity": capital * np.cumprod(1.0 + traj.returns),
            "buy_and_hold_return": bh.returns,
            "buy_and_hold_position": bh.positions,
            "buy_and_hold_cost": bh.costs,
            "buy_and_hold_traded": bh.traded,
            "buy_and_hold_equity": capital * np.cumprod(1.0 + bh.returns),
        }
    )
    if "benchmark" in result.baseline_trajectories:
        equity["benchmark_equity"] = capital * np.cumprod(1.0 + result.baseline_trajectories["benchmark"].returns)
    rows = []
    for k, j, ret in trades(traj.positions, traj.returns):
        rows.append(
            {
                "entry_time": stamps[k].isoformat(),
                "exit_time": stamps[min(j + 1, n - 1)].isoformat(),
                "side": "long" if traj.positions[k] > 0 else "short",
                "bars": j - k + 1,
                "entry_position": traj.positions[k],
                "return": ret,
            }
        )
    trade_frame = pd.DataFrame(rows, columns=["entry_time", "exit_time", "side", "bars", "entry_position", "return"])
    write_json(out_dir / "evaluation.json", doc)
    write_atomic(out_dir / "equity.csv", lambda tmp: equity.to_csv(tmp, index=False, float_format="%.10g"))
    write_atomic(out_dir / "trades.csv", lambda tmp: trade_frame.to_csv(tmp, index=False, float_format="%.10g"))


def headline(evaluation: dict[str, Any]) -> str:
    from backend.stages import fmt_num, fmt_pct

    return (
        f"Sharpe {fmt_num(evaluation.get('sharpe'))}, "
        f"return {fmt_pct(evaluation.get('total_return'))}, max DD {fmt_pct(evaluation.get('max_drawdown'))}, "
        f"{evaluation.get('n_trades', 0)} trades"
    )


def main(argv: list[str] | None = None) -> None:
    from backend.cli import eval_command

    eval_command.main(args=argv, prog_name="python -m backend.training.walk_forward_eval")


if __name__ == "__main__":
    main()
