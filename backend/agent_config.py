"""The `agent` config section: which algorithm of the SAC family, on which backend.

The hyperparameters the family shares stay in the `sac` section (so every config runs with
`--set agent.algorithm=tqc` as it is); what only one algorithm has lives in its sub-section
here. Which shared keys each algorithm uses is declared in
:mod:`backend.training.algorithms` (the one algorithm list).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ALGORITHMS = ("sac", "tqc", "crossq", "td3")
BACKENDS = ("sb3", "sbx")


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, validate_default=True, use_attribute_docstrings=True
    )


class AgentConfig(_Strict):
    """Algorithm and backend of the agent."""

    algorithm: Literal[ALGORITHMS] = "sac"  # type: ignore[valid-type]
    """sac (default), tqc or crossq (sb3-contrib / SBX), td3."""
    backend: Literal[BACKENDS] = "sb3"  # type: ignore[valid-type]
    """sb3 (PyTorch, default) or sbx (JAX; pip install '.[jax]')."""
