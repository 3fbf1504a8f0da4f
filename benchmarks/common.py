"""What the benchmark modules share: the repository root, the seed's mini inputs, medians, the harness's setup."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINI_CONFIG = ROOT / "tmp" / "mini_config_v1_default.json"
MINI_WINDOW = ROOT / "tmp" / "mini_window.json"  # one window
MINI_WINDOWS = ROOT / "tmp" / "mini_windows_multi.json"  # three windows
PRODUCTION_CONFIG = ROOT / "configs" / "sac_intraday.json"


def median_of(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def learning_starts(timesteps: int, cap: int = 1000) -> str:
    """A ``--set`` that keeps learning_starts below short (smoke) step counts: they must still learn."""
    return f"sac.learning_starts={min(cap, timesteps // 3)}"


def backend_sets(backend: str | None) -> list[str]:
    """``agent.backend=<backend>`` when one is pinned; none: the config's own backend."""
    return [f"agent.backend={backend}"] if backend else []


def harness_setup(config: Path, windows: Path, sets: list[str]):
    """The harness's Window Setup (config, data, windows) with ``--set`` overrides, as a run does it."""
    from backend.run import driver  # the setup API the drivers and scripts use (re-exported there)

    return driver.setup(driver.SetupOptions(config=str(config), windows=str(windows), sets=sets))
