"""The one list of bar intervals the harness trades on, with their widths in minutes.

Every command's ``--interval`` choice, the config's ``data.interval``, resampling and
annualisation read this table; nothing else spells the list out.
"""

from __future__ import annotations

INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MINUTES)
