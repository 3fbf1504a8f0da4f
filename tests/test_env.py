import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from backend.config.models import CostConfig, EnvConfig
from backend.envs.costs import CostModel
from backend.envs.intraday_env import IntradayTradingEnv
from tests.test_metrics import synthetic_market

SPAN = (20_000, 20_400)


@pytest.mark.parametrize("reward", ["pnl", "log_return", "dsr"])
def test_env_passes_sb3_and_gymnasium_checks(market_5m, features_5m, reward):
    cfg = EnvConfig(reward=reward)
    sb3_check_env(IntradayTradingEnv(market_5m, features_5m, SPAN, cfg), warn=False)
    gym_check_env(IntradayTradingEnv(market_5m, features_5m, SPAN, cfg), skip_render_check=True)


def test_registered_with_gymnasium(market_5m, features_5m):
    import gymnasium as gym

    import backend.envs  # noqa: F401 - registers

    env = gym.make("IntradayTrading-v0", market=market_5m, features=features_5m, span=SPAN, config=EnvConfig())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32 * 10 + 3,)


def test_observation_is_the_last_lookback_feature_rows(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(lookback=8), "sequential")
    obs, info = env.reset(seed=0)
    t = info["bar"]
    assert t == SPAN[0]  # episode 0 starts at the first bar of the span
    assert np.array_equal(obs[:80].reshape(8, 10), features_5m[t - 7 : t + 1])
    # flat; time left from the calendar: the session's minutes after this bar's end, over the session's length
    left = (market_5m.session_minutes[t] - market_5m.bar_end_minutes()[t]) / market_5m.session_minutes[t]
    assert obs[80] == 0.0 and obs[82] == np.float32(left)


def _run(env, target):
    rets, infos = [], []
    env.reset(options={"episode": 0})
    done = False
    while not done:
        _obs, _r, done, _, info = env.step(env.action_for_target(target))
        rets.append(info["net_return"])
        infos.append(info)
    return np.array(rets), infos


def test_buy_and_hold_accounting_and_flatten_at_close(market_5m, features_5m):
    costs = CostConfig(commission_bps=1.0, slippage_buy_bps=2.0, slippage_sell_bps=3.0)
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(costs=costs), "sequential")
    first, last = env.episode_bounds
    rets, infos = _run(env, 1.0)
    close = market_5m.close[first[0] : last[0] + 1]
    gross = close[-1] / close[0]
    expected = gross * (1 - 3e-4) * (1 - 4e-4) - 1  # buy at the first close, sell at the last
    assert np.prod(1 + rets) - 1 == pytest.approx(expected, rel=1e-12)
    assert infos[-1]["bar"] == last[0] and env.position == 0.0
    assert infos[-1]["traded"] == pytest.approx(1.0)  # the flatten
    assert len(rets) == last[0] - first[0]


def test_flat_policy_earns_nothing_and_short_mirrors_long(market_5m, features_5m):
    cfg = EnvConfig(costs=CostConfig(commission_bps=0, slippage_buy_bps=0, slippage_sell_bps=0))
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, cfg, "sequential")
    flat, _ = _run(env, 0.0)
    assert not flat.any()
    long, _ = _run(env, 0.5)
    short, _ = _run(env, -0.5)
    assert np.all(np.sign(long[np.abs(long) > 1e-12]) == -np.sign(short[np.abs(long) > 1e-12]))


def test_no_short_maps_actions_to_long_only(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(allow_short=False), "sequential")
    env.reset(options={"episode": 0})
    _, _, _, _, info = env.step(np.array([-1.0], np.float32))
    assert info["position"] == 0.0
    _, _, _, _, info = env.step(np.array([0.0], np.float32))
    assert info["position"] == pytest.approx(0.5)


def test_forced_exit(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(forced_exit_minutes=60), "sequential")
    first, last = env.episode_bounds
    # the last bar ending by 10:30 is the one starting at 10:25: flattened at its close, 10:30
    assert np.all(last - first == 11)
    assert np.all(market_5m.minutes_from_open[last] == 55.0) and np.all(market_5m.bar_end_minutes()[last] == 60.0)
    _, infos = _run(env, 1.0)
    assert len(infos) == 11 and env.position == 0.0 and infos[-1]["flatten_cost"] > 0


def _sessions(bar_minutes: int, n_sessions: int = 2):
    """Regular 390-minute sessions of ``bar_minutes`` bars (the 1h and 30m grids end on a partial bar)."""
    n = -(-390 // bar_minutes)
    return synthetic_market([list(100.0 + np.arange(n))] * n_sessions, bar_minutes, session_minutes=390.0)


FORCED_EXIT_EXAMPLES = [  # (bar width, forced_exit_minutes, start of the bar flattened at its close): docs/env.md
    (1, 60, 59),
    (1, 375, 374),
    (5, 60, 55),
    (5, 375, 370),
    (15, 60, 45),
    (15, 375, 360),
    (30, 60, 30),
    (30, 375, 330),
    (60, 120, 60),
    (60, 375, 300),
    (60, 390, 360),  # the last, partial 1h bar ends at the close
]


@pytest.mark.parametrize(("interval_minutes", "limit", "last_bar_start"), FORCED_EXIT_EXAMPLES)
def test_forced_exit_per_interval(interval_minutes, limit, last_bar_start):
    """Flatten at the close of the last bar that ends by open + limit (the last 1h bar ends at the close)."""
    m = _sessions(interval_minutes)
    env = IntradayTradingEnv(m, np.zeros((len(m), 1), np.float32), (0, len(m)), EnvConfig(forced_exit_minutes=limit))
    _, last = env.episode_bounds
    assert env.n_episodes == 2 and np.all(m.minutes_from_open[last] == last_bar_start)


def test_forced_exit_without_two_bars_by_the_limit_has_no_episode():
    m = _sessions(60)
    feats = np.zeros((len(m), 1), np.float32)
    with pytest.raises(ValueError, match="forced_exit_minutes=60"):  # only 09:30-10:30 ends by 10:30
        IntradayTradingEnv(m, feats, (0, len(m)), EnvConfig(forced_exit_minutes=60))
    with pytest.raises(ValueError, match="forced_exit_minutes=59"):
        IntradayTradingEnv(m, feats, (0, len(m)), EnvConfig(forced_exit_minutes=59))


@pytest.mark.parametrize("allow_short", [True, False])
def test_nan_action_is_flat(market_5m, features_5m, allow_short):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(allow_short=allow_short), "sequential")
    env.reset(options={"episode": 0})
    _, _, _, _, info = env.step(np.array([np.nan], np.float32))
    assert info["position"] == 0.0 and info["traded"] == 0.0 and info["net_return"] == 0.0
    env.step(env.action_for_target(0.5))
    _, _, _, _, info = env.step(np.array([np.nan], np.float32))
    assert info["position"] == 0.0 and env.position == 0.0 and info["traded"] > 0  # NaN closes the position


def test_step_info_splits_trade_and_flatten_costs(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(), "sequential")
    _, infos = _run(env, 1.0)
    assert infos[0]["held"] == 0.0 and infos[0]["trade_cost"] == pytest.approx(1.5e-4) and infos[0]["flatten_cost"] == 0
    assert all(i["held"] > 0 for i in infos[1:])  # drifted long position going into each decision
    last = infos[-1]
    assert last["flatten_cost"] > 0 and last["cost"] == last["trade_cost"] + last["flatten_cost"]


def test_fixed_fees_see_the_account_carried_across_a_replay(market_5m, features_5m):
    """Sequential replays carry the account from session to session; training episodes start at capital."""
    costs = CostConfig(commission_bps=0, slippage_buy_bps=0, slippage_sell_bps=0, commission_min=10.0)
    cfg = EnvConfig(costs=costs, initial_capital=10_000.0)
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, cfg, "sequential")
    account = 10_000.0
    for k in range(3):
        env.reset(options={"episode": k})
        equity, done, first = 1.0, False, None
        while not done:
            _, _, done, _, info = env.step(env.action_for_target(1.0))
            first = info if first is None else first
            equity *= 1.0 + info["net_return"]
        assert first["trade_cost"] == pytest.approx(10.0 / account, rel=1e-12)  # the minimum fee on the account held
        account *= equity
    assert abs(account / 10_000.0 - 1) > 1e-3  # the account did move: the check above tells carry from restart
    env.reset(options={"episode": 0})  # back to the start: a fresh account
    _, _, _, _, info = env.step(env.action_for_target(1.0))
    assert info["trade_cost"] == pytest.approx(10.0 / 10_000.0)
    random_order = IntradayTradingEnv(market_5m, features_5m, SPAN, cfg, "random")
    random_order.reset(seed=0)
    for _ in range(300):
        _, _, done, _, info = random_order.step(random_order.action_for_target(1.0))
        if done:
            random_order.reset()
            _, _, done, _, info = random_order.step(random_order.action_for_target(1.0))
            assert info["trade_cost"] == pytest.approx(10.0 / 10_000.0)


def test_rebalance_threshold_skips_small_trades(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(rebalance_threshold=0.1), "sequential")
    env.reset(options={"episode": 0})
    _, _, _, _, a = env.step(env.action_for_target(0.5))
    _, _, _, _, b = env.step(env.action_for_target(0.55))
    assert a["traded"] == pytest.approx(0.5) and b["traded"] == 0.0
    _, _, _, _, c = env.step(env.action_for_target(0.05))  # near zero → flat
    assert c["position"] == 0.0


def test_cost_model_per_share_min_and_cap():
    m = CostModel.from_config(
        CostConfig(
            commission_bps=0,
            slippage_buy_bps=0,
            slippage_sell_bps=0,
            commission_per_share=0.01,
            commission_min=1.0,
            commission_max_pct=0.001,
        )
    )
    # 0.5 × 100,000 at 100 = 500 shares → 5.00 fee → 5e-5 of equity
    assert m.fraction(0.5, 100.0, 100_000.0) == pytest.approx(5e-5)
    # 0.001 × 100,000 at 100 = 1 share → 0.01, min fee 1.0, capped at 0.1 % of 100 notional = 0.1
    assert m.fraction(0.001, 100.0, 100_000.0) == pytest.approx(0.1 / 100_000)
    assert m.fraction(0.0, 100.0, 100_000.0) == 0.0
    assert m.scaled(2.0).fraction(0.5, 100.0, 100_000.0) == pytest.approx(1e-4)


@pytest.mark.parametrize("delta", [0.5, 0.001, -0.002, 1.7])
def test_scaled_costs_scale_every_term_the_cap_included(delta):
    m = CostModel.from_config(
        CostConfig(
            commission_bps=0.5,
            slippage_buy_bps=1.0,
            slippage_sell_bps=2.0,
            commission_per_share=0.01,
            commission_min=1.0,
            commission_max_pct=0.001,
        )
    )
    for factor in (0.0, 0.5, 2.0, 3.0):
        got = m.scaled(factor).fraction(delta, 100.0, 100_000.0)
        assert got == pytest.approx(factor * m.fraction(delta, 100.0, 100_000.0), rel=1e-12, abs=0.0)
    # the capped trade of 0.001: 2× costs is 2× the cap, not the 1× cap
    assert m.scaled(2.0).max_pct == 0.002


def test_dsr_reward_is_bounded_and_warmup_zero(market_5m, features_5m):
    env = IntradayTradingEnv(market_5m, features_5m, SPAN, EnvConfig(reward="dsr", dsr={"warmup_steps": 5}))
    env.reset(seed=0)
    rewards = []
    for a in np.random.default_rng(0).uniform(-1, 1, (300, 1)).astype(np.float32):
        _, r, done, _, _ = env.step(a)
        rewards.append(r)
        if done:
            env.reset()
    assert rewards[:5] == [0.0] * 5 and max(abs(x) for x in rewards) <= 5.0 and any(rewards[5:])


def test_env_normalisation_equals_a_frozen_vecnormalize_bit_for_bit(market_5m, features_5m, tmp_path):
    """The saved vecnormalize.pkl applied to raw observations gives exactly what the agent saw."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from backend.config.models import Config
    from backend.training.trainer import CLIP_OBS, feature_stats, sb3_statistics_file
    from backend.walkforward.windows import parse_windows, resolve

    cfg = Config()
    specs, _, _ = parse_windows(
        [
            {
                "train_start": "2018-03-01",
                "train_end": "2018-03-29",
                "test_start": "2018-04-02",
                "test_end": "2018-04-04",
            }
        ],
        "w",
    )
    (w,) = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w")
    span = (w.test_start, w.test_end)
    raw = IntradayTradingEnv(market_5m, features_5m, span, cfg.env, "sequential")
    normed = IntradayTradingEnv(
        market_5m,
        features_5m,
        span,
        cfg.env,
        "sequential",
        normalisation=feature_stats(features_5m, w),
        clip_obs=CLIP_OBS,
    )
    sb3_statistics_file(
        cfg, lambda: raw, feature_stats(features_5m, w), w.train_end - w.train_start, tmp_path / "vn.pkl"
    )
    vn = VecNormalize.load(str(tmp_path / "vn.pkl"), DummyVecEnv([lambda: raw]))
    rng = np.random.default_rng(0)
    a_obs, _ = raw.reset(options={"episode": 0})
    b_obs, _ = normed.reset(options={"episode": 0})
    compared = 0
    for action in rng.uniform(-1, 1, (150, 1)).astype(np.float32):
        assert np.array_equal(vn.normalize_obs(a_obs), b_obs)
        a_obs, _, done, _, _ = raw.step(action)
        b_obs, _, _, _, _ = normed.step(action)
        compared += 1
        if done:
            break
    assert compared > 50 and np.abs(b_obs[:-3]).max() <= CLIP_OBS
