import dataclasses

import numpy as np
import pytest

from backend.config.models import DEFAULT_FEATURES, EnvConfig
from backend.core.errors import InputError
from backend.envs.intraday_env import IntradayTradingEnv
from backend.features.builtin import FEATURES, compute_features, fit_normalisation


def perturb_after(market, t, seed=0):
    """Replace every bar after t by positive noise (timestamps and sessions unchanged)."""
    rng = np.random.default_rng(seed)
    n = len(market) - t - 1
    noise = {}
    for name in ("open", "high", "low", "close", "volume"):
        arr = getattr(market, name).copy()
        arr[t + 1 :] = rng.uniform(1, 1000, n)
        noise[name] = arr
    return dataclasses.replace(market, **noise)


@pytest.mark.parametrize("cut", [100, 5_000, 31_337])
def test_no_feature_looks_ahead(market_5m, cut):
    names = list(FEATURES)
    a = compute_features(market_5m, names)
    b = compute_features(perturb_after(market_5m, cut, seed=cut), names)
    for j, name in enumerate(names):
        assert np.array_equal(a[: cut + 1, j], b[: cut + 1, j]), f"feature {name} changes when bars after t change"
    # and the perturbation is real: later rows do differ
    assert not np.array_equal(a[cut + 1 :], b[cut + 1 :])


def test_env_observations_and_rewards_do_not_look_ahead(market_5m, features_5m):
    cfg = EnvConfig()
    span = (10_000, 10_400)
    cut = 10_200
    other = perturb_after(market_5m, cut)
    feats = compute_features(other, cfg.features)
    envs = [
        IntradayTradingEnv(market_5m, features_5m, span, cfg, "sequential"),
        IntradayTradingEnv(other, feats, span, cfg, "sequential"),
    ]
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (400, 1)).astype(np.float32)
    logs = []
    for env in envs:
        obs_log = []
        obs, _ = env.reset(seed=0)
        obs_log.append((env.current_bar, obs, 0.0))
        for a in actions:
            obs, r, done, _, _ = env.step(a)
            # reward of the step into bar t uses close[t]; observation at t uses bars <= t
            obs_log.append((env.current_bar, obs, r))
            if done:
                if env.current_bar >= span[1] - 1:
                    break
                obs, _ = env.reset()
                obs_log.append((env.current_bar, obs, 0.0))
        logs.append(obs_log)
    compared = 0
    for (ta, oa, ra), (tb, ob, rb) in zip(*logs, strict=False):
        if ta > cut:  # past the cut the two runs may legitimately diverge
            break
        assert ta == tb
        assert np.array_equal(oa, ob) and ra == rb, f"bar {ta} depends on bars after {cut}"
        compared += 1
    assert compared > 150


def test_unknown_feature_suggests():
    with pytest.raises(InputError, match="did you mean 'ret_1'"):
        compute_features(None, ["ret1"])


def test_defaults_are_registered_and_finite(features_5m):
    assert set(DEFAULT_FEATURES) <= set(FEATURES)
    assert features_5m.dtype == np.float32 and np.isfinite(features_5m).all()


def test_normalisation_uses_train_span_only(features_5m):
    mean, var = fit_normalisation(features_5m, 100, 600)
    changed = features_5m.copy()
    changed[600:] = 1e6
    mean2, var2 = fit_normalisation(changed, 100, 600)
    assert np.array_equal(mean, mean2) and np.array_equal(var, var2)


WARMUP_BARS = 21  # the longest rolling warm-up: vol_20 needs 20 one-bar returns (21 bars)


@pytest.mark.parametrize("skip_sessions", [1, 21, 250])  # a day, a month, a year later
def test_features_do_not_depend_on_where_the_history_starts(market_5m, skip_sessions):
    """A replay from a history loaded on another day (starting elsewhere) sees bit-identical features."""
    names = list(FEATURES)
    full = compute_features(market_5m, names)
    starts, _ = market_5m.session_bounds()
    lo = int(starts[skip_sessions])
    later = market_5m.take(lo, len(market_5m))
    assert later.session_id[0] == 0 and later.bar_minutes == market_5m.bar_minutes
    part = compute_features(later, names)
    # past the warm-up (and past the first session, whose gap needs the session before) every row is exact
    cut = max(lo + WARMUP_BARS, int(starts[skip_sessions + 1]))
    for j, name in enumerate(names):
        assert np.array_equal(full[cut:, j], part[cut - lo :, j]), f"feature {name} depends on the history's start"


def test_bar_end_minutes_caps_at_the_close(market_5m):
    ends = market_5m.bar_end_minutes()
    assert np.array_equal(ends, np.minimum(market_5m.minutes_from_open + 5.0, market_5m.session_minutes))
    assert ends.max() == 390.0 and market_5m.bar_minutes == 5.0
