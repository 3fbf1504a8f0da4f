"""TensorBoard extras beside SB3's own logger: evaluation scalars and the HParams table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from backend.config.models import Config, config_dict, flatten

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
    """Every config value as a dotted key (``sac.learning_rate``, ``env.reward`` …), typed for TensorBoard.

    Numbers stay numbers; booleans, None and lists become strings (TensorBoard's HParams types are
    number, string and bool, and torch would log a bool as 0/1). Every key is recorded, so whatever two
    runs differ in shows up as a column whose ``differs`` is true.
    """
    out: dict[str, Any] = {}
    for key, value in flatten(config_dict(cfg)).items():
        if isinstance(value, bool) or value is None:
            out[key] = json.dumps(value)
        elif isinstance(value, int | float | str):
            out[key] = value
        else:
            out[key] = json.dumps(value)
    return out


def log_hparams(tb_root: Path, cfg: Config, aggregate: dict[str, Any] | None) -> None:
    """One HParams session per run (``<run>/tensorboard/hparams``), with its out-of-sample metrics.

    Only the session's start and end records and the metric scalars are written — no experiment record.
    torch's ``SummaryWriter.add_hparams`` writes an experiment record into every run, built from that
    run's values alone, and TensorBoard shows the first one it finds: every hyperparameter then says
    ``differs: false``. Without it TensorBoard builds the experiment from all runs' sessions, so a
    learning rate that differs between sweep members is marked as differing and gets its range.
    """
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    agg = aggregate or {}
    metrics = {
        f"hparam/oos_{k}": float(agg[k]) for k in ("sharpe", "total_return", "max_drawdown") if _finite(agg.get(k))
    }
    if not metrics:
        metrics = {"hparam/oos_sharpe": float("nan")}
    _experiment, start, end = hparams_summaries(hparams(cfg), metrics)
    with SummaryWriter(log_dir=str(tb_root / "hparams")) as w:
        w.file_writer.add_summary(start)
        w.file_writer.add_summary(end)
        for key, value in metrics.items():
            w.add_scalar(key, value)
