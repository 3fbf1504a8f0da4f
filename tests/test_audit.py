"""wf audit exercises the real training and replay code: it passes on the harness as it is and catches
every class of leak planted into the code that runs (monkeypatched canaries), naming window, check and bar."""

import dataclasses
import json

import numpy as np
import pytest

from backend.features.builtin import FEATURES, register_feature
from tests.conftest import TINY_CONFIG
from tests.helpers import wf

ANCHORED = [  # w02's train span covers w01's test span: a warm start from w02 into w01 would leak
    {
        "id": "w01",
        "train_start": "2019-01-02",
        "train_end": "2019-01-11",
        "test_start": "2019-01-14",
        "test_end": "2019-01-15",
    },
    {
        "id": "w02",
        "train_start": "2019-01-02",
        "train_end": "2019-01-25",
        "test_start": "2019-01-28",
        "test_end": "2019-01-29",
    },
]


@pytest.fixture
def files(tmp_path):
    def make(config=None, windows=None):
        cfg = json.loads(json.dumps(TINY_CONFIG))
        for section, values in (config or {}).items():
            cfg.setdefault(section, {}).update(values)
        c, w = tmp_path / "c.json", tmp_path / "w.json"
        c.write_text(json.dumps(cfg))
        w.write_text(json.dumps(windows or ANCHORED))
        return c, w

    return make


def audit(c, w, *extra):
    return wf("audit", "--config", c, "--windows", w, "--steps", "200", "--quiet", *extra)


def found(res, check, window="w01"):
    """Exit 3, a ❌ Audit marker naming window, check and bar, and a finding of ``check`` in ``window``."""
    marker = [
        line for line in res.output.splitlines() if line.startswith("[STAGE ❌] Audit — look-ahead found in window")
    ]
    return res.exit_code == 3 and bool(marker) and f"look-ahead [{window}] {check}:" in res.output


def test_audit_passes_on_the_harness_as_it_is(files):
    res = audit(*files())
    assert res.exit_code == 0, res.output
    assert "[STAGE ✅] Audit — no look-ahead found (2 windows" in res.output


def test_audit_passes_with_warm_start_chain_and_embargo(files):
    gapped = [dict(w, train_end=end) for w, end in zip(ANCHORED, ("2019-01-10", "2019-01-24"), strict=True)]
    res = audit(*files({"training": {"warm_start": True}}, gapped), "--embargo-bars", "3")
    assert res.exit_code == 0, res.output


@pytest.fixture
def leak_feature():
    added = []

    def plant(name, fn):
        register_feature(name, "a planted leak")(fn)
        added.append(name)
        return name

    yield plant
    for name in added:
        FEATURES.pop(name)


def test_canary_train_span_extended_into_test(files, monkeypatch):
    from backend.training import trainer

    real = trainer.train_env_factory
    monkeypatch.setattr(
        trainer,
        "train_env_factory",
        lambda cfg, m, f, w, **kw: real(cfg, m, f, dataclasses.replace(w, train_end=w.test_end), **kw),
    )
    res = audit(*files())
    assert found(res, "training"), res.output
    assert "w01" in res.output and "2019-01-14T09:30" in res.output  # window and the first perturbed bar


def test_canary_normalisation_fitted_beyond_the_train_span(files, monkeypatch):
    from backend.features.builtin import fit_normalisation
    from backend.training import trainer

    def leaky(features, window):
        mean, var = fit_normalisation(features, window.train_start, window.test_end)
        return mean, np.maximum(var, trainer.VAR_FLOOR)

    monkeypatch.setattr(trainer, "feature_stats", leaky)
    res = audit(*files())
    assert found(res, "training"), res.output
    assert "obs_stats.npz" in res.output


def test_canary_replay_normalised_with_test_statistics(files, monkeypatch):
    from backend.evaluation import replay
    from backend.features.builtin import fit_normalisation

    real = replay.test_env_factory

    def leaky(cfg, market, features, window, norm, clip_obs):
        mean, var = fit_normalisation(features, window.test_start, window.test_end)
        return real(cfg, market, features, window, (mean, np.maximum(var, 1e-8)), clip_obs)

    monkeypatch.setattr(replay, "test_env_factory", leaky)
    res = audit(*files())
    assert found(res, "replay"), res.output


def test_canary_centred_rolling_feature(files, leak_feature):
    def centred(m):
        r = np.r_[0.0, np.log(m.close[1:] / m.close[:-1])]
        return np.convolve(r, np.ones(5) / 5, mode="same")  # bars t-2 .. t+2

    name = leak_feature("centred_mean", centred)
    res = audit(*files({"env": {"features": ["ret_1", name]}}))
    assert res.exit_code == 3, res.output
    assert found(res, "training") or found(res, "replay")


def test_canary_next_bar_information_at_session_opens_only(files, leak_feature):
    def opens_peek(m):
        out = np.zeros(len(m.close))
        starts, _ = m.session_bounds()
        out[starts] = np.log(m.close[starts + 1] / m.close[starts])  # 1 bar in 26 at 15m
        return out

    name = leak_feature("open_peek", opens_peek)
    res = audit(*files({"env": {"features": ["ret_1", name]}}), "--cuts", "0")  # no random cut needed
    assert found(res, "features") and found(res, "replay"), res.output


def test_canary_reward_using_bar_t_plus_2(files, monkeypatch):
    from backend.envs.intraday_env import IntradayTradingEnv

    real = IntradayTradingEnv.step

    def peeking(self, action):
        obs, reward, term, trunc, info = real(self, action)
        t = min(self._t + 1, len(self._close) - 1)
        return obs, reward + 0.01 * (self._close[t] / self._close[t - 1] - 1.0), term, trunc, info

    monkeypatch.setattr(IntradayTradingEnv, "step", peeking)
    res = audit(*files())
    assert found(res, "training env") or found(res, "training"), res.output


def test_canary_warm_start_from_a_window_whose_data_reach_the_test_span(files, monkeypatch):
    from backend.run import driver

    def from_the_future(windows, embargo):  # each window starts from the next one in time
        ordered = sorted(windows, key=lambda w: w.test_start)
        return {w.id: (ordered[k + 1].id if k + 1 < len(ordered) else None) for k, w in enumerate(ordered)}

    monkeypatch.setattr(driver, "warm_start_sources", from_the_future)
    res = audit(*files({"training": {"warm_start": True}}))
    assert found(res, "training"), res.output
    assert "window w01" in res.output


def test_audit_on_the_sbx_backend_passes_clean_and_catches_a_planted_leak(files, monkeypatch):
    pytest.importorskip("sbx")
    from backend.training import trainer

    c, w = files({"agent": {"backend": "sbx"}})
    res = wf("audit", "--config", c, "--windows", w, "--steps", "120", "--quiet")
    assert res.exit_code == 0, res.output
    real = trainer.train_env_factory
    monkeypatch.setattr(
        trainer,
        "train_env_factory",
        lambda cfg, m, f, w, **kw: real(cfg, m, f, dataclasses.replace(w, train_end=w.test_end), **kw),
    )
    res = wf("audit", "--config", c, "--windows", w, "--steps", "120", "--quiet")
    assert found(res, "training"), res.output
    assert "jax_weights.msgpack" in res.output


def test_canary_a_peek_at_one_interior_bar_a_session_is_found_without_random_cuts(files, leak_feature):
    def noon_peek(m):
        out = np.zeros(len(m.close))
        at = np.flatnonzero(np.isclose(m.minutes_from_open, 150.0))[:-1]  # 12:00 New York, every session
        out[at] = np.log(m.close[at + 1] / m.close[at])
        return out

    name = leak_feature("noon_peek", noon_peek)
    res = audit(*files({"env": {"features": ["ret_1", name]}}), "--cuts", "0")
    assert found(res, "features"), res.output
    assert "noon_peek" in res.output and "12:00" in res.output


def test_canary_a_centred_rolling_max_of_volume(files, leak_feature):
    def centred_volume(m):
        v = np.log1p(m.volume)
        out = v.copy()
        out[1:-1] = np.maximum(np.maximum(v[:-2], v[1:-1]), v[2:])  # bars t-1 .. t+1
        return out

    name = leak_feature("vol_centred_max", centred_volume)
    res = audit(*files({"env": {"features": ["ret_1", name]}}), "--cuts", "0")
    assert found(res, "features"), res.output


def test_canary_training_that_records_a_longer_span_is_exit_3_not_5(files, monkeypatch):
    from backend.training import trainer

    real = trainer.train_window

    def longer(cfg, market, features, window, *a, **k):
        return real(cfg, market, features, dataclasses.replace(window, train_end=window.train_end + 5), *a, **k)

    monkeypatch.setattr(trainer, "train_window", longer)
    res = audit(*files())
    assert res.exit_code == 3 and found(res, "training"), res.output


def test_default_audit_catches_an_env_peek_at_one_interior_bar_of_every_session(files, monkeypatch):
    """The env check is on by default: a peek the replay cuts would only sample (issue 23) is an env finding."""
    from backend.envs.intraday_env import IntradayTradingEnv

    original = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = original(self)
        t = self.current_bar
        if t - self._first == 11 and t + 1 < len(self._close):
            obs[-1] += self._close[t + 1] / self._close[t] - 1.0
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", peeking)
    res = audit(*files())
    assert found(res, "env"), res.output
    assert "the train env's observation: state variable 'time_left'" in res.output
    assert "2019-01-02T12:15:00-05:00" in res.output


def test_no_env_check_leaves_the_env_to_the_sampled_replay_cuts(files, monkeypatch):
    """Negative control: without the env check, no env finding (only the sampled agent-path checks run)."""
    res = audit(*files(), "--no-env-check")
    assert res.exit_code == 0, res.output
    assert "env:" not in res.output and "the env identical at every bar" not in res.output


def test_trades_compound_to_the_equity_total_within_the_rounding_of_the_products():
    """The docs' measured compounding bound: a long seeded ledger through the real env and the real trade ledger."""
    from backend.checks.compounding import compounding_error, ledger_figures

    n, err = ledger_figures("5m", 20)
    assert n > 100 and 0.0 <= err <= 2 * n * np.finfo(np.float64).eps  # n factors per product, each rounding once
    assert compounding_error(np.array([0.1, -0.05]), np.array([0.1, 0.0, -0.05])) < 1e-15
    assert compounding_error(np.array([0.1]), np.array([0.2])) > 0.05  # negative control: a wrong ledger is seen
