"""Extra file columns (data.columns, resampling rules, known at the bar's close) and context series (data.context:
a bar sees only context bars that ENDED by its own end, no back-fill, coverage reported); planted misalignments
(a column shifted by one bar, a context aligned on bar starts) make the audit exit 3 naming feature and bar."""

import json

import numpy as np
import pytest

from backend.core.errors import InputError
from backend.data import sessions
from backend.features import context, specs
from backend.features.builtin import compute_features
from backend.run.options import SetupOptions
from backend.run.window_setup import setup
from tests.helpers import wf
from tests.test_user_features import clean_registry, example_fixture  # noqa: F401 - shared fixtures


def test_resampling_rules_of_extra_columns():
    x = np.array([1.0, 4.0, np.nan, 2.0, np.nan, np.nan])
    starts, ends = np.array([0, 3, 4]), np.array([2, 3, 5])
    assert np.allclose(sessions._aggregate(x, starts, ends, "sum"), [5.0, 2.0, np.nan], equal_nan=True)
    assert np.allclose(sessions._aggregate(x, starts, ends, "mean"), [2.5, 2.0, np.nan], equal_nan=True)
    assert np.allclose(sessions._aggregate(x, starts, ends, "max"), [4.0, 2.0, np.nan], equal_nan=True)
    assert np.allclose(sessions._aggregate(x, starts, ends, "min"), [1.0, 2.0, np.nan], equal_nan=True)
    assert np.allclose(sessions._aggregate(x, starts, ends, "last"), [4.0, 2.0, np.nan], equal_nan=True)


def test_column_is_resampled_by_its_rule_and_known_at_its_bar(example):
    s = setup(SetupOptions(config="features_config.json", windows="w.json"))  # 5-minute file, 15-minute bars
    col = s.market.columns["imb"]
    raw = __import__("pandas").read_csv(example / "spy_imb.csv", index_col=0)
    first = raw["imb"].iloc[:3].mean()  # the first 15-minute bar = mean of its three 5-minute bars
    assert col[0] == pytest.approx(first)
    got = compute_features(s.market, ["column:imb"])[:, 0]
    assert np.array_equal(got, col.astype(np.float32))


def test_unknown_data_column_is_refused_with_a_hint(example):
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["data"]["columns"] = {"imbb": "mean"}
    cfg["env"]["features"] = ["ret_1"]
    (example / "c.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="did you mean 'imb'"):
        setup(SetupOptions(config="c.json", windows="w.json"))


def test_daily_context_sees_only_sessions_that_ended(example):
    s = setup(SetupOptions(config="features_config.json", windows="w.json"))
    ctx = s.market.context["QQQ"]
    idx = context.align_index(s.market, ctx)
    ends = s.market.bar_end_ns()
    ok = idx >= 0
    assert (ctx.end_ns[idx[ok]] <= ends[ok]).all()  # never a context bar that ends later
    nxt = np.minimum(idx[ok] + 1, len(ctx.end_ns) - 1)
    assert ((ctx.end_ns[nxt] > ends[ok]) | (idx[ok] + 1 == len(ctx.end_ns))).all()  # the latest one that ended
    first_session = s.market.session_id == 0
    # no back-fill: in the first session no daily bar has ended, until its last bar (which ends at the close)
    assert (idx[first_session][:-1] == -1).all() and idx[first_session][-1] == 0
    feats = compute_features(s.market, ["QQQ:ret_1"])[:, 0]
    assert (feats[first_session][:-1] == 0).all()
    assert any("before its first ended bar" in w for w in s.loaded.warnings)  # the coverage count


def test_intraday_context_and_talib_on_the_context(example):
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["data"]["context"][0]["interval"] = "30m"
    cfg["env"]["features"] = ["QQQ:ret_1", "QQQ:talib:RSI(timeperiod=5)"]
    (example / "c.json").write_text(json.dumps(cfg))
    s = setup(SetupOptions(config="c.json", windows="w.json"))
    ctx = s.market.context["QQQ"]
    idx = context.align_index(s.market, ctx)
    # a 15-minute bar ending at :45 sees the 30-minute bar that ended at :30, one ending at :00 sees the one just ended
    ends = s.market.bar_end_ns()
    assert (ctx.end_ns[idx[idx >= 0]] <= ends[idx >= 0]).all()
    assert len(np.unique(idx[idx >= 0])) < (idx >= 0).sum()  # two 15-minute bars share a 30-minute context bar
    assert np.isfinite(compute_features(s.market, cfg["env"]["features"])).all()
    assert specs.parse("QQQ:talib:RSI(timeperiod=5)", context=["QQQ"]).inner.kind == "talib"


def audit(example, features):
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["env"]["features"] = features
    (example / "c.json").write_text(json.dumps(cfg))
    return wf("audit", "--config", "c.json", "--windows", "w.json", "--steps", "200", "--quiet", "--cuts", "0")


def test_a_file_column_shifted_by_one_bar_fails_the_audit(example, monkeypatch):
    monkeypatch.setattr(specs, "read_column", lambda m, name: np.r_[m.columns[name][1:], np.nan])
    res = audit(example, ["ret_1", "column:imb"])
    assert res.exit_code == 3, res.output
    assert "look-ahead [w01] features:" in res.output and "feature 'column:imb' at 2019-01-14T09:30" in res.output


def test_a_context_aligned_on_bar_starts_fails_the_audit(example, monkeypatch):
    def on_starts(main, ctx):
        return np.searchsorted(ctx.market.timestamps, main.timestamps, side="right") - 1

    monkeypatch.setattr(context, "align_index", on_starts)
    res = audit(example, ["ret_1", "QQQ:ret_1"])
    assert res.exit_code == 3, res.output
    assert "look-ahead [w01] features:" in res.output and "feature 'QQQ:ret_1' at 2019-01-14T09:30" in res.output


def test_the_harness_alignment_passes_the_same_audit(example):
    """Negative control of the two canaries above: the real column and context code pass."""
    res = audit(example, ["ret_1", "column:imb", "QQQ:ret_1"])
    assert res.exit_code == 0, res.output


def test_a_daily_file_is_read_as_one_bar_per_session_ending_at_the_close(example):
    import pandas as pd

    intraday = pd.read_csv(example / "qqq.csv", index_col=0)
    intraday.index = pd.to_datetime(intraday.index, utc=True).tz_convert("America/New_York")
    daily = intraday.groupby(intraday.index.date).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    daily.index.name = "date"
    daily.to_csv(example / "qqq_daily.csv")
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["data"]["context"][0]["path"] = "qqq_daily.csv"
    cfg["env"]["features"] = ["ret_1", "QQQ:ret_1", "QQQ:talib:RSI(timeperiod=5)"]
    (example / "d.json").write_text(json.dumps(cfg))
    from_file = setup(SetupOptions(config="d.json", windows="w.json"))
    from_bars = setup(SetupOptions(config="features_config.json", windows="w.json"))
    a, b = from_file.market.context["QQQ"], from_bars.market.context["QQQ"]
    assert len(a.end_ns) == len(daily) and np.array_equal(a.end_ns, b.end_ns)  # each row ends at its close
    assert np.array_equal(context.align_index(from_file.market, a), context.align_index(from_bars.market, b))
    assert np.array_equal(a.market.close, daily["close"].to_numpy())  # the file's rows as given
    assert np.isfinite(compute_features(from_file.market, cfg["env"]["features"])).all()
