"""Reading a sweep's members: their out-of-sample per-bar returns aligned on the bars they share.

Each member is a run folder whose completed windows left ``<window>/equity.csv`` (and a summary.json with
each window's Sharpe). :func:`load_member_returns` inner-joins the members on timestamps; whatever cannot be
read is skipped with its reason, never raised. The statistics on top: :mod:`backend.evaluation.selection`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.core.jsonio import load_json
from backend.core.status import Status


@dataclass
class MemberReturns:
    """Members' out-of-sample returns aligned on the bars every member has (see :func:`load_member_returns`)."""

    returns: pd.DataFrame
    """Per-bar net returns; index: UTC timestamps shared by every member; one column per member."""
    buy_and_hold: pd.Series
    """Intraday buy-and-hold per-bar returns on the same bars (from the first member's equity.csv)."""
    window: pd.Series
    """The window id of every aligned bar."""
    window_sharpes: pd.DataFrame
    """Windows × members: each window's out-of-sample Sharpe from summary.json (NaN if not completed)."""
    bars: dict[str, int] = field(default_factory=dict)
    """Bars each loaded member had before alignment."""
    dropped_bars: int = 0
    """Bars some loaded member has and another lacks (the union minus the intersection)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Members that could not be loaded, with the reason."""
    warnings: list[str] = field(default_factory=list)


def _window_ids(folder: Path, summary: dict[str, Any] | None) -> list[str]:
    if summary is not None and summary.get("windows"):
        return [w["id"] for w in summary["windows"] if w.get("status") == Status.COMPLETED]
    return sorted(p.parent.name for p in folder.glob("*/equity.csv"))


def _window_sharpes(summary: dict[str, Any] | None, ids: list[str]) -> dict[str, float]:
    """A completed window whose Sharpe is undefined (no variance: the agent stayed flat) scores 0."""
    out = {}
    for w in (summary or {}).get("windows", []):
        if w.get("status") == Status.COMPLETED and w["id"] in ids:
            sharpe = (w.get("evaluation") or {}).get("sharpe")
            out[w["id"]] = 0.0 if sharpe is None else float(sharpe)
    return out


def _read_member(folder: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """One member's test bars (timestamp, net_return, buy_and_hold_return, window) and window Sharpes."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: member folder not found")
    summary = load_json(folder / "summary.json", "summary") if (folder / "summary.json").exists() else None
    if summary is not None and summary.get("kind") == "multi_seed":
        raise ValueError(f"{folder} is a multi-seed run; pass its s<seed>/ folders as members")
    ids = _window_ids(folder, summary)
    frames = []
    for wid in ids:
        path = folder / wid / "equity.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing")
        f = pd.read_csv(path, usecols=["timestamp", "net_return", "buy_and_hold_return"])
        f["window"] = wid
        frames.append(f)
    if not frames:
        raise FileNotFoundError(f"{folder}: no completed window with an equity.csv")
    frame = pd.concat(frames, ignore_index=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    return frame.sort_values("timestamp", kind="stable"), _window_sharpes(summary, ids)


def load_member_returns(member_dirs: Sequence[str | Path] | Mapping[str, str | Path]) -> MemberReturns:
    """Read every member folder's ``<window>/equity.csv`` and align the members on their shared bars.

    ``member_dirs`` is a list of run folders (named by folder name) or a ``{name: folder}`` mapping.
    Windows are the completed ones in the folder's summary.json (else every ``*/equity.csv``).
    Members are inner-joined on timestamps; ``dropped_bars`` counts the bars lost. A folder that
    cannot be read is skipped with its reason (never an exception); a member with a repeated
    timestamp keeps the first bar and gets a warning.
    """
    items = list(member_dirs.items()) if isinstance(member_dirs, Mapping) else [(Path(p).name, p) for p in member_dirs]
    out = MemberReturns(pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype=object), pd.DataFrame())
    series: dict[str, pd.Series] = {}
    bh: dict[str, pd.Series] = {}
    windows: dict[str, pd.Series] = {}
    sharpes: dict[str, dict[str, float]] = {}
    for name, folder in items:
        try:
            frame, sharpes[name] = _read_member(Path(folder))
        except (OSError, ValueError, KeyError) as e:  # InputError is a ValueError; missing columns a ValueError
            out.skipped[name] = f"{type(e).__name__}: {e}"
            continue
        dupes = frame["timestamp"].duplicated()
        if dupes.any():
            out.warnings.append(f"{name}: {int(dupes.sum())} repeated test bars (overlapping windows?); kept the first")
            frame = frame[~dupes]
        frame = frame.set_index("timestamp")
        series[name], bh[name], windows[name] = frame["net_return"], frame["buy_and_hold_return"], frame["window"]
        out.bars[name] = len(frame)
    if not series:
        return out
    returns = pd.concat(series, axis=1, join="inner").sort_index()
    union = pd.concat([s.index.to_series() for s in series.values()]).index.unique()
    out.returns, out.dropped_bars = returns, len(union) - len(returns)
    first = next(iter(series))
    out.buy_and_hold = bh[first].reindex(returns.index)
    out.window = windows[first].reindex(returns.index)
    for name in series:
        gap = float(np.max(np.abs(bh[name].reindex(returns.index).to_numpy() - out.buy_and_hold.to_numpy()), initial=0))
        if gap > 1e-9:
            out.warnings.append(f"{name}: its buy-and-hold returns differ from {first}'s by up to {gap:.3g} (costs?)")
    out.window_sharpes = pd.DataFrame(sharpes).reindex(columns=list(series))
    return out
