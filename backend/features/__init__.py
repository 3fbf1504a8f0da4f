"""Causal features: the registry and the built-ins.

``from backend.features import register_feature`` is the public import path for user features
(``env.feature_modules``); the code lives in the modules of this package.
"""

from backend.features.builtin import (
    FEATURES,
    MarketArrays,
    check_feature_names,
    compute_features,
    fit_normalisation,
    register_feature,
)

__all__ = [
    "FEATURES",
    "MarketArrays",
    "check_feature_names",
    "compute_features",
    "fit_normalisation",
    "register_feature",
]
