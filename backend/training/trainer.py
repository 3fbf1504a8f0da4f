"""Train SAC on one window's train span and save the bundle."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Config, config_hash
from backend.envs.intraday_env import STATE_NAMES, IntradayTradingEnv
from backend.errors import ArtifactError, TrainingError
from backend.features import MarketArrays, fit_normalisation
from backend.jsonio import atomic_path, write_atomic, write_json
from backend.training import bundle
from backend.windows import Window


@dataclass
class TrainResult:
    timesteps: int
    seconds: float
    steps_per_second: float
    model_path: Path


def pick_device(cfg: Config) -> str:
    """cpu | cuda. ``auto`` picks CUDA only when available and the networks are large.

    Rule: batch_size × widest layer ≥ 256 × 512; below that, kernel-launch overhead makes
    a GPU slower than one CPU core for SAC's small MLPs.
    """
    want = cfg.training.device
    if want == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if want == "cuda":
        if not has_cuda:
            raise TrainingError("training.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        return "cuda"
    big = cfg.sac.batch_size * max(cfg.sac.net_arch or [1]) >= 256 * 512
    return "cuda" if (has_cuda and big) else "cpu"


VAR_FLOOR = 1e-8  # a feature constant over the train span is centred, not blown up
CLIP_OBS = 10.0


def feature_stats(features: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (floored) variance, fitted on the train span only."""
    mean_f, var_f = fit_normalisation(features, window.train_start, window.train_end)
    return mean_f, np.maximum(var_f, VAR_FLOOR)


def observation_stats(cfg: Config, features: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean/variance of the whole observation (feature stats tiled; state dims 0/1), train span only."""
    mean_f, var_f = feature_stats(features, window)
    L = cfg.env.lookback
    mean = np.r_[np.tile(mean_f, L), np.zeros(len(STATE_NAMES))]
    var = np.r_[np.tile(var_f, L), np.ones(len(STATE_NAMES))]
    return mean, var, window.train_bars


def statistics_file(env_fn, stats: tuple[np.ndarray, np.ndarray, int]):
    """A frozen VecNormalize holding the statistics (saved as vecnormalize.pkl).

    Applied to raw observations (``normalize_obs``) it gives the env's normalised observations
    bit for bit (epsilon 0 with a variance floor; tested), so the file is an exact, standard SB3
    description of what the agent saw. Training and replay do not run observations through it
    at every step: the env normalises its feature rows once with the same numbers.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    vn = VecNormalize(
        DummyVecEnv([env_fn]), training=False, norm_obs=True, norm_reward=False, clip_obs=CLIP_OBS, epsilon=0.0
    )
    mean, var, count = stats
    vn.obs_rms.mean = mean.astype(np.float64)
    vn.obs_rms.var = var.astype(np.float64)
    vn.obs_rms.count = float(count)
    return vn


def feature_stats_from(normaliser, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature statistics back from a loaded VecNormalize (its first lookback row)."""
    return normaliser.obs_rms.mean[:n_features].copy(), normaliser.obs_rms.var[:n_features].copy()


def sac_kwargs(cfg: Config) -> dict[str, Any]:
    s = cfg.sac
    return {
        "learning_rate": s.learning_rate,
        # the buffer never needs to hold more transitions than the run makes
        "buffer_size": min(s.buffer_size, cfg.training.total_timesteps),
        "learning_starts": s.learning_starts,
        "batch_size": s.batch_size,
        "tau": s.tau,
        "gamma": s.gamma,
        "train_freq": s.train_freq,
        "gradient_steps": s.gradient_steps,
        "ent_coef": s.ent_coef,
        "target_entropy": s.target_entropy,
        "use_sde": s.use_sde,
        "policy_kwargs": {"net_arch": list(s.net_arch)},
    }


def train_window(
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    out_dir: Path,
    tb_dir: Path | None,
    data_hash: str,
    provenance: dict[str, Any],
    warm_start_from: Path | None = None,
    progress_bar: Any = None,
) -> TrainResult:
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed

    seed = cfg.training.seed
    torch.set_num_threads(cfg.training.torch_threads)
    set_random_seed(seed)
    device = pick_device(cfg)

    span = (window.train_start, window.train_end)
    norm = feature_stats(features, window) if cfg.training.normalize_obs else None

    def env_fn() -> IntradayTradingEnv:
        return IntradayTradingEnv(market, features, span, cfg.env, "random", normalisation=norm, clip_obs=CLIP_OBS)

    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([env_fn])
    model = SAC("MlpPolicy", venv, seed=seed, device=device, verbose=0, **sac_kwargs(cfg))
    if warm_start_from is not None:
        model.set_parameters(str(warm_start_from), exact_match=True, device=device)
    formats = ["tensorboard"] if (tb_dir is not None and cfg.training.tensorboard) else []
    model.set_logger(configure(str(tb_dir) if formats else None, formats))
    from backend.training.callbacks import EpisodeStatsCallback, FiniteCheckCallback, ProgressFileCallback

    total = cfg.training.total_timesteps
    progress = ProgressFileCallback(
        out_dir / "training_progress.json", window.id, total, cfg.training.progress_every, progress_bar
    )
    callbacks = CallbackList([progress, EpisodeStatsCallback(), FiniteCheckCallback()])
    start = time.perf_counter()
    model.learn(total_timesteps=total, callback=callbacks, log_interval=1, progress_bar=False)
    seconds = time.perf_counter() - start
    for name, param in model.policy.named_parameters():
        if not torch.isfinite(param).all():
            raise TrainingError(f"non-finite weights in {name} after training (check: loss); lower sac.learning_rate")

    # Save: model and statistics first, metadata (with their hashes) last.
    model_path = out_dir / bundle.MODEL_FILE
    buf = io.BytesIO()
    try:
        model.save(buf)
    except OSError as e:
        raise ArtifactError(f"{model_path}: cannot save the model ({e.strerror or e}); free space and --resume") from e
    write_atomic(model_path, lambda tmp: tmp.write_bytes(buf.getvalue()))
    files = {bundle.MODEL_FILE: bundle.sha256_file(model_path)}
    if cfg.training.normalize_obs:
        stats_path = out_dir / bundle.STATS_FILE
        normaliser = statistics_file(
            lambda: IntradayTradingEnv(market, features, span, cfg.env), observation_stats(cfg, features, window)
        )
        with atomic_path(stats_path) as tmp:
            normaliser.save(str(tmp))
        files[bundle.STATS_FILE] = bundle.sha256_file(stats_path)
    n_features = features.shape[1]
    meta = {
        "schema_version": bundle.BUNDLE_SCHEMA,
        "window": window.describe(market.timestamps, cfg.data.timezone),
        "symbol": provenance.get("symbol"),
        "source": provenance.get("source"),
        "interval": cfg.data.interval,
        "feature_names": list(cfg.env.features),
        "state_names": list(STATE_NAMES),
        "observation_shape": [cfg.env.lookback * n_features + len(STATE_NAMES)],
        "config_hash": config_hash(cfg),
        "data_hash": data_hash,
        "compatibility": bundle.compatibility_fields(cfg, n_features, len(STATE_NAMES)),
        "training": {
            "timesteps": total,
            "seed": seed,
            "device": device,
            "seconds": round(seconds, 3),
            "warm_start_from": str(warm_start_from) if warm_start_from else None,
        },
        "files": files,
    }
    write_json(out_dir / bundle.METADATA_FILE, meta)
    venv.close()
    return TrainResult(total, seconds, total / seconds if seconds > 0 else 0.0, model_path)
