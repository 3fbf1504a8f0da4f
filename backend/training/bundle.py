"""The model bundle of one window: model.zip, vecnormalize.pkl, metadata.json.

metadata.json is written last and holds the SHA-256 of the other two files, so a bundle
with metadata is complete. Before anything is unpickled (SB3 archives hold cloudpickled
objects: loading one runs code) the hashes are checked, and the metadata is compared with
the config and data being replayed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from backend.config import Config
from backend.errors import EvaluationError
from backend.jsonio import load_json

MODEL_FILE = "model.zip"
STATS_FILE = "vecnormalize.pkl"
METADATA_FILE = "metadata.json"
BUNDLE_SCHEMA = 1


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compatibility_fields(cfg: Config, n_features: int, state_size: int) -> dict[str, Any]:
    """What a saved agent depends on; replay compares these one by one."""
    env = cfg.env
    return {
        "feature_names": list(env.features),
        "lookback": env.lookback,
        "observation_shape": [env.lookback * n_features + state_size],
        "interval": cfg.data.interval,
        "reward": env.reward,
        "costs": env.costs.model_dump(mode="json"),
        "max_position": env.max_position,
        "allow_short": env.allow_short,
        "rebalance_threshold": env.rebalance_threshold,
        "forced_exit_minutes": env.forced_exit_minutes,
        "normalize_obs": cfg.training.normalize_obs,
    }


def read_metadata(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / METADATA_FILE
    if not path.exists():
        raise EvaluationError(
            f"{path}: bundle metadata missing; the window did not finish training (rerun with --resume)"
        )
    try:
        return load_json(path, "bundle metadata")
    except Exception as e:
        raise EvaluationError(str(e)) from e


def verify_files(bundle_dir: Path, meta: dict[str, Any]) -> None:
    """Check presence and SHA-256 of every file listed in the metadata, before loading."""
    files = meta.get("files", {})
    if MODEL_FILE not in files:
        raise EvaluationError(f"{bundle_dir / METADATA_FILE}: lists no {MODEL_FILE}; the bundle is incomplete")
    for name, expected in files.items():
        path = bundle_dir / name
        if not path.exists():
            raise EvaluationError(f"{path}: missing from the bundle; retrain the window (--resume) or restore the file")
        actual = sha256_file(path)
        if actual != expected:
            raise EvaluationError(
                f"{path}: SHA-256 {actual[:12]}… does not match the metadata ({expected[:12]}…); the file was changed "
                "or truncated and will not be loaded; retrain the window or restore the original file"
            )


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], bundle_dir: Path) -> None:
    """One error naming every field that differs, with both values and the fix."""
    saved = meta.get("compatibility", {})
    diffs = [
        f"{key}: bundle {saved.get(key)!r} vs now {want!r}" for key, want in expected.items() if saved.get(key) != want
    ]
    if diffs:
        raise EvaluationError(
            f"{bundle_dir}: the bundle does not match this config/data — {'; '.join(diffs)}. Fix: replay with the "
            "config the model was trained with (config.resolved.json in the run folder), or retrain"
        )
