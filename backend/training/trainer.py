"""Train an agent on one window's train span and save its bundle — the training half of a window task."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.models import Config, config_hash
from backend.core.errors import ArtifactError, TrainingError
from backend.core.jsonio import atomic_path, write_atomic, write_json
from backend.core.status import Status
from backend.envs.intraday_env import STATE_NAMES, IntradayTradingEnv
from backend.features.builtin import MarketArrays, fit_normalisation
from backend.training import agents, algorithms, bundle
from backend.training.warm_start import WarmStart
from backend.walkforward.windows import Window

VAR_FLOOR = 1e-8  # a feature constant over the train span is centred, not blown up
CLIP_OBS = 10.0


@dataclass
class TrainResult:
    timesteps: int
    seconds: float
    steps_per_second: float
    model_path: Path
    files: dict[str, str]


def set_threads(cfg: Config, device: str = "cpu") -> None:
    """One thread per worker by default (training.torch_threads), for torch and, for the sbx backend, JAX."""
    algorithms.configure_worker(cfg.agent.backend, cfg.training.torch_threads, device)


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


def feature_stats(features: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (floored) variance, fitted on the train span only."""
    mean_f, var_f = fit_normalisation(features, window.train_start, window.train_end)
    return mean_f, np.maximum(var_f, VAR_FLOOR)


def observation_stats(cfg: Config, norm: tuple[np.ndarray, np.ndarray], count: int):
    """Mean/variance of the whole observation (feature stats tiled; state dims 0/1)."""
    mean_f, var_f = norm
    L = cfg.env.lookback
    mean = np.r_[np.tile(mean_f, L), np.zeros(len(STATE_NAMES))]
    var = np.r_[np.tile(var_f, L), np.ones(len(STATE_NAMES))]
    return mean, var, count


def train_env_factory(
    cfg: Config, market: MarketArrays, features: np.ndarray, window: Window, *, stats: tuple | None = None
):
    """The training env of a window and its frozen normalisation (the audit steps this same factory).

    ``stats``: a normalisation to use instead of fitting one on ``features`` (the env audit holds the window's
    own fixed while it perturbs bars inside the train span).
    """
    span = (window.train_start, window.train_end)
    norm = None
    if cfg.training.normalize_obs:
        norm = stats if stats is not None else feature_stats(features, window)

    def make() -> IntradayTradingEnv:
        return IntradayTradingEnv(market, features, span, cfg.env, "random", normalisation=norm, clip_obs=CLIP_OBS)

    return make, norm


def train_vec_env(env_fn, seed: int | None = None):
    """The trainer's vectorised env: SB3's ``DummyVecEnv`` over ``env_fn``. The algorithm seeds it
    (``set_random_seed`` → ``venv.seed(training.seed)``); ``seed`` does that here for the env audit's tour, which
    plays the train span with the trainer's own wrapper, seed and resets (backend/checks/env_tours.py)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([env_fn])
    if seed is not None:
        venv.seed(seed)
    return venv


def sb3_statistics_file(cfg: Config, env_fn, norm, count: int, path: Path) -> None:
    """vecnormalize.pkl for plain SB3 users: applied to raw observations it gives the env's normalised ones.

    The harness itself never loads it (it reads obs_stats.npz, which cannot run code).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    vn = VecNormalize(
        DummyVecEnv([env_fn]), training=False, norm_obs=True, norm_reward=False, clip_obs=CLIP_OBS, epsilon=0.0
    )
    mean, var, n = observation_stats(cfg, norm, count)
    rms: Any = vn.obs_rms  # one RunningMeanStd for a Box observation space (SB3 types it as a dict of them too)
    rms.mean = mean.astype(np.float64)
    rms.var = var.astype(np.float64)
    rms.count = float(n)
    with atomic_path(path) as tmp:
        vn.save(str(tmp))


def _learn(model, total: int, callbacks, progress) -> float:
    start = time.perf_counter()
    try:
        model.learn(total_timesteps=total, callback=callbacks, log_interval=1, progress_bar=False)
    except KeyboardInterrupt:
        progress.mark(Status.INTERRUPTED)
        raise
    except TrainingError:
        progress.mark(Status.FAILED)
        raise
    except (ValueError, RuntimeError) as e:
        progress.mark(Status.FAILED)
        text = str(e).lower()
        if "nan" in text or "inf" in text or "constraint" in text:  # torch distributions on diverged weights
            raise TrainingError(
                f"non-finite values at step {progress.num_timesteps} (check: loss; training diverged); "
                "lower sac.learning_rate or check the reward scale"
            ) from e
        raise
    return time.perf_counter() - start


def train_window(
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    *,
    out_dir: Path,
    tb_dir: Path | None,
    data_hash: str,
    provenance: dict[str, Any],
    embargo: int = 0,
    warm_start: WarmStart | None = None,
    progress_bar: Any = None,
    stop: Any = None,
) -> TrainResult:
    """Train on ``window``'s train span; write model.zip, obs_stats.npz, vecnormalize.pkl, metadata.json.

    ``warm_start``: the model to start from; its model.zip is written to a hidden file of ``out_dir`` for the
    library to load and removed again, whatever happens.
    """
    warm_path = None if warm_start is None else out_dir / f".warm-start-{warm_start.window_id}.zip"
    try:
        if warm_start is not None and warm_path is not None:
            warm_path.write_bytes(warm_start.model)
        return _train_window(
            cfg,
            market,
            features,
            window,
            out_dir=out_dir,
            tb_dir=tb_dir,
            data_hash=data_hash,
            provenance=provenance,
            embargo=embargo,
            warm_start=warm_start,
            warm_path=warm_path,
            progress_bar=progress_bar,
            stop=stop,
        )
    finally:
        if warm_path is not None:
            warm_path.unlink(missing_ok=True)


def _train_window(
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    *,
    out_dir: Path,
    tb_dir: Path | None,
    data_hash: str,
    provenance: dict[str, Any],
    embargo: int,
    warm_start: WarmStart | None,
    warm_path: Path | None,
    progress_bar: Any,
    stop: Any,
) -> TrainResult:
    seed = cfg.training.seed
    device = pick_device(cfg)
    set_threads(cfg, device)
    env_fn, norm = train_env_factory(cfg, market, features, window)
    venv = train_vec_env(env_fn)
    model = _build_model(cfg, venv, seed, device, warm_path, tb_dir)
    total = cfg.training.total_timesteps
    progress, callbacks = _callbacks(cfg, window, out_dir, progress_bar, stop)
    seconds = _learn(model, total, callbacks, progress)
    _check_finite_weights(model)
    files = _save_bundle(cfg, model, env_fn, norm, window, out_dir)
    training = {
        "timesteps": total,
        "seed": seed,
        "device": device,
        "seconds": round(seconds, 3),
        "warm_start_from": warm_start.window_id if warm_start else None,
    }
    meta = _metadata(cfg, market, features, window, embargo, provenance, data_hash, warm_start, training, files)
    write_json(out_dir / bundle.METADATA_FILE, meta)
    venv.close()
    return TrainResult(total, seconds, total / seconds if seconds > 0 else 0.0, out_dir / bundle.MODEL_FILE, files)


def _build_model(cfg: Config, venv, seed: int, device: str, warm_path: Path | None, tb_dir: Path | None):
    """The algorithm on ``venv``, its weights from ``warm_path`` when given, logging to TensorBoard when asked."""
    from stable_baselines3.common.logger import configure

    model = agents.build(cfg, venv, seed, device)
    if warm_path is not None:
        agents.warm_start(model, warm_path, device)
    formats = ["tensorboard"] if (tb_dir is not None and cfg.training.tensorboard) else []
    model.set_logger(configure(str(tb_dir) if formats else None, formats))
    return model


def _callbacks(cfg: Config, window: Window, out_dir: Path, progress_bar: Any, stop: Any):
    """The progress-file callback (``_learn`` marks it on failure) and the list of every training callback."""
    from stable_baselines3.common.callbacks import CallbackList

    from backend.training.callbacks import (  # heavy: stable_baselines3
        EpisodeStatsCallback,
        FiniteCheckCallback,
        ProgressFileCallback,
        StopCallback,
    )

    total = cfg.training.total_timesteps
    progress = ProgressFileCallback(
        out_dir / "training_progress.json", window.id, total, cfg.training.progress_every, progress_bar
    )
    return progress, CallbackList([progress, EpisodeStatsCallback(), FiniteCheckCallback(), StopCallback(stop)])


def _metadata(
    cfg: Config,
    market: MarketArrays,
    features: np.ndarray,
    window: Window,
    embargo: int,
    provenance: dict[str, Any],
    data_hash: str,
    warm_start: WarmStart | None,
    training: dict[str, Any],
    files: dict[str, str],
) -> dict[str, Any]:
    """metadata.json of the bundle (key order is the file's)."""
    return {
        "schema_version": bundle.BUNDLE_SCHEMA,
        "window": window.describe(market.timestamps, cfg.data.timezone),
        "data_end": bundle.latest(
            window.describe(market.timestamps, cfg.data.timezone)["train_end"],
            warm_start.data_end if warm_start else None,
        ),
        "embargo_bars": embargo,
        "symbol": provenance.get("symbol"),
        "source": provenance.get("source"),
        "interval": cfg.data.interval,
        "feature_names": list(cfg.env.features),
        "state_names": list(STATE_NAMES),
        "observation_shape": [cfg.env.lookback * features.shape[1] + len(STATE_NAMES)],
        "action_space": {"low": -1.0, "high": 1.0, "shape": [1]},
        "config_hash": config_hash(cfg),
        "data_hash": data_hash,
        "compatibility": bundle.compatibility_fields(cfg, features.shape[1], len(STATE_NAMES)),
        "libraries": _libraries(cfg),
        "training": training,
        "files": files,
    }


def _check_finite_weights(model) -> None:
    bad = algorithms.non_finite_parameters(model) if hasattr(algorithms, "non_finite_parameters") else []
    if bad:
        raise TrainingError(f"non-finite weights in {bad[0]} after training (check: loss); lower sac.learning_rate")


def _save_bundle(cfg: Config, model, env_fn, norm, window: Window, out_dir: Path) -> dict[str, str]:
    """Model and statistics first; metadata (holding their hashes) is written last by the caller."""
    model_path = out_dir / bundle.MODEL_FILE
    buf = io.BytesIO()
    try:
        agents.save(model, buf)
    except OSError as e:
        raise ArtifactError(f"{model_path}: cannot save the model ({e.strerror or e}); free space and --resume") from e
    write_atomic(model_path, lambda tmp: tmp.write_bytes(buf.getvalue()))
    files = {bundle.MODEL_FILE: bundle.sha256_file(model_path)}
    if norm is not None:
        bundle.write_statistics(out_dir / bundle.STATS_FILE, norm[0], norm[1], CLIP_OBS, window.train_bars)
        sb3_statistics_file(cfg, env_fn, norm, window.train_bars, out_dir / bundle.SB3_STATS_FILE)
        files[bundle.STATS_FILE] = bundle.sha256_file(out_dir / bundle.STATS_FILE)
        files[bundle.SB3_STATS_FILE] = bundle.sha256_file(out_dir / bundle.SB3_STATS_FILE)
    return files


def _libraries(cfg: Config) -> dict[str, str | None]:
    if hasattr(algorithms, "library_versions"):
        return algorithms.library_versions(cfg.agent.backend)
    return {name: metadata.version(name) for name in ("stable-baselines3", "torch")}
