"""The one list of bar intervals the harness trades on, with their widths in minutes.

Every command's ``--interval`` choice (``wf run``, ``wf data fetch|import|show``), the config's
``data.interval``, resampling, the bar cache and annualisation read this table; nothing else
spells the list out. Provider-specific spellings (yfinance asks for ``60m`` where the harness
says ``1h``) live with the provider.
"""

from __future__ import annotations

INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MINUTES)
NS_PER_MIN = 60_000_000_000


def interval_minutes(interval: str) -> int:
    """Width of ``interval`` in minutes; a ValueError names the known intervals."""
    try:
        return INTERVAL_MINUTES[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}") from None


def width_ns(interval: str) -> int:
    """Width of ``interval`` in nanoseconds."""
    return interval_minutes(interval) * NS_PER_MIN
