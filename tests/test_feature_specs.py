"""Feature specs: the grammar with did-you-mean hints, declared warm-ups (every registered feature reads no
further back than it says) and history-start independence (a history loaded a month later gives bit-identical
features on the window, TA-Lib's EMA-style indicators included)."""

import numpy as np
import pytest

from backend.core.errors import InputError
from backend.features import builtin, specs
from backend.features.builtin import FEATURES, compute_features

SPAN = 4000  # bars of the sample the checks run on (about 51 sessions of 5-minute bars)


def declared_start(name: str, market, t: int) -> int:
    """The first bar the feature at t may read, by its declaration."""
    w = builtin.FEATURE_WARMUP[name]
    if w != builtin.SESSION:
        return t - int(w)
    starts, _ = market.session_bounds()
    first = starts[np.searchsorted(starts, t, side="right") - 1]
    return first - builtin.SESSION_PREV_BARS[name]


def assert_reads_only_declared(name: str, market, points: int = 25) -> None:
    """The feature at t computed from bars [declared start, t] equals the one of the whole history; a
    warm-up declared one bar too short must fail (negative control, where the feature reads back at all)."""
    m = market.take(0, SPAN)
    full = compute_features(m, [name])[:, 0]
    rng = np.random.default_rng(0)
    for t in sorted(rng.integers(400, SPAN - 1, points)):
        lo = declared_start(name, m, int(t))
        assert lo >= 0
        got = compute_features(m.take(lo, int(t) + 1), [name])[-1, 0]
        assert got == full[t], f"{name} at bar {t} reads further back than its declared warm-up"


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_every_registered_feature_reads_no_further_back_than_declared(name, market_5m):
    assert_reads_only_declared(name, market_5m)


def test_the_declaration_check_catches_a_short_declaration(market_5m):
    """Negative control: vol_20 declared with warm-up 10 must be caught."""
    saved = builtin.FEATURE_WARMUP["vol_20"]
    builtin.FEATURE_WARMUP["vol_20"] = 10
    try:
        with pytest.raises(AssertionError, match="reads further back"):
            assert_reads_only_declared("vol_20", market_5m)
    finally:
        builtin.FEATURE_WARMUP["vol_20"] = saved


SPECS = [
    "ret_1",
    "vwap_dev",
    "talib:RSI(timeperiod=14)",
    "talib:EMA(timeperiod=30)/close",
    "talib:MACD(fastperiod=12,slowperiod=26,signalperiod=9).macdhist",
    "talib:BBANDS(timeperiod=20).upperband/close",
    "talib:ATR(timeperiod=14)",
]


def test_features_of_a_history_starting_a_month_later_are_bit_identical_on_the_window(market_5m):
    """The rule: TA-Lib values of a session are computed from a fixed number of bars before it (memory_bars),
    so whatever the first loaded bar, the window's features agree bit for bit once warmed up."""
    m = market_5m.take(0, 6000)
    month = int(np.searchsorted(m.session_id, 21))  # a history loaded 21 sessions later
    window = int(np.searchsorted(m.session_id, 30))  # a train span starting 9 sessions after that
    full = compute_features(m, SPECS)
    late = compute_features(m.take(month, len(m)), SPECS)
    assert np.array_equal(full[window:], late[window - month :])
    assert specs.warmup_bars(SPECS, session_bars=78) <= window - month  # the declared warm-up fits


def test_plain_talib_over_the_whole_history_would_not_be_start_independent(market_5m):
    """Negative control for the rule above: one EMA call over all loaded bars differs with the start."""
    import talib

    close = market_5m.close[:6000]
    a = talib.EMA(close, timeperiod=30)[1650:1700]
    b = talib.EMA(close[1600:], timeperiod=30)[50:100]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "spec, hint",
    [
        ("ret1", "did you mean 'ret_1'"),
        ("talib:RSII(timeperiod=14)", "did you mean 'talib:RSI'"),
        ("talib:RSI(timeperod=14)", "did you mean 'timeperiod'"),
        ("talib:MACD(fastperiod=12)", "several outputs .*macdhist"),
        ("talib:MACD().macdhst", "did you mean 'macdhist'"),
        ("talib:RSI(timeperiod=abc)", "not a int"),
        ("talib:RSI(14)", "written k=v"),
        ("column:imbb", "did you mean 'column:imb'"),
        ("QQQQ:ret_1", "did you mean 'QQQ'"),
        ("QQQ:ret1", "did you mean 'ret_1'"),
    ],
)
def test_bad_specs_are_refused_with_a_hint(spec, hint):
    with pytest.raises(InputError, match=hint):
        specs.parse(spec, columns=["imb"], context=["QQQ"])


def test_spec_grammar_parses_every_kind():
    s = specs.parse("talib:BBANDS(timeperiod=20,nbdevup=2.5).upperband/close")
    assert (s.kind, s.name, s.params, s.output, s.rel) == (
        "talib",
        "BBANDS",
        {"timeperiod": 20, "nbdevup": 2.5},
        "upperband",
        True,
    )
    assert specs.parse("column:imb", columns=["imb"]).kind == "column"
    ctx = specs.parse("QQQ:talib:RSI(timeperiod=5)", context=["QQQ"])
    assert ctx.kind == "context" and ctx.inner.kind == "talib"
    assert specs.warmup(specs.parse("talib:RSI(timeperiod=14)")) == (
        builtin.SESSION,
        64,
    )  # max(4 x lookback 14, 14 + 50)


def test_rel_close_makes_price_levels_scale_free(market_5m):
    m = market_5m.take(0, 3000)
    import dataclasses

    scaled = dataclasses.replace(m, **{k: getattr(m, k) * 10.0 for k in ("open", "high", "low", "close")})
    spec = ["talib:BBANDS(timeperiod=20).upperband/close"]
    a, b = compute_features(m, spec), compute_features(scaled, spec)
    assert np.allclose(a, b, atol=1e-6) and np.abs(a).max() < 0.2
    raw = ["talib:BBANDS(timeperiod=20).upperband"]
    assert not np.allclose(compute_features(m, raw), compute_features(scaled, raw))


def test_declared_warmup_of_talib_specs_feeds_the_tune_accounting():
    from backend.features.builtin import warmup_bars

    assert warmup_bars(["ret_15"], session_bars=78) == 15
    assert warmup_bars(["ret_1", "talib:RSI(timeperiod=14)"], session_bars=78) == 77 + 64


def test_a_history_shorter_than_the_declared_warm_up_is_warned(tmp_path):
    from tests.helpers import wf

    w = tmp_path / "w.json"
    w.write_text('[{"id": "w01", "train_start": "2018-01-02", "train_end": "2018-01-19", '
                 '"test_start": "2018-01-22", "test_end": "2018-01-24"}]')  # fmt: skip
    args = ["run", "--symbol", "SPY", "--source", "sample", "--windows", str(w), "--dry-run"]
    res = wf(*args, "--set", "data.start=2018-01-02")
    assert res.exit_code == 0, res.output
    assert "window w01: the loaded history holds 0 bar(s) before its train start" in res.output
    res = wf(*args)  # the sample's history reaches back to 2017: no note
    assert res.exit_code == 0 and "before its train start" not in res.output, res.output
