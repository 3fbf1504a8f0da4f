"""TA-Lib features through the abstract API: values equal TA-Lib's own on each session's fixed memory span,
multi-output functions pick their output, `/close` is scale-free, and a planted centred call fails the audit."""

import json

import numpy as np
import talib

from backend.features import talib as ta
from backend.features.builtin import compute_features
from tests.helpers import wf
from tests.test_user_features import clean_registry, example_fixture  # noqa: F401 - shared fixtures


def test_values_are_talib_on_each_sessions_memory_span(market_5m):
    m = market_5m.take(0, 3000)
    got = compute_features(m, ["talib:MACD(fastperiod=12,slowperiod=26,signalperiod=9).macdhist"])[:, 0]
    memory = ta.memory_bars("MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9})
    starts, ends = m.session_bounds()
    a, b = starts[5], ends[5]
    want = talib.MACD(m.close[a - memory : b], 12, 26, 9)[2][memory:]
    assert np.array_equal(got[a:b], want.astype(np.float32))
    assert np.all(got[: starts[np.searchsorted(starts, memory)]] == 0)  # sessions without their memory: warm-up


def test_functions_with_several_inputs_and_the_memory_rule_declared(market_5m):
    m = market_5m.take(0, 2000)
    out = compute_features(m, ["talib:ATR(timeperiod=14)", "talib:OBV", "talib:STOCH.slowk"])
    assert np.isfinite(out).all() and (out[-500:] != 0).all(axis=0).all()
    assert ta.lookback("RSI", {"timeperiod": 14}) == 14
    assert ta.memory_bars("RSI", {"timeperiod": 14}) == 64


def test_a_centred_talib_call_fails_the_audit(example, monkeypatch):
    real = ta._call

    def centred(name, params, output, inputs):  # SMA(5) centred: the value at t averages t-2 .. t+2
        out = real(name, params, output, inputs)
        return np.r_[out[2:], np.nan, np.nan]

    monkeypatch.setattr(ta, "_call", centred)
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["env"]["features"] = ["ret_1", "talib:SMA(timeperiod=5)/close"]
    (example / "c.json").write_text(json.dumps(cfg))
    res = wf("audit", "--config", "c.json", "--windows", "w.json", "--steps", "200", "--quiet", "--cuts", "0")
    assert res.exit_code == 3, res.output
    assert "look-ahead [w01] features:" in res.output
    assert "feature 'talib:SMA(timeperiod=5)/close' at 2019-01-14T09:30" in res.output
