"""A user feature module (env.feature_modules): functions register with the same decorator as the built-ins."""

import numpy as np

from backend.features import register_feature


@register_feature("close_vs_high_10", "close relative to the highest high of the last 10 bars", warmup=9)
def close_vs_high_10(m):
    n = len(m.close)
    out = np.full(n, np.nan)
    for t in range(9, n):
        out[t] = m.close[t] / m.high[t - 9 : t + 1].max() - 1.0
    return out
