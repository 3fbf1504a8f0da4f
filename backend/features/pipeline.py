"""The feature pipeline behind ``builtin.check_feature_names`` / ``builtin.compute_features``: every spec kind."""

from __future__ import annotations

import numpy as np

from backend.features import builtin, specs, user
from backend.features.builtin import MarketArrays


def check_feature_names(
    names: list[str], *, columns: list[str] | None = None, context: list[str] | None = None
) -> None:
    """Every spec of ``env.features`` parses (backend.features.specs); InputError with a did-you-mean hint."""
    specs.parse_all(names, columns=columns, context=context)


def compute_features(market: MarketArrays, names: list[str]) -> np.ndarray:
    """(n_bars, n_features) float32; warm-up NaN becomes 0. Any spec kind (backend.features.specs)."""
    user.install(getattr(market, "feature_sources", ()))
    parsed = specs.parse_all(names)
    out = np.empty((len(market), len(names)), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, spec in enumerate(parsed):
            col = np.asarray(specs.compute_one(market, spec), dtype=np.float64)
            if col.shape != (len(market),):
                raise ValueError(f"feature {spec.text} returned shape {col.shape}, expected ({len(market)},)")
            out[:, j] = np.nan_to_num(col, nan=0.0, posinf=0.0, neginf=0.0)
    return out


builtin.PIPELINE.update(check=check_feature_names, compute=compute_features, warmup=specs.warmup_bars)
