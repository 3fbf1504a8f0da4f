"""Warnings for a policy that collapsed — the usual reason an agent "does nothing"."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.evaluation.simulate import Trajectory

ACTION_STD_MIN = 0.05
LIMIT_FRACTION_MAX = 0.95


def diagnose(traj: Trajectory, max_position: float, n_trades: int) -> dict[str, Any]:
    """Action spread, time at the position limit, and the warnings they imply."""
    actions = traj.actions[~np.isnan(traj.actions)]
    action_std = float(actions.std()) if len(actions) > 1 else 0.0
    decided = ~np.isnan(traj.actions)
    at_limit = float(np.mean(np.abs(traj.positions[decided]) >= 0.98 * max_position)) if decided.any() else 0.0
    warnings = []
    if action_std < ACTION_STD_MIN:
        warnings.append(f"policy collapsed: near-constant action (std {action_std:.3f} < {ACTION_STD_MIN})")
    if n_trades == 0:
        warnings.append("policy collapsed: zero trades on the test span")
    if at_limit > LIMIT_FRACTION_MAX:
        warnings.append(f"policy collapsed: at the position limit {at_limit:.0%} of the time")
    return {"action_std": action_std, "at_limit_fraction": at_limit, "warnings": warnings}
