"""The exhaustive env check of `wf audit`: it passes on the harness as it is and catches leaks planted into the real
env class (used by both the trainer's and the replay's factory) at one interior bar of every session, naming window,
span, bar and observation slot; time_left comes from the calendar, which the truncation check proves."""

import dataclasses
import functools
import json

import numpy as np
import pytest

from backend.checks import audit as audit_module
from backend.checks.env_audit import EnvAuditOptions, slot_name
from backend.config.models import EnvConfig
from backend.envs.intraday_env import IntradayTradingEnv
from backend.features.builtin import FEATURES, register_feature
from tests.conftest import TINY_CONFIG
from tests.helpers import wf
from tests.test_user_features import clean_registry, example_fixture  # noqa: F401 - shared fixtures

WINDOWS = [
    {
        "id": "w01",
        "train_start": "2019-01-02",
        "train_end": "2019-01-09",
        "test_start": "2019-01-10",
        "test_end": "2019-01-12",
    },
]
BAR = 11  # the planted leaks act at the 12th bar of every session: 09:30 + 11 x 15 min = 12:15 (not a first/last bar)
STAMP = "T12:15:00-05:00"


@pytest.fixture
def files(tmp_path):
    c, w = tmp_path / "c.json", tmp_path / "w.json"
    c.write_text(json.dumps(TINY_CONFIG))
    w.write_text(json.dumps(WINDOWS))
    return c, w


def env_audit(c, w, *extra):
    return wf("audit", "--config", c, "--windows", w, "--env-only", *extra)


def env_finding(res, what):
    """Exit 3 and an env finding in w01 naming ``what`` (slot or step quantity) at the 12:15 bar."""
    lines = [line for line in res.output.splitlines() if line.startswith("look-ahead [w01] env:")]
    return res.exit_code == 3 and any(what in line and STAMP in line for line in lines), res.output


def at_planted_bar(env) -> bool:
    return env.current_bar - env._first == BAR


def test_clean_harness_passes_every_bar_perturbed_and_truncated(files):
    res = env_audit(*files)
    assert res.exit_code == 0, res.output
    assert "the env identical at every bar with the future perturbed or truncated" in res.output
    assert "compared bit for bit with the future perturbed, reshaped and truncated after every bar" in res.output
    assert "perturbed in place on the whole market" in res.output and "every position transition" in res.output


def test_canary_observation_peeks_at_the_next_return_at_one_interior_bar(files, monkeypatch):
    original = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = original(self)
        if at_planted_bar(self):
            t = self.current_bar
            obs[-1] += self._close[t + 1] / self._close[t] - 1.0
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", peeking)
    ok, out = env_finding(env_audit(*files), "the train env's observation: state variable 'time_left' (slot 18)")
    assert ok, out
    assert "differs when the bars after 2019-01-02T12:15:00-05:00 change" in out  # perturbed right after it


def remaining_bar_count(monkeypatch):
    original = IntradayTradingEnv._get_obs

    def counting(self):  # the old definition: bars left in the episode, as present in the data
        obs = original(self)
        obs[-1] = (self._last - self._t) / (self._last - self._first)
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", counting)


def test_canary_state_variable_from_the_remaining_bar_count(files, monkeypatch):
    remaining_bar_count(monkeypatch)
    res = env_audit(*files)
    assert res.exit_code == 3, res.output
    assert "observation: state variable 'time_left'" in res.output
    assert "change in number, start times" in res.output  # the reshaped future (bars dropped) finds it first
    monkeypatch.setattr(audit_module, "EnvAuditOptions", functools.partial(EnvAuditOptions, reshape=False))
    res = env_audit(*files)
    assert res.exit_code == 3 and "are missing (the session truncated)" in res.output, res.output


def test_negative_control_without_truncation_the_bar_count_passes(files, monkeypatch):
    """Perturbing the future keeps the bar count: only the reshaped and truncated variants catch it."""
    remaining_bar_count(monkeypatch)
    options = functools.partial(EnvAuditOptions, truncate=False, reshape=False)
    monkeypatch.setattr(audit_module, "EnvAuditOptions", options)
    res = env_audit(*files)
    assert res.exit_code == 0, res.output


def test_canary_reward_peeks_at_one_bar(files, monkeypatch):
    original = IntradayTradingEnv.step

    def peeking(self, action):
        obs, reward, done, trunc, info = original(self, action)
        if at_planted_bar(self) and not done:
            t = self.current_bar
            reward += 1e-9 * (self._close[t + 1] - self._close[t])
        return obs, reward, done, trunc, info

    monkeypatch.setattr(IntradayTradingEnv, "step", peeking)
    ok, out = env_finding(env_audit(*files), "reward of the step into the bar")
    assert ok, out


def test_canary_position_logic_peeks_at_one_bar(files, monkeypatch):
    """The held position drifting with the next bar at one bar: position and equity logic are compared."""
    original = IntradayTradingEnv.step

    def peeking(self, action):
        obs, reward, done, trunc, info = original(self, action)
        t = self.current_bar
        if at_planted_bar(self) and not done:
            self._pos *= self._close[t + 1] / self._close[t]  # the held position drifts with the next bar's move
            obs = self._get_obs()
        return obs, reward, done, trunc, info

    monkeypatch.setattr(IntradayTradingEnv, "step", peeking)
    ok, out = env_finding(env_audit(*files), "state variable 'position'")
    assert ok, out


def test_canary_feature_reading_the_next_bar_is_named_with_its_lag(tmp_path, monkeypatch):
    name = "peek_next_close"
    register_feature(name, "a planted leak")(lambda m: np.r_[m.close[1:] / m.close[:-1] - 1.0, 0.0])
    try:
        cfg = json.loads(json.dumps(TINY_CONFIG))
        cfg["env"]["features"] = [*cfg["env"]["features"], name]
        c, w = tmp_path / "c.json", tmp_path / "w.json"
        c.write_text(json.dumps(cfg))
        w.write_text(json.dumps(WINDOWS))
        res = env_audit(c, w)
    finally:
        FEATURES.pop(name, None)
    assert res.exit_code == 3, res.output
    assert f"observation: feature '{name}' at lag 0" in res.output


def test_no_env_check_and_env_only_together_is_refused(files):
    res = env_audit(*files, "--no-env-check")
    assert res.exit_code == 2 and "nothing to audit" in res.output


def test_slot_names():
    names = ["ret_1", "vol_20"]
    assert slot_name(0, names, 3) == "feature 'ret_1' at lag 2 (slot 0)"
    assert slot_name(5, names, 3) == "feature 'vol_20' at lag 0 (slot 5)"
    assert slot_name(8, names, 3) == "state variable 'time_left' (slot 8)"


def test_time_left_comes_from_the_calendar_not_the_bars_present(market_5m, features_5m):
    starts, stops = market_5m.session_bounds()
    a, b = int(starts[100]), int(stops[100])
    full = IntradayTradingEnv(market_5m, features_5m, (a, b), EnvConfig(lookback=2), "sequential")
    short = IntradayTradingEnv(market_5m, features_5m, (a, b - 10), EnvConfig(lookback=2), "sequential")
    left = []
    for env in (full, short):
        obs, _ = env.reset(options={"episode": 0})
        seen = [obs[-1]]
        for _ in range(b - 10 - a - 2):
            obs, *_ = env.step(np.zeros(1, np.float32))
            seen.append(obs[-1])
        left.append(np.array(seen))
    assert np.array_equal(left[0], left[1])  # the missing last bars are not announced
    horizon = market_5m.session_minutes[a]
    assert left[0][0] == np.float32((horizon - market_5m.bar_end_minutes()[a]) / horizon)
    limited = IntradayTradingEnv(market_5m, features_5m, (a, b), EnvConfig(lookback=2, forced_exit_minutes=60))
    obs, _ = limited.reset(options={"episode": 0})
    assert obs[-1] == np.float32((60 - market_5m.bar_end_minutes()[a]) / 60)


def test_the_window_fixture_is_interior():
    assert 0 < BAR < 25 and dataclasses.is_dataclass(EnvAuditOptions())


def test_canary_last_bar_reads_the_next_sessions_first_bar(files, monkeypatch):
    """An env reading past its session (at the flatten bar): the local slice runs into the next session."""
    original = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = original(self)
        t = self.current_bar
        if t == self._last and t + 1 < len(self._close):
            obs[-2] += self._close[t + 1] * 1e-12
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", peeking)
    res = env_audit(*files)
    assert res.exit_code == 3, res.output
    assert "observation: state variable 'unrealized_pnl'" in res.output and "T15:45:00-05:00" in res.output


def test_canary_observation_reading_far_ahead_is_a_finding_not_a_crash(files, monkeypatch):
    original = IntradayTradingEnv._get_obs

    def far(self):
        obs = original(self)
        obs[-2] += 1e-12 * self._close[self.current_bar + 60]  # beyond the session and the next one
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", far)
    res = env_audit(*files)
    assert res.exit_code == 3, res.output
    assert "env fails in the session of" in res.output and "IndexError" in res.output


def test_env_check_perturbs_file_columns_and_context_too(example, monkeypatch):
    """A file column read one bar ahead is an env finding (the env check redraws columns after t)."""
    from backend.features import specs

    cfg = json.loads((example / "features_config.json").read_text())
    cfg["env"]["features"] = ["ret_1", "column:imb", "QQQ:ret_1"]
    (example / "c.json").write_text(json.dumps(cfg))
    args = ("audit", "--config", "c.json", "--windows", "w.json", "--env-only")
    clean = wf(*args)
    assert clean.exit_code == 0, clean.output  # negative control: the real column and context code pass
    monkeypatch.setattr(specs, "read_column", lambda m, name: np.r_[m.columns[name][1:], np.nan])
    res = wf(*args)
    assert res.exit_code == 3, res.output
    assert "observation: feature 'column:imb' at lag 0" in res.output


# -- issue 23, second review: the future's shape, the trainer's and the replay's own tours --------------------------


def test_canary_next_bars_timestamp_at_one_interior_bar(files, monkeypatch):
    """The next bar's start time (kept by the price perturbation; at t a truncation compares no P&L slot): only the
    reshaped variant (future bars dropped, their times moved) catches it, naming the slot; negative control without
    it."""
    init, get_obs = IntradayTradingEnv.__init__, IntradayTradingEnv._get_obs

    def keeping_times(self, market, *args, **kw):
        init(self, market, *args, **kw)
        self._ts = market.timestamps.tolist()

    def peeking(self):
        obs = get_obs(self)
        t = self.current_bar
        if at_planted_bar(self):  # "is the next bar due on time?": a leak of the future's shape
            obs[-2] += 1e-15 * ((self._ts[t + 1] - self._ts[t]) if t + 1 < len(self._ts) else 900e9)
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "__init__", keeping_times)
    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", peeking)
    ok, out = env_finding(env_audit(*files), "the train env's observation: state variable 'unrealized_pnl'")
    assert ok, out
    assert "change in number, start times, prices and volumes" in out
    monkeypatch.setattr(audit_module, "EnvAuditOptions", functools.partial(EnvAuditOptions, reshape=False))
    res = env_audit(*files)
    assert res.exit_code == 0, res.output  # perturbed and truncated futures alone miss it


def plain_reset_leak(monkeypatch, leak):
    """``leak(env, obs)`` applied after every reset without options (the trainer's wrapper resets so)."""
    original = IntradayTradingEnv.reset

    def reset(self, *, seed=None, options=None):
        obs, info = original(self, seed=seed, options=options)
        self._plain = options is None
        if self._plain:
            leak(self, obs)
        return obs, info

    monkeypatch.setattr(IntradayTradingEnv, "reset", reset)


def test_canary_plain_reset_peeks_at_the_next_episodes_session(files, monkeypatch):
    """At a plain reset (the trainer's style), the first close of the next session in the span shows in the
    observation: invisible to sessions played alone, caught by the tour the trainer's own wrapper drives."""

    def leak(env, obs):
        nxt = env._ep_first[(env._episode + 1) % env.n_episodes]
        obs[-2] += 1e-12 * env._close[nxt]

    plain_reset_leak(monkeypatch, leak)
    res = env_audit(*files)
    assert res.exit_code == 3, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("look-ahead [w01] env:"))
    assert "the train env's observation: state variable 'unrealized_pnl'" in line, line
    assert "toured as the trainer plays it (DummyVecEnv, seeded, plain resets, random order)" in line, line
    assert "differs from the session played alone" in line
    monkeypatch.setattr(audit_module, "EnvAuditOptions", functools.partial(EnvAuditOptions, tours=False))
    assert env_audit(*files).exit_code == 0  # negative control: the per-bar check alone cannot see it


def test_canary_reward_at_one_interior_bar_only_after_a_plain_reset(files, monkeypatch):
    plain_reset_leak(monkeypatch, lambda env, obs: None)
    original = IntradayTradingEnv.step

    def peeking(self, action):
        obs, reward, done, trunc, info = original(self, action)
        if getattr(self, "_plain", False) and at_planted_bar(self) and not done:
            t = self.current_bar
            reward += 1e-9 * (self._close[t + 1] - self._close[t])
        return obs, reward, done, trunc, info

    monkeypatch.setattr(IntradayTradingEnv, "step", peeking)
    ok, out = env_finding(env_audit(*files), "reward of the step into the bar, visit")
    assert ok, out


def test_canary_account_carried_into_one_session_reads_its_future(files, monkeypatch):
    """The replay carries the account across sessions; a carry into the second test session that reads that
    session's second close is caught by the replay's own loop against the sessions played alone."""
    original = IntradayTradingEnv.reset

    def reset(self, *, seed=None, options=None):
        carried = self.episode_order == "sequential" and seed is None and self._played is not None
        obs, info = original(self, seed=seed, options=options)
        if carried and self._episode == 1:
            self._cash0 *= self._close[self._t + 1] / self._close[self._t]
        return obs, info

    monkeypatch.setattr(IntradayTradingEnv, "reset", reset)
    res = env_audit(*files)
    assert res.exit_code == 3, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("look-ahead [w01] env:"))
    assert "the test env's account of the step into the bar" in line and "toured as the replay plays it" in line
    assert "2019-01-11T09:45:00-05:00" in line, line  # the first step of the second test session


def test_clean_harness_passes_with_dsr_forced_exit_per_share_fees_and_long_only(tmp_path):
    """No false positive from the reshaped future or the tours where state carries (DSR averages, the account
    value priced by per-share and minimum fees) and episodes end before the close (forced exit)."""
    for env in (
        {"reward": "dsr", "forced_exit_minutes": 300, "costs": {"commission_per_share": 0.005, "commission_min": 1.0}},
        {"reward": "log_return", "allow_short": False, "forced_exit_minutes": 120},
    ):
        cfg = json.loads(json.dumps(TINY_CONFIG))
        cfg["env"].update(env)
        c, w = tmp_path / "c.json", tmp_path / "w.json"
        c.write_text(json.dumps(cfg))
        w.write_text(json.dumps(WINDOWS))
        res = env_audit(c, w)
        assert res.exit_code == 0, res.output
        assert "each episode compared with its session alone" in res.output


ONE_BAR = "2019-01-03T12:15:00-05:00"  # the leaks below act at this bar of this session only


def plant_stamps(set_=setattr):
    """The env remembers its bars' timestamps (``_stamps``), so that a leak can act at ONE_BAR only."""
    original = IntradayTradingEnv.__init__

    def init(self, market, *args, **kwargs):
        original(self, market, *args, **kwargs)
        self._stamps = market.timestamps

    set_(IntradayTradingEnv, "__init__", init)


def is_one_bar(env) -> bool:
    import pandas as pd

    return int(env._stamps[env.current_bar]) == pd.Timestamp(ONE_BAR).value


def one_bar_finding(res, what, variant):
    lines = [line for line in res.output.splitlines() if line.startswith("look-ahead [w01] env:")]
    return res.exit_code == 3 and any(what in x and ONE_BAR in x and variant in x for x in lines), res.output


def test_canary_reward_peeks_only_on_a_flip_from_long_to_short_at_one_bar(files, monkeypatch):
    """The step into ONE_BAR from a long position into a short one (and no other action) reads the next close:
    only the covering sequences (every (previous, current) target pair at every bar) flip there."""
    plant_stamps(monkeypatch.setattr)
    original = IntradayTradingEnv.step

    def peeking(self, action):
        obs, reward, done, trunc, info = original(self, action)
        if info["held"] > 0 and info["position"] < 0 and is_one_bar(self) and not done:
            t = self.current_bar
            reward += 1e-9 * (self._close[t + 1] - self._close[t])
        return obs, reward, done, trunc, info

    monkeypatch.setattr(IntradayTradingEnv, "step", peeking)
    ok, out = one_bar_finding(env_audit(*files), "reward of the step into the bar", "")
    assert ok, out
    # negative control: the two seeded sequences alone never flip from long to short into that bar
    monkeypatch.setattr(audit_module, "EnvAuditOptions", functools.partial(EnvAuditOptions, covering=False))
    res = env_audit(*files)
    assert res.exit_code == 0, res.output


def test_covering_sequences_hold_every_target_pair_at_every_bar():
    from backend.checks.env_audit_variants import covering_targets

    for short, values in ((True, (-1.0, 0.0, 1.0)), (False, (0.5, 0.0, 1.0))):
        seqs = covering_targets(30, short)
        assert len(seqs) == 9
        for t in range(1, 30):
            assert {(s[t - 1], s[t]) for s in seqs} == {(p, c) for p in values for c in values}


SWITCHES = {"span-position": lambda env: env.span[0] >= 1000, "market-size": lambda env: len(env._close) > 2000}


def plant_switched_leak(switch, set_=setattr):
    """At ONE_BAR, where ``SWITCHES[switch]`` holds, the observation reads the next bar's return."""
    plant_stamps(set_)
    original = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = original(self)
        if SWITCHES[switch](self) and is_one_bar(self):
            t = self.current_bar
            obs[-2] += self._close[t + 1] / self._close[t] - 1.0
        return obs

    set_(IntradayTradingEnv, "_get_obs", peeking)


def with_options(monkeypatch, **kw):
    monkeypatch.setattr(audit_module, "EnvAuditOptions", functools.partial(EnvAuditOptions, **kw))


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_canary_leak_switched_on_by_the_real_market_or_span_only(files, monkeypatch, switch):
    """A leak that acts only where the env sees the real market (its size) or the span at its real position: the
    local slice of the per-bar check never switches it on, nor does the tour (the same in both plays); the
    in-place variant (the span's env on the whole market, the future perturbed in place) does. Planted in this
    process and in the in-place variant's fresh processes alike (``worker_init``)."""
    plant_switched_leak(switch, monkeypatch.setattr)
    with_options(monkeypatch, worker_init=functools.partial(plant_switched_leak, switch))
    ok, out = one_bar_finding(env_audit(*files), "observation: state variable 'unrealized_pnl'", "in place")
    assert ok, out
    with_options(monkeypatch, worker_init=functools.partial(plant_switched_leak, switch), in_place=False)
    res = env_audit(*files)
    assert res.exit_code == 0, res.output  # negative control: without the in-place variant it passes


SEEN: dict = {}  # the planted cache: module-level memory shared by every env instance of a process


def plant_cache_leak(set_=setattr):
    """Every observation adds the next bar's return as first seen for that bar (memory across instances)."""
    original = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = original(self)
        t, n = self.current_bar, len(self._close)
        key = (self._close[t - 1] if t else 0.0, self._close[t], self._time_left[t])
        obs[-2] += SEEN.setdefault(key, self._close[min(t + 1, n - 1)] / self._close[t] - 1.0)
        return obs

    set_(IntradayTradingEnv, "_get_obs", peeking)


def test_canary_leak_through_memory_shared_across_env_instances(files, monkeypatch):
    """The reference fills the cache with the original next returns, so every variant in this process reads the
    same; the in-place variant's fresh processes (one for the references, one for the perturbed cuts) do not."""
    SEEN.clear()
    plant_cache_leak(monkeypatch.setattr)
    with_options(monkeypatch, worker_init=plant_cache_leak)
    res = env_audit(*files)
    assert res.exit_code == 3 and "change in place" in res.output, res.output
    SEEN.clear()
    with_options(monkeypatch, worker_init=plant_cache_leak, isolate=False)
    res = env_audit(*files)
    assert res.exit_code == 0, res.output  # negative control: in this process the cache hides it
