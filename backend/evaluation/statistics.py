"""Statistics a sceptical reviewer asks for: PSR, DSR, a bootstrap CI of Sharpe, MinTRL.

Pure functions. Sharpe ratios here are **per period** (per bar: mean / std of bar returns,
not annualised) and kurtosis is **non-excess** (3 for a normal distribution), as in
Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier" (2012) and "The Deflated
Sharpe Ratio" (2014).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe, skewness and (non-excess) kurtosis of a return series, and its length."""
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 2:
        return math.nan, math.nan, math.nan, n
    sd = r.std(ddof=1)
    if not sd > 1e-15:
        return math.nan, math.nan, math.nan, n
    z = (r - r.mean()) / r.std(ddof=0)
    return float(r.mean() / sd), float(np.mean(z**3)), float(np.mean(z**4)), n


def _sr_std(sharpe: float, skew: float, kurtosis: float, n_obs: int) -> float:
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    return math.sqrt(max(var, 1e-300) / (n_obs - 1))


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """P(true Sharpe > benchmark) given an observed per-period Sharpe over ``n_obs`` returns."""
    if n_obs < 2 or any(map(math.isnan, (sharpe, benchmark, skew, kurtosis))):
        return math.nan
    return _N.cdf((sharpe - benchmark) / _sr_std(sharpe, skew, kurtosis, n_obs))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-period Sharpe of ``n_trials`` unskilled trials (the DSR benchmark)."""
    if n_trials < 1 or sharpe_variance < 0:
        return math.nan
    if n_trials == 1:
        return 0.0
    sd = math.sqrt(sharpe_variance)
    return sd * (
        (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n_trials * math.e))
    )


def deflated_sharpe_ratio(
    sharpe: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sharpe_variance: float
) -> float:
    """PSR against the expected maximum Sharpe of ``n_trials`` trials with the given Sharpe variance."""
    return probabilistic_sharpe_ratio(sharpe, expected_max_sharpe(n_trials, sharpe_variance), n_obs, skew, kurtosis)


def min_track_record_length(
    sharpe: float, benchmark: float, skew: float, kurtosis: float, confidence: float = 0.95
) -> float:
    """Returns needed for PSR(benchmark) to reach ``confidence``; inf if sharpe <= benchmark."""
    if any(map(math.isnan, (sharpe, benchmark, skew, kurtosis))):
        return math.nan
    if sharpe <= benchmark:
        return math.inf
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    return 1.0 + var * (_N.inv_cdf(confidence) / (sharpe - benchmark)) ** 2


def stationary_bootstrap_indices(n: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """One resample of 0..n-1 (Politis & Romano 1994): blocks of geometric length, wrapping around."""
    p = 1.0 / max(mean_block, 1.0)
    starts = rng.random(n) < p
    starts[0] = True
    new_pos = rng.integers(0, n, n)
    idx = np.empty(n, dtype=np.int64)
    # position k is a block start (take new_pos[k]) or the previous position + 1 (mod n)
    block_id = np.cumsum(starts) - 1
    first_of_block = np.flatnonzero(starts)
    offset = np.arange(n) - first_of_block[block_id]
    idx[:] = (new_pos[first_of_block][block_id] + offset) % n
    return idx


def bootstrap_sharpe_ci(
    returns: np.ndarray,
    periods_per_year: float,
    n_boot: int = 2000,
    confidence: float = 0.95,
    mean_block: float | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of the annualised Sharpe under a stationary block bootstrap.

    ``mean_block`` defaults to n^(1/3) bars (a common rule for dependent data).
    """
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 3 or not r.std() > 1e-15:
        return math.nan, math.nan
    block = mean_block if mean_block is not None else max(1.0, n ** (1 / 3))
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        x = r[stationary_bootstrap_indices(n, block, rng)]
        sd = x.std(ddof=1)
        stats[b] = x.mean() / sd * math.sqrt(periods_per_year) if sd > 1e-15 else 0.0
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def summary_statistics(returns: np.ndarray, periods_per_year: float, seed: int = 0) -> dict[str, float | int]:
    """What every run summary carries for its stitched out-of-sample returns."""
    sr, skew, kurt, n = moments(returns)
    lo, hi = bootstrap_sharpe_ci(returns, periods_per_year, seed=seed)
    return {
        "n_obs": n,
        "sharpe_per_bar": sr,
        "skew": skew,
        "kurtosis": kurt,
        "psr": probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurt),
        "psr_benchmark": 0.0,
        "sharpe_ci_low": lo,
        "sharpe_ci_high": hi,
        "sharpe_ci_confidence": 0.95,
        "min_track_record_bars": min_track_record_length(sr, 0.0, skew, kurt),
    }
