"""Causal features: the registry and the built-ins.

``from backend.features import register_feature`` is the public import path for user features
(``env.feature_modules``); the code lives in the modules of this package.
"""

from backend.config import models as _models
from backend.features import pipeline as _pipeline  # noqa: F401 - sets builtin.PIPELINE
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
from backend.features.specs import nonbuiltin_identity


def _config_feature_identity(config):
    return nonbuiltin_identity(list(config.env.features))


def _register_identity_hook() -> None:
    if _config_feature_identity not in _models.FEATURE_IDENTITY:
        _models.FEATURE_IDENTITY.append(_config_feature_identity)


_register_identity_hook()

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
