"""Statistics a sceptical reviewer asks for: PSR, DSR, MinTRL, bootstrap CIs, PBO, SPA/StepM, IQM.

Pure functions of arrays. Sharpe ratios here are **per period** (per bar: mean / std of bar
returns, not annualised) unless a function says otherwise, and kurtosis is **non-excess** (3 for a
normal distribution), as in Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier" (2012)
and "The Deflated Sharpe Ratio" (2014).

Functions that need more data than they were given raise :class:`StatisticRefused` (a
``ValueError``) whose message says why and what would fix it; callers that must not fail (the
sweep) record that message as the statistic's ``reason``.

Resampling uses the ``arch`` package (stationary bootstrap of Politis & Romano 1994 with the
block length of Politis & White 2004; Hansen's SPA and Romano & Wolf's StepM). The stratified
bootstrap of rliable (Agarwal et al. 2021) is written here in NumPy, vectorised over replicates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, cast

import numpy as np

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()

MIN_BARS_PER_BLOCK = 20
"""CSCV: fewest bars in each of the S blocks (an in-sample half then holds at least 10·S bars)."""
MIN_SPA_BARS = 100
"""SPA / Reality Check / StepM: fewest aligned bars (the block-length estimate and the bootstrap need them)."""


class StatisticRefused(ValueError):
    """The data cannot support the statistic; the message says why and how to get one."""


# ----------------------------------------------------------------------------- Sharpe-ratio inference


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


# ----------------------------------------------------------------------------- stationary bootstrap (arch)


def optimal_mean_block(series: np.ndarray) -> float:
    """Mean block length for a stationary bootstrap (Politis & White 2004, via ``arch``).

    ``series`` is 1-D or (T × k); for several columns the median of their lengths is used, so one
    block length serves a joint resample. Constant columns are ignored; the result lies in [1, T].
    """
    from arch.bootstrap import optimal_block_length

    x = np.asarray(series, dtype=np.float64)
    x = x.reshape(len(x), -1)
    live = x[:, x.std(axis=0) > 1e-15]
    if len(x) < 10 or live.shape[1] == 0:
        return 1.0
    lengths = np.asarray(optimal_block_length(live)["stationary"], dtype=np.float64)
    lengths = lengths[np.isfinite(lengths)]
    block = float(np.median(lengths)) if len(lengths) else 1.0
    return min(max(block, 1.0), float(len(x)))


def bootstrap_sharpe_ci(
    returns: np.ndarray,
    periods_per_year: float,
    n_boot: int = 2000,
    confidence: float = 0.95,
    mean_block: float | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of the annualised Sharpe under ``arch``'s stationary bootstrap.

    ``mean_block`` defaults to :func:`optimal_mean_block` of the returns. A resample with zero
    standard deviation scores 0. Fewer than 3 returns, or constant returns, give ``(nan, nan)``.
    """
    from arch.bootstrap import StationaryBootstrap

    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 3 or not r.std() > 1e-15:
        return math.nan, math.nan
    block = mean_block if mean_block is not None else optimal_mean_block(r)
    scale = math.sqrt(periods_per_year)

    def sharpe(x: np.ndarray) -> np.ndarray:  # arch's statistic functions return arrays
        sd = x.std(ddof=1)
        return np.array([x.mean() / sd * scale if sd > 1e-15 else 0.0])

    # arch annotates block_size as int, but StationaryBootstrap only uses it as the mean block length
    # (p = 1 / block_size), a real number: arch's own optimal_block_length returns floats
    bs = StationaryBootstrap(block, r, seed=np.random.default_rng(seed))  # type: ignore[arg-type]
    ci = bs.conf_int(sharpe, reps=n_boot, method="percentile", size=confidence)
    return float(ci[0, 0]), float(ci[1, 0])


def summary_statistics(returns: np.ndarray, periods_per_year: float, seed: int = 0) -> dict[str, float | int]:
    """What every run summary carries for its stitched out-of-sample returns."""
    sr, skew, kurt, n = moments(returns)
    block = optimal_mean_block(returns)
    lo, hi = bootstrap_sharpe_ci(returns, periods_per_year, mean_block=block, seed=seed)
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
        "sharpe_ci_mean_block": block,
        "min_track_record_bars": min_track_record_length(sr, 0.0, skew, kurt),
    }


# ----------------------------------------------------------------------------- PBO by CSCV


def _half_sharpes(
    s1: np.ndarray, s2: np.ndarray, mu: np.ndarray, members: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar Sharpe (mean / sample std) of each trial on each in-sample half and its complement.

    ``s1``/``s2``: per-block sums and sums of squares of the *centred* returns (S × N); ``mu``: the
    centring; ``members``: (C × S) 0/1 membership of the in-sample halves; ``n``: bars per half.
    A trial with zero variance on a half scores 0.
    """
    out = []
    for sums, squares in ((members @ s1, members @ s2), (s1.sum(0) - members @ s1, s2.sum(0) - members @ s2)):
        mean_c = sums / n
        var = np.maximum(squares - n * mean_c**2, 0.0) / (n - 1)
        sd = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(sd > 1e-300, (mean_c + mu) / sd, 0.0))
    return out[0], out[1]


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ordinal ranks along the last axis (1 = lowest; ties by column order)."""
    return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable") + 1


def probability_of_backtest_overfitting(returns: Any, n_partitions: int = 16) -> dict[str, Any]:
    """Probability of Backtest Overfitting by combinatorially symmetric cross-validation (CSCV).

    Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", Journal of
    Computational Finance 20(4), 2017 (SSRN 2326253, 2015). ``returns`` is (T bars × N trials).
    The first ``T - T mod S`` rows are cut into ``S = n_partitions`` contiguous equal blocks;
    each of the C(S, S/2) ways to pick S/2 blocks is the in-sample half once, the other blocks
    its out-of-sample half. On each half the trial with the best in-sample per-bar Sharpe is
    chosen; ω = (rank of its out-of-sample Sharpe among the N, 1 = worst, ties averaged) / (N + 1),
    λ = ln(ω / (1 − ω)), and PBO = share of halves with λ ≤ 0. In-sample ties go to the first
    trial; a trial with zero variance on a half scores Sharpe 0.

    Returns ``pbo``; ``logits`` (λ per half, in ``itertools.combinations`` order); ``chosen``
    (index of the chosen trial per half); ``degradation`` (least-squares ``slope`` and
    ``intercept`` of the chosen trial's out-of-sample on in-sample Sharpe, and both arrays);
    ``probability_of_loss`` (share of halves where the chosen trial's out-of-sample Sharpe < 0);
    ``rank_counts`` (N × N: how often a trial ranked i-th in-sample ranks j-th out of sample,
    1-based ranks, best = N); and ``n_partitions``, ``n_trials``, ``n_bars`` (used),
    ``n_bars_dropped``, ``bars_per_block``, ``n_combinations``.

    Raises :class:`StatisticRefused` for fewer than 2 trials, an odd S or S < 2, non-finite
    returns, or fewer than :data:`MIN_BARS_PER_BLOCK` bars per block.
    """
    x, s, block, t_all = _pbo_matrix(returns, n_partitions)
    n_trials = x.shape[1]
    is_sr, oos_sr = _cscv_sharpes(x, s, block)
    chosen = np.argmax(is_sr, axis=1)
    rows = np.arange(len(is_sr))
    is_best, oos_best = is_sr[rows, chosen], oos_sr[rows, chosen]
    logits = _logits(oos_sr, oos_best, n_trials)
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "logits": logits,
        "chosen": chosen,
        "degradation": _degradation(is_best, oos_best),
        "probability_of_loss": float(np.mean(oos_best < 0.0)),
        "rank_counts": _rank_counts(is_sr, oos_sr),
        "n_partitions": s,
        "n_trials": n_trials,
        "n_bars": block * s,
        "n_bars_dropped": t_all - block * s,
        "bars_per_block": block,
        "n_combinations": len(is_sr),
    }


def _pbo_matrix(returns: Any, n_partitions: int) -> tuple[np.ndarray, int, int, int]:
    """The (bars × trials) matrix cut to S whole blocks: (matrix, S, bars per block, bars given); refusals."""
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise StatisticRefused(f"PBO needs a (bars × trials) matrix; got an array of shape {x.shape}")
    t_all, n_trials = x.shape
    s = int(n_partitions)
    if n_trials < 2:
        raise StatisticRefused(f"PBO needs at least 2 trials to choose among; got {n_trials}")
    if s < 2 or s % 2:
        raise StatisticRefused(f"PBO needs an even number of partitions ≥ 2; got {n_partitions}")
    block = t_all // s
    if block < MIN_BARS_PER_BLOCK:
        raise StatisticRefused(
            f"PBO with {s} partitions of {t_all} bars leaves {block} bars per block; it needs at least "
            f"{MIN_BARS_PER_BLOCK} ({MIN_BARS_PER_BLOCK * s} bars): use fewer partitions or longer out-of-sample spans"
        )
    x = x[: block * s]
    if not np.isfinite(x).all():
        bad = sorted(set(np.nonzero(~np.isfinite(x))[1].tolist()))
        raise StatisticRefused(f"PBO needs finite returns; trials {bad} hold NaN or inf")
    return x, s, block, t_all


def _cscv_sharpes(x: np.ndarray, s: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's per-bar Sharpe on every in-sample half (C(S, S/2) rows, ``itertools.combinations`` order)
    and on its out-of-sample complement."""
    mu = x.mean(axis=0)
    blocks = (x - mu).reshape(s, block, x.shape[1])
    s1, s2 = blocks.sum(axis=1), (blocks**2).sum(axis=1)
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    members = np.zeros((len(combos), s))
    members[np.arange(len(combos))[:, None], combos] = 1.0
    return _half_sharpes(s1, s2, mu, members, block * (s // 2))


def _logits(oos_sr: np.ndarray, oos_best: np.ndarray, n_trials: int) -> np.ndarray:
    """λ = ln(ω / (1 − ω)), ω the chosen trial's out-of-sample rank (ties averaged) over N + 1."""
    below = (oos_sr < oos_best[:, None]).sum(axis=1)
    ties = (oos_sr == oos_best[:, None]).sum(axis=1)
    omega = (below + (ties + 1) / 2.0) / (n_trials + 1)
    return np.log(omega / (1.0 - omega))


def _rank_counts(is_sr: np.ndarray, oos_sr: np.ndarray) -> np.ndarray:
    """N × N: how often a trial ranked i-th in sample ranks j-th out of sample."""
    n_trials = is_sr.shape[1]
    return np.bincount(
        ((_ranks(is_sr) - 1) * n_trials + (_ranks(oos_sr) - 1)).ravel(), minlength=n_trials * n_trials
    ).reshape(n_trials, n_trials)


def _degradation(is_best: np.ndarray, oos_best: np.ndarray) -> dict[str, Any]:
    """Least-squares line of the chosen trial's out-of-sample on its in-sample Sharpe (NaN if in-sample is flat)."""
    if np.ptp(is_best) > 0:
        slope, intercept = np.polyfit(is_best, oos_best, 1)
    else:
        slope, intercept = math.nan, math.nan
    return {"slope": float(slope), "intercept": float(intercept), "in_sample": is_best, "out_of_sample": oos_best}


# ----------------------------------------------------------------------------- data snooping (arch)


def _excess_returns(models: np.ndarray, benchmark: np.ndarray) -> np.ndarray:
    """(T × k) model returns minus the benchmark's, after the refusals of :func:`data_snooping_tests`."""
    m = np.asarray(models, dtype=np.float64)
    m = m.reshape(len(m), -1)
    b = np.asarray(benchmark, dtype=np.float64)
    t, k = m.shape
    if k < 1:
        raise StatisticRefused("SPA needs at least one model")
    if b.shape != (t,):
        raise StatisticRefused(f"SPA: the benchmark has shape {b.shape}; the models have {t} bars")
    if t < MIN_SPA_BARS:
        raise StatisticRefused(f"SPA needs at least {MIN_SPA_BARS} bars; got {t}")
    if not (np.isfinite(m).all() and np.isfinite(b).all()):
        raise StatisticRefused("SPA needs finite returns; the models or the benchmark hold NaN or inf")
    return m - b[:, None]


def data_snooping_tests(
    models: np.ndarray,
    benchmark: np.ndarray,
    reps: int = 1000,
    size: float = 0.05,
    seed: int = 0,
    block_size: float | None = None,
) -> dict[str, Any]:
    """Hansen's SPA, White's Reality Check and Romano–Wolf StepM of ``models`` against ``benchmark``.

    ``models`` are (T × k) per-bar returns, ``benchmark`` the benchmark's (T,) returns on the same
    bars; arch is given losses (negative returns), so a model beats the benchmark by a higher mean
    return. The null is that no model beats the benchmark in expectation.

    ``arch`` 8.0 does not studentise the statistic (its ``studentize`` flag changes nothing; only the
    variance used for the consistent recentring), so each excess-return series is divided by its
    standard error ω̂ₖ/√T first, as in Hansen (2005, eq. 5), with ω̂ₖ² = T · var of the bootstrap
    means (arch's ``StationaryBootstrap.apply``). ``nested=True`` keeps arch's variance estimate
    linear in T. One stationary-bootstrap block length serves every column: the median of
    :func:`optimal_mean_block` over the excess-return columns, rounded up.

    Returns ``spa_pvalue`` (Hansen's consistent p-value), ``spa_pvalue_lower``,
    ``reality_check_pvalue`` (the upper p-value: White's recentring, on the studentised
    statistic), ``stepm_superior`` (column indices StepM finds better at family-wise error
    ``size``), ``mean_excess`` and ``t_stat`` per column, and ``block_size``, ``reps``,
    ``n_bars``, ``n_models``. Refuses (:class:`StatisticRefused`) fewer than
    :data:`MIN_SPA_BARS` bars, no model, or non-finite values.
    """
    from arch.bootstrap import StationaryBootstrap, StepM

    excess = _excess_returns(models, benchmark)
    t, k = excess.shape
    block = math.ceil(block_size if block_size is not None else optimal_mean_block(excess))
    rng = np.random.default_rng(seed)
    boot_means = StationaryBootstrap(block, excess, seed=rng).apply(lambda x: x.mean(axis=0), reps=reps)
    omega = np.sqrt(t * boot_means.var(axis=0))
    live = omega > 1e-12 * np.maximum(np.abs(excess).max(axis=0), 1e-300)
    scaled = np.where(live, excess / np.where(live, omega, 1.0), 0.0)
    step = StepM(np.zeros(t), -scaled, size=size, block_size=block, reps=reps, nested=True, seed=rng)
    step.compute()
    step.spa.compute()  # StepM leaves the p-values of its last step; recompute them on every model
    p = step.spa.pvalues
    return {
        "spa_pvalue": float(p["consistent"]),
        "spa_pvalue_lower": float(p["lower"]),
        "reality_check_pvalue": float(p["upper"]),
        "stepm_superior": sorted(int(i) for i in cast(list[int], step.superior_models)),  # ndarray in: indices
        "stepm_size": size,
        "mean_excess": excess.mean(axis=0),
        "t_stat": np.where(live, math.sqrt(t) * excess.mean(axis=0) / np.where(live, omega, 1.0), 0.0),
        "block_size": block,
        "reps": reps,
        "n_bars": t,
        "n_models": k,
    }


# ----------------------------------------------------------------------------- seeds × windows (rliable)


def interquartile_mean(scores: np.ndarray, axis: int | None = None) -> Any:
    """Mean of the middle 50 % (``scipy.stats.trim_mean`` cutting 25 % at each end), as in rliable."""
    from scipy.stats import trim_mean

    return trim_mean(np.asarray(scores, dtype=np.float64), 0.25, axis=axis)


def _per_task(scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    tasks = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    return [s[np.isfinite(s)] for s in tasks]


def _resample_tasks(tasks: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified bootstrap: within each task, draw its runs with replacement; (n_boot × runs) each."""
    return [s[rng.integers(0, len(s), size=(n_boot, len(s)))] if len(s) else s.reshape(0, 0) for s in tasks]


def iqm_ci(
    scores: Sequence[np.ndarray], n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of all scores and its stratified-bootstrap percentile CI (Agarwal et al., NeurIPS 2021).

    ``scores[m]`` holds the runs (seeds) of task (window) m; non-finite scores are dropped. Runs
    are resampled with replacement within each task. With no score: ``(nan, nan, nan)``; with no
    task holding two runs there is nothing to resample and the CI is ``(nan, nan)``.
    """
    tasks = [s for s in _per_task(scores) if len(s)]
    if not tasks:
        return math.nan, math.nan, math.nan
    point = float(interquartile_mean(np.concatenate(tasks)))
    if max(len(s) for s in tasks) < 2:
        return point, math.nan, math.nan
    draws = np.concatenate(_resample_tasks(tasks, n_boot, np.random.default_rng(seed)), axis=1)
    lo, hi = np.quantile(interquartile_mean(draws, axis=1), [(1 - confidence) / 2, (1 + confidence) / 2])
    return point, float(lo), float(hi)


def _p_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) over all run pairs; x (..., n), y (..., m) → (...)."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


def probability_of_improvement(x_scores: Sequence[np.ndarray], y_scores: Sequence[np.ndarray]) -> float:
    """rliable's P(X > Y): the Mann–Whitney probability per task, averaged over the tasks both have runs on."""
    pairs = [(x, y) for x, y in zip(_per_task(x_scores), _per_task(y_scores), strict=True) if len(x) and len(y)]
    return float(np.mean([_p_greater(x, y) for x, y in pairs])) if pairs else math.nan


def probability_of_improvement_matrix(
    scores: Mapping[str, Sequence[np.ndarray]], n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """P(row > column) for every pair of algorithms (configs), with stratified-bootstrap percentile CIs.

    ``scores[name][m]`` holds the runs of ``name`` on task m; every name has the same tasks.
    Each replicate resamples every algorithm's runs within every task independently. Returns
    ``names`` and (A × A) arrays ``p``, ``ci_low``, ``ci_high`` (diagonal 0.5; nan where two
    algorithms share no task).
    """
    names = list(scores)
    tasks = {n: _per_task(scores[n]) for n in names}
    n_tasks = {len(v) for v in tasks.values()}
    if len(n_tasks) > 1:
        raise ValueError(f"every algorithm needs the same tasks; got task counts {sorted(n_tasks)}")
    rng = np.random.default_rng(seed)
    draws = {n: _resample_tasks(tasks[n], n_boot, rng) for n in names}
    a = len(names)
    p, lo, hi = (np.full((a, a), math.nan) for _ in range(3))
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    for i, j in itertools.combinations(range(a), 2):
        xi, yj = tasks[names[i]], tasks[names[j]]
        shared = [m for m in range(len(xi)) if len(xi[m]) and len(yj[m])]
        if not shared:
            continue
        p[i, j] = np.mean([_p_greater(xi[m], yj[m]) for m in shared])
        boot = np.mean([_p_greater(draws[names[i]][m], draws[names[j]][m]) for m in shared], axis=0)
        lo[i, j], hi[i, j] = np.quantile(boot, q)
        p[j, i], lo[j, i], hi[j, i] = 1 - p[i, j], 1 - hi[i, j], 1 - lo[i, j]
    np.fill_diagonal(p, 0.5)
    np.fill_diagonal(lo, 0.5)
    np.fill_diagonal(hi, 0.5)
    return {"names": names, "p": p, "ci_low": lo, "ci_high": hi}
