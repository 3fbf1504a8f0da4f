import math
from statistics import NormalDist

import numpy as np
import pytest

from backend.evaluation import statistics as st

N = NormalDist()


def test_psr_matches_the_formula_and_its_properties():
    sr, bench, n, skew, kurt = 0.1, 0.02, 500, -0.5, 5.0
    denom = math.sqrt((1 - skew * sr + (kurt - 1) / 4 * sr**2) / (n - 1))
    assert st.probabilistic_sharpe_ratio(sr, bench, n, skew, kurt) == pytest.approx(N.cdf((sr - bench) / denom))
    assert st.probabilistic_sharpe_ratio(0.05, 0.05, 100, 0, 3) == pytest.approx(0.5)
    # more observations → more confidence; fatter tails → less
    assert st.probabilistic_sharpe_ratio(sr, 0, 1000, 0, 3) > st.probabilistic_sharpe_ratio(sr, 0, 100, 0, 3)
    assert st.probabilistic_sharpe_ratio(sr, 0, 100, 0, 3) > st.probabilistic_sharpe_ratio(sr, 0, 100, 0, 30)
    assert math.isnan(st.probabilistic_sharpe_ratio(0.1, 0, 1, 0, 3))


def test_dsr_is_psr_against_the_expected_maximum():
    n_trials, var = 100, 0.002
    g = st.EULER_GAMMA
    sr0 = math.sqrt(var) * ((1 - g) * N.inv_cdf(1 - 1 / n_trials) + g * N.inv_cdf(1 - 1 / (n_trials * math.e)))
    assert st.expected_max_sharpe(n_trials, var) == pytest.approx(sr0)
    sr = 2.5 / math.sqrt(250)
    assert st.deflated_sharpe_ratio(sr, 1250, -3, 10, n_trials, var) == pytest.approx(
        st.probabilistic_sharpe_ratio(sr, sr0, 1250, -3, 10)
    )
    # one trial: nothing to deflate
    assert st.deflated_sharpe_ratio(sr, 1250, 0, 3, 1, 0.0) == st.probabilistic_sharpe_ratio(sr, 0, 1250, 0, 3)
    # more trials → a higher bar → a lower DSR
    assert st.deflated_sharpe_ratio(sr, 1250, 0, 3, 1000, var) < st.deflated_sharpe_ratio(sr, 1250, 0, 3, 10, var)


def test_min_track_record_length_reaches_the_confidence():
    sr, skew, kurt = 0.08, -1.0, 6.0
    n = st.min_track_record_length(sr, 0.0, skew, kurt, 0.95)
    assert st.probabilistic_sharpe_ratio(sr, 0.0, math.ceil(n), skew, kurt) >= 0.95
    assert st.probabilistic_sharpe_ratio(sr, 0.0, math.floor(n) - 1, skew, kurt) < 0.95
    assert st.min_track_record_length(0.0, 0.1, 0, 3) == math.inf


def test_moments_of_a_normal_sample():
    r = np.random.default_rng(3).normal(0.001, 0.01, 200_000)
    sr, skew, kurt, n = st.moments(r)
    assert n == 200_000 and sr == pytest.approx(0.1, abs=0.01)
    assert skew == pytest.approx(0, abs=0.03) and kurt == pytest.approx(3, abs=0.05)


def test_stationary_bootstrap_indices_are_wrapping_blocks():
    rng = np.random.default_rng(0)
    idx = st.stationary_bootstrap_indices(1000, 20.0, rng)
    assert idx.shape == (1000,) and idx.min() >= 0 and idx.max() < 1000
    steps = np.diff(idx)
    continued = (steps == 1) | (steps == -999)
    assert 0.9 < continued.mean() < 0.99  # mean block length 20 → ~95 % of steps continue a block


def test_bootstrap_ci_covers_the_truth_and_is_seeded():
    r = np.random.default_rng(5).normal(0.0005, 0.01, 3000)
    ppy = 252.0
    sample = r.mean() / r.std(ddof=1) * math.sqrt(ppy)
    lo, hi = st.bootstrap_sharpe_ci(r, ppy, n_boot=500, seed=1)
    assert lo < sample < hi and hi - lo < 2.0
    assert st.bootstrap_sharpe_ci(r, ppy, n_boot=500, seed=1) == (lo, hi)
    assert all(math.isnan(x) for x in st.bootstrap_sharpe_ci(np.zeros(50), ppy))
