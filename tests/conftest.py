"""Shared fixtures: the bundled sample (read once), tiny configs, synthetic markets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["WF_CACHE_DIR"] = __import__("tempfile").mkdtemp(prefix="wf-test-cache-")  # never the user's cache

from backend.config.models import Config, DataConfig, EnvConfig  # noqa: E402
from backend.data.loader import load_bars  # noqa: E402
from backend.features.builtin import MarketArrays, compute_features  # noqa: E402

TINY_CONFIG = {
    "data": {"symbol": "SPY", "source": "sample", "interval": "15m"},
    "agent": {"backend": "sb3"},  # pinned: the default `auto` would measure both backends per network size
    "env": {"lookback": 4, "features": ["ret_1", "ret_5", "vol_20", "time_of_day"]},
    "sac": {"net_arch": [8], "batch_size": 32, "learning_starts": 50, "buffer_size": 1000},
    "training": {"total_timesteps": 200, "device": "cpu", "progress_every": 50},
}

TINY_WINDOWS = [
    {
        "id": "w01",
        "train_start": "2019-01-02",
        "train_end": "2019-01-11",
        "test_start": "2019-01-14",
        "test_end": "2019-01-15",
    },
    {
        "id": "w02",
        "train_start": "2019-01-16",
        "train_end": "2019-01-25",
        "test_start": "2019-01-28",
        "test_end": "2019-01-29",
    },
]


@pytest.fixture(scope="session")
def sample_5m():
    return load_bars(DataConfig(interval="5m"))


@pytest.fixture(scope="session")
def market_5m(sample_5m) -> MarketArrays:
    return MarketArrays.from_bars(sample_5m.frame, sample_5m.session_open, sample_5m.session_close, 5)


@pytest.fixture(scope="session")
def features_5m(market_5m) -> np.ndarray:
    return compute_features(market_5m, EnvConfig().features)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


@pytest.fixture
def tiny_windows(tmp_path: Path) -> Path:
    path = tmp_path / "windows.json"
    path.write_text(json.dumps(TINY_WINDOWS))
    return path


def tiny_cfg(**sections) -> Config:
    raw = json.loads(json.dumps(TINY_CONFIG))
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return Config.model_validate(raw)


def frame_from(prices: np.ndarray, start: str = "2019-03-01 09:30", tz: str = "America/New_York") -> pd.DataFrame:
    idx = pd.date_range(start, periods=len(prices), freq="1min", tz=tz)
    return pd.DataFrame(
        {
            "open": prices,
            "high": prices * 1.001,
            "low": prices * 0.999,
            "close": prices,
            "volume": np.full(len(prices), 1000.0),
        },
        index=idx,
    )
