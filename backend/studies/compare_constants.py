"""Shared constants of the comparison modules (:mod:`backend.studies.compare`)."""

from __future__ import annotations

COLLAPSE_PREFIX = "policy collapsed"
CONFIDENCE = 0.95
SHORT_VERDICT = {
    "not distinguishable from luck": "luck",
    "distinguishable from luck": "skill",
    "undetermined": "undetermined",
}
CONFIG_COLUMNS = (
    "config_seeds",
    "config_sharpe_mean",
    "config_sharpe_sd",
    "config_sharpe_ci_low",
    "config_sharpe_ci_high",
    "config_ci_method",
    "config_return_mean",
    "config_return_sd",
    "config_collapsed_windows",
    "config_windows",
    "config_iqm",
    "config_iqm_ci_low",
    "config_iqm_ci_high",
    "config_verdict",
    "config_best",
    "config_diff",
    "source_index",
)
"""The per-config columns :func:`add_config_columns` adds to every member row (and recomputes)."""
IGNORED_IN_DIFF = ("training.seed",)
"""Keys left out of the config diff: a group holds the seeds of one config."""
