"""Comparison rows of runs and sweeps: `wf compare`, `wf ls`, `wf diff`, sweep.json / sweep.csv and the sweep table.

One **member row** per run folder (a sweep member, a seed of ``wf run --seeds``, or a plain run), built
from its summary.json (:func:`member_row`). :func:`add_config_columns` groups the rows per config (same
source folder, same config file) and adds, to every row of a group, the config's mean ± sd over seeds,
a 95 % CI, the sweep's IQM and verdict when it has them, and what the config changed from the base
config (the first one). :func:`format_table` prints a config table, a member table and the warnings
that say when rows are not comparable; :func:`long_rows` is the tidy per-window export.
"""

from __future__ import annotations

from backend.studies.compare_collect import collect
from backend.studies.compare_columns import (
    _ABSENT,
    COMPARED,
    SORT_KEYS,
    add_config_columns,
    comparability,
    config_diff,
    config_of,
    diff_text,
    groups,
    show_value,
    sort_rows,
)
from backend.studies.compare_constants import (
    COLLAPSE_PREFIX,
    CONFIDENCE,
    CONFIG_COLUMNS,
    IGNORED_IN_DIFF,
    SHORT_VERDICT,
)
from backend.studies.compare_files import ID_COLUMNS, csv_text, long_csv, long_rows, sweep_statistics, write_results
from backend.studies.compare_rows import config_label, is_finite, member_row, resolved_config, seed_rows
from backend.studies.compare_tables import config_table, format_table, member_table, plus_minus, render_table

__all__ = [
    "COLLAPSE_PREFIX",
    "COMPARED",
    "CONFIDENCE",
    "CONFIG_COLUMNS",
    "ID_COLUMNS",
    "IGNORED_IN_DIFF",
    "SHORT_VERDICT",
    "SORT_KEYS",
    "_ABSENT",
    "add_config_columns",
    "collect",
    "comparability",
    "config_diff",
    "config_label",
    "config_of",
    "config_table",
    "csv_text",
    "diff_text",
    "format_table",
    "groups",
    "is_finite",
    "long_csv",
    "long_rows",
    "member_row",
    "member_table",
    "plus_minus",
    "render_table",
    "resolved_config",
    "seed_rows",
    "show_value",
    "sort_rows",
    "sweep_statistics",
    "write_results",
]
