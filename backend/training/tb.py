"""TensorBoard extras beside SB3's own logger: evaluation scalars and the HParams table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from backend.config import Config

EVAL_KEYS = ("total_return", "sharpe", "sortino", "max_drawdown", "n_trades", "turnover", "exposure", "win_rate")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def log_evaluation(tb_dir: Path, evaluation: dict[str, Any], baselines: dict[str, dict[str, Any]], step: int) -> None:
    """eval/<metric> and baseline/<name>/<metric> scalars at the window's last training step."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(tb_dir)) as w:
        for key in EVAL_KEYS:
            if _finite(evaluation.get(key)):
                w.add_scalar(f"eval/{key}", float(evaluation[key]), step)
        for name, m in baselines.items():
            for key in ("total_return", "sharpe"):
                if _finite(m.get(key)):
                    w.add_scalar(f"baseline/{name}/{key}", float(m[key]), step)


def hparams(cfg: Config) -> dict[str, Any]:
    s, e, t = cfg.sac, cfg.env, cfg.training
    return {
        "learning_rate": s.learning_rate,
        "gamma": s.gamma,
        "tau": s.tau,
        "batch_size": s.batch_size,
        "buffer_size": s.buffer_size,
        "learning_starts": s.learning_starts,
        "train_freq": s.train_freq,
        "gradient_steps": s.gradient_steps,
        "ent_coef": str(s.ent_coef),
        "net_arch": str(list(s.net_arch)),
        "lookback": e.lookback,
        "reward": e.reward,
        "n_features": len(e.features),
        "max_position": e.max_position,
        "allow_short": e.allow_short,
        "total_timesteps": t.total_timesteps,
        "seed": t.seed,
        "interval": cfg.data.interval,
    }


def log_hparams(tb_root: Path, cfg: Config, aggregate: dict[str, Any] | None) -> None:
    """One HParams entry per run, compared by out-of-sample metrics in TensorBoard's HParams tab."""
    from torch.utils.tensorboard import SummaryWriter

    agg = aggregate or {}
    metrics = {
        f"hparam/oos_{k}": float(agg[k]) for k in ("sharpe", "total_return", "max_drawdown") if _finite(agg.get(k))
    }
    if not metrics:
        metrics = {"hparam/oos_sharpe": float("nan")}
    with SummaryWriter(log_dir=str(tb_root / "hparams")) as w:
        w.add_hparams(hparams(cfg), metrics, run_name=".")
