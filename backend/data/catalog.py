"""The bar cache as a user sees it: `wf data fetch | list | import | show`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config import DataConfig
from backend.data import sessions, sources, validate, yahoo
from backend.jsonio import load_json, write_atomic, write_json


def cache_dir(path: str | None) -> Path:
    return Path(path) if path else yahoo.default_cache_dir()


def list_cache(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for manifest in sorted(folder.glob("*.manifest.json")):
        m = load_json(manifest, "cache manifest")
        rows.append(
            {
                k: m.get(k)
                for k in ("symbol", "interval", "source", "first_bar", "last_bar", "rows", "fetched_at", "content_hash")
            }
            | {"file": str(manifest)}
        )
    return rows


def import_file(
    path: str, symbol: str, interval: str, folder: Path, timezone: str = "America/New_York", calendar: str = "XNYS"
) -> dict[str, Any]:
    """Normalise a broker/vendor CSV or Parquet into the cache (validated, regular sessions only)."""
    frame = sources.read_file(path, timezone)
    frame, report = validate.check_bars(frame, path)
    frame, _, _, counts = sessions.filter_sessions(frame, calendar)
    report.update(counts)
    data_path = folder / f"{symbol.upper()}_{interval}.parquet"
    manifest_path = folder / f"{symbol.upper()}_{interval}.manifest.json"
    old_ranges: list[list[str]] = []
    if data_path.exists() and manifest_path.exists():
        old = pd.read_parquet(data_path, engine="pyarrow")
        old_ranges = load_json(manifest_path, "cache manifest").get("ranges", [])
        frame = pd.concat([old, frame])
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    new_range = [frame.index[0].date().isoformat(), frame.index[-1].date().isoformat()]
    write_atomic(data_path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", compression="zstd"))
    manifest = {
        "source": f"import:{Path(path).resolve()}",
        "symbol": symbol.upper(),
        "interval": interval,
        "adjustment": "as provided",
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ranges": yahoo._merge_ranges([*old_ranges, new_range]),
        "first_bar": str(frame.index[0]),
        "last_bar": str(frame.index[-1]),
        "rows": len(frame),
        "content_hash": sources.content_hash(frame),
        "import_report": report,
    }
    write_json(manifest_path, manifest)
    return manifest


def show(cfg: DataConfig) -> dict[str, Any]:
    """Range, sessions, gaps and the validation report of one symbol as the loader sees it."""
    from backend.data.loader import load_bars

    bars = load_bars(cfg)
    idx = bars.frame.index
    per_day = pd.Series(np.ones(len(idx)), index=idx).groupby(np.asarray(idx.date)).sum()
    short = per_day[per_day < per_day.median()]
    return {
        "provenance": bars.provenance,
        "report": bars.report,
        "first_session": str(per_day.index[0]),
        "last_session": str(per_day.index[-1]),
        "bars_per_session_median": float(per_day.median()),
        "short_sessions": {str(k): int(v) for k, v in short.items()},
    }
