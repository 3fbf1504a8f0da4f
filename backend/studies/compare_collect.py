"""`wf compare FOLDERS`: collect the member rows of run folders, seed folders and sweep folders.

Part of :mod:`backend.studies.compare` (which re-exports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.core.errors import InputError
from backend.core.jsonio import load_json
from backend.studies.compare_columns import add_config_columns
from backend.studies.compare_constants import CONFIG_COLUMNS
from backend.studies.compare_files import sweep_statistics
from backend.studies.compare_rows import member_row, seed_rows


def _strip_stats(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        r.pop("_stats", None)
        r.setdefault("dsr", None)
        r.setdefault("dsr_n_trials", None)


def collect(paths: list[str]) -> list[dict[str, Any]]:
    """Rows for `wf compare`: run folders (summary.json), multi-seed runs, universes and sweep folders (sweep.json).

    Every row says where it came from (``source``: the folder given); a sweep's rows get its DSR (the
    sweep's own number of trials) and, through :func:`add_config_columns`, its selection statistics.
    """
    rows: list[dict[str, Any]] = []
    selections: dict[str, dict[str, Any]] = {}
    for p in paths:
        folder = Path(p)
        source = str(folder)
        if (folder / "sweep.json").exists():
            doc = load_json(folder / "sweep.json", "sweep")
            members = []
            for r in doc.get("members", []):
                summary = _member_folder(r, folder) / "summary.json"
                base = {k: v for k, v in r.items() if k not in CONFIG_COLUMNS}  # recomputed below
                row = {**base, **member_row(summary, r["name"], r.get("seed"))} if summary.exists() else dict(base)
                row["source"] = source
                members.append(row)
            sweep_statistics(members)
            if doc.get("selection"):
                selections[source] = doc["selection"]
            rows.extend(members)
        elif (folder / "summary.json").exists():
            kind = load_json(folder / "summary.json", "summary").get("kind")
            if kind == "universe":
                from backend.studies.compare_universe import universe_rows  # lazy: keeps wf --help free of pandas

                rows.extend(universe_rows(folder, source))
            elif kind == "multi_seed":
                members = seed_rows(folder, source)
                _strip_stats(members)
                rows.extend(members)
            else:
                row = member_row(folder / "summary.json")
                row["source"] = source
                _strip_stats([row])
                rows.append(row)
        else:
            raise InputError(f"FOLDERS {folder}: neither a run folder (summary.json) nor a sweep folder (sweep.json)")
    add_config_columns(rows, selections)
    return rows


def _member_folder(row: dict[str, Any], sweep_dir: Path) -> Path:
    """The row's path, or ``<sweep_dir>/<folder name>`` when the sweep folder was moved."""
    path = Path(str(row.get("path") or row.get("name")))
    return path if path.is_dir() or not (sweep_dir / path.name).is_dir() else sweep_dir / path.name
