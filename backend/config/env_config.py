"""The ``env`` config section: features, observation, reward, position limits, costs and the DSR reward."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from backend.config.base import DEFAULT_FEATURES, NonNegFloat, PosFloat, Strict


class CostConfig(Strict):
    """Trading costs, charged on every change of position (and the forced flatten)."""

    commission_bps: NonNegFloat = 0.5
    """Commission in basis points of traded notional."""
    commission_per_share: NonNegFloat = 0.0
    """Commission per share traded (added to commission_bps)."""
    commission_min: NonNegFloat = 0.0
    """Minimum per-share commission per trade, in currency (needs env.initial_capital)."""
    commission_max_pct: NonNegFloat | None = None
    """Cap of the per-share commission as a fraction of traded notional."""
    slippage_buy_bps: NonNegFloat = 1.0
    """Slippage in bps of notional when buying."""
    slippage_sell_bps: NonNegFloat = 1.0
    """Slippage in bps of notional when selling."""


class DSRConfig(Strict):
    """Differential Sharpe ratio reward (Moody & Saffell 2001)."""

    decay: float = Field(0.99, gt=0, lt=1)
    """Moving-average decay; the adaptation rate is eta = 1 - decay."""
    epsilon: PosFloat = 1e-9
    """Added to the variance term to avoid division by zero."""
    warmup_steps: int = Field(0, ge=0)
    """Steps (over the env's life) during which the reward is 0 while the averages settle."""
    clip_value: PosFloat | None = 5.0
    """Clip the reward to [-clip_value, clip_value]; null for no clip."""


class EnvConfig(Strict):
    """The intraday trading env."""

    lookback: int = Field(32, ge=1, le=1024)
    """Number of past bars (including the current one) of features in the observation."""
    features: list[str] = Field(default_factory=lambda: list(DEFAULT_FEATURES))
    """Causal feature specs, in observation order: built-in or registered names, talib:FUNC(k=v).output[/close],
    column:NAME, SYMBOL:feature (see docs/features.md)."""
    feature_modules: list[str] = Field(default_factory=list)
    """Python files (relative to the config's folder) or importable modules whose functions register features
    with backend.features.register_feature; their source is hashed into the config hash and shipped to workers."""
    reward: Literal["pnl", "log_return", "dsr"] = "pnl"
    """Reward: pnl (net change in equity), log_return, or dsr."""
    reward_scale: PosFloat = 100.0
    """Multiplier of pnl and log_return rewards (100 = rewards in percent)."""
    initial_capital: PosFloat = 100_000.0
    """Starting capital in currency (per-share and minimum commissions depend on it)."""
    max_position: float = Field(1.0, gt=0, le=10)
    """Largest absolute position as a fraction of equity (1.0 = fully invested)."""
    allow_short: bool = True
    """If false, actions in [-1, 1] map to positions in [0, max_position]."""
    forced_exit_minutes: PosFloat | None = None
    """Flatten this many minutes after the open (null: at the session close)."""
    rebalance_threshold: NonNegFloat = 0.02
    """Position changes smaller than this (fraction of equity) are not traded."""
    costs: CostConfig = Field(default_factory=CostConfig)
    """Trading costs."""
    dsr: DSRConfig = Field(default_factory=DSRConfig)
    """Differential Sharpe ratio reward settings."""

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("env.features is empty; list at least one feature")
        dupes = sorted({f for f in value if value.count(f) > 1})
        if dupes:
            raise ValueError(f"env.features lists {dupes} more than once")
        return value
