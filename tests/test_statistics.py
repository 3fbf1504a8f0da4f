import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, rankdata

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


def test_optimal_block_follows_the_dependence():
    rng = np.random.default_rng(2)
    iid = rng.normal(0, 1, 4000)
    ar = np.zeros(4000)
    for t in range(1, 4000):
        ar[t] = 0.8 * ar[t - 1] + iid[t]
    assert 1.0 <= st.optimal_mean_block(iid) < 3.0
    assert st.optimal_mean_block(ar) > 10.0
    assert st.optimal_mean_block(np.zeros(500)) == 1.0


def test_bootstrap_ci_covers_the_truth_and_is_seeded():
    r = np.random.default_rng(5).normal(0.0005, 0.01, 3000)
    ppy = 252.0
    sample = r.mean() / r.std(ddof=1) * math.sqrt(ppy)
    lo, hi = st.bootstrap_sharpe_ci(r, ppy, n_boot=500, seed=1)
    assert lo < sample < hi and hi - lo < 2.0
    assert st.bootstrap_sharpe_ci(r, ppy, n_boot=500, seed=1) == (lo, hi)
    assert st.bootstrap_sharpe_ci(r, ppy, n_boot=500, seed=2) != (lo, hi)
    assert all(math.isnan(x) for x in st.bootstrap_sharpe_ci(np.zeros(50), ppy))
    # ±1.96 standard errors of an iid Sharpe (Lo 2002): the bootstrap agrees within 15 %
    se = math.sqrt((1 + (sample / math.sqrt(ppy)) ** 2 / 2) / len(r)) * math.sqrt(ppy)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_summary_statistics_keys():
    s = st.summary_statistics(np.random.default_rng(0).normal(0.001, 0.01, 500), 252.0)
    assert set(s) == {
        "n_obs", "sharpe_per_bar", "skew", "kurtosis", "psr", "psr_benchmark", "sharpe_ci_low",
        "sharpe_ci_high", "sharpe_ci_confidence", "sharpe_ci_mean_block", "min_track_record_bars",
    }  # fmt: skip
    assert s["sharpe_ci_low"] < s["sharpe_per_bar"] * math.sqrt(252) < s["sharpe_ci_high"]


# ----------------------------------------------------------------------------- PBO


def pbo_by_definition(x: np.ndarray, s: int):
    """The paper's CSCV written out literally: split, recombine, rank — one combination at a time."""
    n = x.shape[1]
    t = len(x) // s * s
    blocks = np.split(x[:t], s)
    logits, pairs = [], []
    for combo in itertools.combinations(range(s), s // 2):
        train = np.concatenate([blocks[i] for i in combo])
        test = np.concatenate([blocks[i] for i in range(s) if i not in combo])
        sr_train = train.mean(0) / train.std(0, ddof=1)
        sr_test = test.mean(0) / test.std(0, ddof=1)
        best = int(np.argmax(sr_train))
        omega = rankdata(sr_test)[best] / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
        pairs.append((sr_train[best], sr_test[best]))
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits, np.array(pairs)


def test_pbo_matches_the_definition_by_brute_force():
    rng = np.random.default_rng(11)
    x = rng.normal(0.0002, 0.01, (247, 5)) * rng.uniform(0.5, 2, 5)  # 247 = 6 × 41 + 1: one bar dropped
    r = st.probability_of_backtest_overfitting(x, n_partitions=6)
    pbo, logits, pairs = pbo_by_definition(x, 6)
    assert r["n_combinations"] == math.comb(6, 3) == len(logits)
    assert (r["n_partitions"], r["n_trials"], r["n_bars"], r["n_bars_dropped"], r["bars_per_block"]) == (
        6,
        5,
        246,
        1,
        41,
    )
    assert r["pbo"] == pbo
    np.testing.assert_allclose(r["logits"], logits, rtol=1e-12)
    np.testing.assert_allclose(r["degradation"]["in_sample"], pairs[:, 0], rtol=1e-9)
    np.testing.assert_allclose(r["degradation"]["out_of_sample"], pairs[:, 1], rtol=1e-9)
    slope, intercept = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
    assert r["degradation"]["slope"] == pytest.approx(slope, rel=1e-9)
    assert r["degradation"]["intercept"] == pytest.approx(intercept, rel=1e-6, abs=1e-12)
    assert r["probability_of_loss"] == np.mean(pairs[:, 1] < 0)
    assert r["rank_counts"].sum() == len(logits) * 5 and (r["rank_counts"].sum(0) == len(logits)).all()
    tied = np.column_stack([x, x[:, 2]])  # a duplicated trial: in-sample ties go to the first, OOS ranks average
    r = st.probability_of_backtest_overfitting(tied, n_partitions=6)
    pbo, logits, _ = pbo_by_definition(tied, 6)
    assert r["pbo"] == pbo and set(r["chosen"].tolist()) <= {0, 1, 2, 3, 4}
    np.testing.assert_allclose(r["logits"], logits, rtol=1e-12)


def test_pbo_of_pure_noise_is_about_one_half():
    pbos = [
        st.probability_of_backtest_overfitting(np.random.default_rng(s).normal(0, 0.01, (800, 8)))["pbo"]
        for s in range(20)
    ]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.1)


def test_pbo_of_a_real_edge_is_near_zero():
    x = np.random.default_rng(1).normal(0, 0.01, (1600, 10))
    x[:, 3] += 0.002  # a per-bar Sharpe of 0.2 among nine noise trials
    r = st.probability_of_backtest_overfitting(x)
    assert r["pbo"] < 0.02 and r["probability_of_loss"] < 0.02
    assert np.bincount(r["chosen"]).argmax() == 3


def test_pbo_when_the_in_sample_best_is_the_out_of_sample_worst():
    # every trial's returns sum to zero over the sample: a good half forces an equally bad other half
    x = np.random.default_rng(2).normal(0, 0.01, (1600, 10))
    x -= x.mean(axis=0)
    r = st.probability_of_backtest_overfitting(x)
    assert r["pbo"] > 0.95 and r["degradation"]["slope"] < 0
    assert r["rank_counts"][-1, 0] > r["rank_counts"][-1, -1]  # best in sample lands at the bottom


@pytest.mark.parametrize(
    ("shape", "s", "match"),
    [((800, 1), 16, "at least 2 trials"), ((800, 4), 7, "even number"), ((800, 4), 0, "even number"),
     ((300, 4), 16, "at least 20"), ((800,), 16, "matrix")],
)  # fmt: skip
def test_pbo_refuses_with_a_reason(shape, s, match):
    with pytest.raises(st.StatisticRefused, match=match):
        st.probability_of_backtest_overfitting(np.ones(shape), s)
    assert issubclass(st.StatisticRefused, ValueError)


def test_pbo_is_fast_for_sixteen_partitions():
    import time

    x = np.random.default_rng(0).normal(0, 0.01, (20_000, 40))
    t0 = time.perf_counter()
    r = st.probability_of_backtest_overfitting(x, 16)
    assert r["n_combinations"] == 12_870 and time.perf_counter() - t0 < 3.0


# ----------------------------------------------------------------------------- SPA / RC / StepM


def test_spa_finds_a_real_edge_and_names_it():
    rng = np.random.default_rng(3)
    models = rng.normal(0, 0.01, (2000, 6))
    models[:, 4] += 0.0012  # t ≈ 5.4
    bench = rng.normal(0, 0.01, 2000) * 0.3
    r = st.data_snooping_tests(models, bench, reps=500, seed=0)
    assert r["spa_pvalue"] < 0.01 and r["reality_check_pvalue"] < 0.01
    assert r["stepm_superior"] == [4]
    assert r["spa_pvalue_lower"] <= r["spa_pvalue"] <= r["reality_check_pvalue"]
    assert r["t_stat"][4] > 3.5 and r["n_bars"] == 2000 and r["n_models"] == 6


def test_spa_without_an_edge_rejects_at_its_nominal_rate():
    pvalues = []
    for k in range(20):
        rng = np.random.default_rng(100 + k)
        r = st.data_snooping_tests(rng.normal(0, 0.01, (1000, 5)), rng.normal(0, 0.005, 1000), reps=300, seed=k)
        pvalues.append(r["spa_pvalue"])
    pvalues = np.array(pvalues)
    assert 0.3 < pvalues.mean() < 0.7 and (pvalues < 0.05).mean() <= 0.15


def test_spa_is_studentised_unlike_arch_alone():
    """arch 8.0's SPA ranks raw mean differences (its studentize flag has no effect), so a noisy model
    hides a steady one; dividing each excess series by its standard error first (Hansen 2005) finds it."""
    from arch.bootstrap import SPA

    rng = np.random.default_rng(4)
    models = np.column_stack([rng.normal(0.08, 1, 3000), rng.normal(0, 25, 3000), rng.normal(-0.1, 25, 3000)])
    raw = SPA(np.zeros(3000), -models, block_size=1, reps=1000, seed=1, studentize=True)
    raw.compute()
    assert raw.pvalues["consistent"] > 0.05
    ours = st.data_snooping_tests(models, np.zeros(3000), reps=1000, seed=1)
    assert ours["spa_pvalue"] < 0.01 and ours["stepm_superior"] == [0]


def test_spa_is_seeded_and_refuses_short_or_broken_input():
    rng = np.random.default_rng(5)
    m, b = rng.normal(0, 0.01, (300, 3)), rng.normal(0, 0.01, 300)
    a1, a2 = (st.data_snooping_tests(m, b, reps=200, seed=7) for _ in range(2))
    assert a1["spa_pvalue"] == a2["spa_pvalue"] and a1["block_size"] == a2["block_size"]
    with pytest.raises(st.StatisticRefused, match="at least 100 bars"):
        st.data_snooping_tests(m[:50], b[:50])
    m[3, 1] = np.nan
    with pytest.raises(st.StatisticRefused, match="finite"):
        st.data_snooping_tests(m, b)
    flat = st.data_snooping_tests(np.zeros((300, 2)), np.zeros(300), reps=100)  # identical to the benchmark
    assert flat["stepm_superior"] == [] and flat["t_stat"].tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- IQM and P(A > B)


def test_iqm_by_hand():
    assert st.interquartile_mean(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # 8 scores: mean of 3, 4, 5, 6
    point, lo, hi = st.iqm_ci([np.array([1.0, 2, 3, 4]), np.array([5.0, 6, 7, 8])])
    assert point == pytest.approx(4.5) and lo < 4.5 < hi


def test_iqm_stratified_bootstrap_against_the_enumerated_distribution():
    # window A runs {0, 1}, window B runs {2, 10}: each resample is one of 4 × 4 equally likely draws.
    # The IQM of 4 scores is the mean of the middle two; its lowest value 1 (A = 0,0; B = 2,2) and its
    # highest 5.5 (A = 1,1; B = 10,10) each have probability 1/16 > 2.5 %: they are the 95 % CI.
    draws = itertools.product(itertools.product([0, 1], repeat=2), itertools.product([2, 10], repeat=2))
    exact = sorted(np.mean(sorted([*a, *b])[1:3]) for a, b in draws)
    assert (exact[0], exact[-1]) == (1.0, 5.5)
    point, lo, hi = st.iqm_ci([np.array([0.0, 1.0]), np.array([2.0, 10.0])], n_boot=4000, seed=3)
    assert (point, lo, hi) == (1.5, 1.0, 5.5)


def test_iqm_edge_cases():
    assert all(math.isnan(v) for v in st.iqm_ci([np.array([np.nan]), np.array([])]))
    point, lo, hi = st.iqm_ci([np.array([1.0]), np.array([3.0, np.nan])])  # one run per window
    assert point == 2.0 and math.isnan(lo) and math.isnan(hi)


def test_probability_of_improvement_by_hand_and_by_mann_whitney():
    x = [np.array([1.0, 3.0]), np.array([5.0])]
    y = [np.array([2.0, 2.0]), np.array([5.0, 4.0])]
    # window 1: 3 > 2 twice of four pairs → 0.5; window 2: 5 = 5 (½) and 5 > 4 → 0.75
    assert st.probability_of_improvement(x, y) == pytest.approx(0.625)
    u = [mannwhitneyu(a, b).statistic / (len(a) * len(b)) for a, b in zip(x, y, strict=True)]
    assert st.probability_of_improvement(x, y) == pytest.approx(np.mean(u))
    m = st.probability_of_improvement_matrix({"x": x, "y": y, "z": [np.array([]), np.array([0.0])]}, n_boot=500)
    p = m["p"]
    assert m["names"] == ["x", "y", "z"] and p[0, 1] == pytest.approx(0.625) and p[1, 0] == pytest.approx(0.375)
    assert p[0, 2] == 1.0 and np.diag(p).tolist() == [0.5] * 3
    assert m["ci_low"][0, 1] <= 0.625 <= m["ci_high"][0, 1]
    assert m["ci_low"][1, 0] == pytest.approx(1 - m["ci_high"][0, 1])


def test_probability_of_improvement_ci_shrinks_with_seeds():
    rng = np.random.default_rng(0)

    def width(seeds):
        a = [rng.normal(1.0, 1, seeds) for _ in range(6)]
        b = [rng.normal(0.0, 1, seeds) for _ in range(6)]
        m = st.probability_of_improvement_matrix({"a": a, "b": b}, n_boot=1000, seed=1)
        return m["ci_high"][0, 1] - m["ci_low"][0, 1], m["p"][0, 1]

    (w3, _), (w20, p20) = width(3), width(20)
    assert w20 < w3 and p20 > 0.6


# ----------------------------------------------------------------------------- golden values


def test_golden_selection_statistics():
    """Pinned with numpy 2.4 / arch 8.0 (rtol 1e-8): a change means the method or the RNG stream changed."""
    rng = np.random.default_rng(2024)
    x = rng.normal(0.0001, 0.01, (640, 4))
    x[:, 1] += 0.0008
    pbo = st.probability_of_backtest_overfitting(x, 8)
    spa = st.data_snooping_tests(x, rng.normal(0, 0.01, 640), reps=300, seed=5)
    ci = st.bootstrap_sharpe_ci(x[:, 1], 252.0, n_boot=300, seed=5)
    iqm = st.iqm_ci([x[:5, 0], x[5:9, 1], x[9:16, 2]], n_boot=300, seed=5)
    got = {
        "pbo": pbo["pbo"],
        "logit_mean": float(pbo["logits"].mean()),
        "slope": pbo["degradation"]["slope"],
        "intercept": pbo["degradation"]["intercept"],
        "probability_of_loss": pbo["probability_of_loss"],
        "spa": spa["spa_pvalue"],
        "rc": spa["reality_check_pvalue"],
        "block": spa["block_size"],
        "t1": float(spa["t_stat"][1]),
        "ci_low": ci[0],
        "ci_high": ci[1],
        "iqm": iqm[0],
        "iqm_low": iqm[1],
        "iqm_high": iqm[2],
    }
    for key, want in GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=1e-8, abs=1e-12), key


GOLDEN = {
    "pbo": 0.11428571428571428,
    "logit_mean": 1.0414033856350093,
    "slope": -0.31355702808977,
    "intercept": 0.1028968822758271,
    "probability_of_loss": 0.12857142857142856,
    "spa": 0.07333333333333333,
    "rc": 0.07333333333333333,
    "block": 1,
    "t1": 1.8006467041411263,
    "ci_low": 0.3078731160115442,
    "ci_high": 2.7516039312658673,
    "iqm": 0.0026561777464521943,
    "iqm_low": -0.00679462842996326,
    "iqm_high": 0.011093118781749232,
}
