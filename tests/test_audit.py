"""wf audit passes on the sample's default features and catches a planted next-bar feature."""

import json

import numpy as np
import pytest

from backend.features import FEATURES, register_feature
from tests.helpers import wf


@pytest.fixture
def leaky_feature():
    @register_feature("leak_next_return", "log return of the NEXT bar — look-ahead on purpose")
    def _leak(m):
        out = np.zeros(len(m.close))
        out[:-1] = np.log(m.close[1:] / m.close[:-1])
        return out

    yield "leak_next_return"
    FEATURES.pop("leak_next_return")


def test_audit_passes_with_every_default_feature():
    res = wf("audit", "--windows", "tmp/mini_windows_multi.json", "--source", "sample", "--symbol", "SPY")
    assert res.exit_code == 0, res.output
    assert "[STAGE ✅] Audit — no look-ahead found (3 windows, 10 features" in res.output


def test_audit_names_a_planted_next_bar_feature(leaky_feature, tmp_path):
    cfg = tmp_path / "leak.json"
    cfg.write_text(json.dumps({"env": {"features": ["ret_1", leaky_feature, "vol_20"]}}))
    res = wf("audit", "--config", cfg, "--windows", "tmp/mini_window.json", "--quiet")
    assert res.exit_code == 3, res.output
    marker = [line for line in res.output.splitlines() if line.startswith("[STAGE ❌] Audit")]
    assert marker and "feature 'leak_next_return'" in marker[0]
    assert "feature 'ret_1'" not in res.output and "feature 'vol_20'" not in res.output


def test_audit_flags_an_observation_that_peeks(monkeypatch):
    from backend.envs.intraday_env import IntradayTradingEnv

    real = IntradayTradingEnv._get_obs

    def peeking(self):
        obs = real(self)
        obs[-1] = self._close[min(self._t + 1, len(self._close) - 1)]  # the next close
        return obs

    monkeypatch.setattr(IntradayTradingEnv, "_get_obs", peeking)
    res = wf("audit", "--windows", "tmp/mini_window.json", "--quiet")
    assert res.exit_code == 3 and "observation at bar" in res.output
