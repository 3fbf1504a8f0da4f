"""The `agent` config section: which off-policy algorithm, on which backend, and its own settings.

The hyperparameters the four algorithms share stay in the `sac` section, so every config runs
with `--set agent.algorithm=tqc` (or crossq, td3) as it is; what only one algorithm has lives
in its sub-section here (`agent.tqc`, `agent.crossq`, `agent.td3`), with the libraries'
defaults. The algorithm list, with the shared keys each algorithm ignores, is ``SPECS`` in
:mod:`backend.config.algorithms`, which this module imports (it imports neither torch nor JAX); how every key
reaches the library's constructor is :mod:`backend.training.algo_kwargs`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.config.algorithms import ALGORITHMS, AUTO, BACKEND_CHOICES, BACKENDS  # noqa: F401 - BACKENDS re-exported (cli)


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, validate_default=True, use_attribute_docstrings=True
    )


class TQCConfig(_Strict):
    """TQC only (Kuznetsov et al. 2020): distributional critics whose top quantiles are dropped."""

    n_quantiles: int = Field(25, ge=1, le=1000)
    """Quantiles each critic predicts."""
    top_quantiles_to_drop_per_net: int = Field(2, ge=0)
    """Largest quantiles dropped per critic from the pooled target (controls overestimation)."""
    n_critics: int = Field(2, ge=1, le=20)
    """Number of critics (the SBX backend supports exactly 2)."""

    @model_validator(mode="after")
    def _drop(self) -> TQCConfig:
        if self.top_quantiles_to_drop_per_net >= self.n_quantiles:
            raise ValueError(
                f"agent.tqc.top_quantiles_to_drop_per_net ({self.top_quantiles_to_drop_per_net}) must be below "
                f"agent.tqc.n_quantiles ({self.n_quantiles}), or no quantile is left for the target"
            )
        return self


class CrossQConfig(_Strict):
    """CrossQ only (Bhatt et al. 2024): batch-renormalised critics, no target networks (ignores sac.tau)."""

    policy_delay: int = Field(3, ge=1)
    """Critic updates per actor (and entropy coefficient) update."""
    batch_norm: bool = True
    """Batch Renorm layers in actor and critics (the core of CrossQ; false gives SAC without target networks)."""
    batch_norm_momentum: float = Field(0.01, gt=0, lt=1)
    """Weight of the newest batch in the running statistics (PyTorch convention; SBX receives 1 − this)."""
    renorm_warmup_steps: int = Field(100_000, ge=0)
    """Gradient steps of plain batch norm before Batch Renorm corrections switch on."""
    n_critics: int = Field(2, ge=1, le=20)
    """Number of critics."""


class TD3Config(_Strict):
    """TD3 only (Fujimoto et al. 2018): deterministic actor (ignores sac.ent_coef, target_entropy, use_sde)."""

    policy_delay: int = Field(2, ge=1)
    """Critic updates per actor and target-network update."""
    target_policy_noise: float = Field(0.2, ge=0)
    """Std of the Gaussian noise added to target actions (target policy smoothing), in action units."""
    target_noise_clip: float = Field(0.5, ge=0)
    """Clip of that target noise, in action units."""
    action_noise: Literal["normal", "ornstein_uhlenbeck"] = "normal"
    """Kind of exploration noise added to the actor's actions while training (when action_noise_std > 0)."""
    action_noise_std: float = Field(0.0, ge=0, le=10)
    """Std of the exploration noise in action units; 0 = none (the libraries' default), 0.1 is the TD3 paper's."""
    n_critics: int = Field(2, ge=1, le=20)
    """Number of critics (clipped double Q takes the minimum of the first two)."""


class AgentConfig(_Strict):
    """Algorithm and backend of the agent, and each algorithm's own settings."""

    algorithm: Literal[ALGORITHMS] = "sac"  # type: ignore[valid-type]
    """sac (default), tqc, crossq or td3; the shared hyperparameters are the `sac` section."""
    backend: Literal[BACKEND_CHOICES] = AUTO  # type: ignore[valid-type]
    """auto (default): the faster installed backend for this machine and config, from a short measurement
    cached per machine (CPU model, vector instruction sets), library versions and speed settings (summary and
    bundle record the one that trained, and replay uses it); or pin one: sb3 (PyTorch: stable-baselines3 /
    sb3-contrib) or sbx (JAX; pip install '.[jax]'). Pin a backend to train the same implementation on every
    machine."""
    tqc: TQCConfig = Field(default_factory=TQCConfig)
    """Settings read only when algorithm is tqc."""
    crossq: CrossQConfig = Field(default_factory=CrossQConfig)
    """Settings read only when algorithm is crossq."""
    td3: TD3Config = Field(default_factory=TD3Config)
    """Settings read only when algorithm is td3."""
