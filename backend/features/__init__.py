"""Causal features: the registry and the built-ins.

``from backend.features import register_feature`` is the public import path for user features
(``env.feature_modules``); the code lives in the modules of this package.
"""

from backend.features.builtin import (
    FEATURE_WARMUP,
    FEATURES,
    SESSION,
    MarketArrays,
    check_feature_names,
    compute_features,
    fit_normalisation,
    register_feature,
    warmup_bars,
)

__all__ = [
    "FEATURES",
    "FEATURE_WARMUP",
    "SESSION",
    "MarketArrays",
    "check_feature_names",
    "compute_features",
    "fit_normalisation",
    "register_feature",
    "warmup_bars",
]
