"""Markets beyond US equities: exchange calendars, 24/7 (crypto), 24/5 (FX), the session cut, annualisation."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from backend.config.models import DataConfig, load_config
from backend.core import calendars
from backend.core.errors import InputError
from backend.data.loader import load_bars
from backend.walkforward.windows import parse_windows, resolve

NY = "America/New_York"


def _bars(index: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(index))))
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) * 1.0005,
            "Low": np.minimum(open_, close) * 0.9995,
            "Close": close,
            "Volume": rng.integers(1, 100, len(index)).astype(float),
        },
        index=index,
    )


def crypto_csv(tmp_path, start="2024-03-01", end="2024-03-15"):
    """A 24/7 crypto-like file: 5-minute bars every day, naive UTC timestamps, as pandas writes them."""
    idx = pd.date_range(start, end, freq="5min", inclusive="left")
    path = tmp_path / "btc.csv"
    _bars(idx).to_csv(path)  # the index goes into the unnamed first column
    return path


def fx_csv(tmp_path, start="2024-03-03 17:00", end="2024-03-16 00:00"):
    """A 24/5 FX-like file: hourly bars Sunday 17:00 → Friday 17:00 New York, tz-aware, across the March DST change."""
    idx = pd.date_range(pd.Timestamp(start, tz=NY), pd.Timestamp(end, tz=NY), freq="1h", inclusive="left")
    local = idx.tz_convert(NY)
    week_hour = (local.day_of_week * 24 + local.hour + 7) % (7 * 24)  # 0 = Sunday 17:00 New York
    idx = idx[week_hour < 5 * 24]  # the FX week: Sunday 17:00 -> Friday 17:00
    path = tmp_path / "eurusd.csv"
    frame = _bars(idx, seed=1).drop(columns="Volume")  # FX bars often come without volume
    frame.index.name = "Date"
    frame.to_csv(path)
    return path


def test_annualisation_table():
    a = calendars.annualisation("XNYS", "5m")
    assert (a["sessions_per_year"], a["bars_per_session"], a["bars_per_year"]) == (252, 78, 19_656)
    assert calendars.annualisation("XNYS", "1h")["bars_per_session"] == 7  # 09:30 … 15:30, as resampled
    fx = calendars.annualisation("24/5", "1h", "17:00")
    assert (fx["sessions_per_year"], fx["bars_per_session"], fx["bars_per_year"]) == (260, 24, 6_240)
    assert fx["calendar"] == "24/5" and fx["session_cut"] == "17:00" and fx["basis"]
    crypto = calendars.annualisation("24/7", "5m")
    assert (crypto["sessions_per_year"], crypto["bars_per_session"], crypto["bars_per_year"]) == (365, 288, 105_120)
    tokyo = calendars.annualisation("XTKS", "5m")  # 09:00-15:00 less the lunch break
    assert tokyo["bars_per_session"] == 60 and 240 <= tokyo["sessions_per_year"] <= 250
    assert set(a) == {"calendar", "interval", "session_cut", "sessions_per_year", "bars_per_session", "bars_per_year",
                      "basis"}  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "cut", "needle"),
    [
        ("NYSEE", None, "not a known calendar"),
        ("24/6", None, "not a known calendar"),
        ("../x", None, "not a known calendar"),
        ("XNYS", "17:00", "applies to the 24/7 and 24/5 calendars only"),
        ("24/5", "5pm", "expected HH:MM"),
        ("24/5", "24:00", "expected HH:MM"),
    ],
)
def test_bad_calendars_and_cuts_are_input_errors(calendar, cut, needle):
    with pytest.raises(InputError, match=needle):
        calendars.check_calendar(calendar, cut, build=True)
    with pytest.raises(InputError, match=needle):  # the loader checks too (a DataConfig built without validation)
        load_bars(
            DataConfig.model_construct(
                **{**DataConfig().model_dump(), "source": "synthetic", "calendar": calendar, "session_cut": cut}
            )
        )
    if calendar != "NYSEE":  # a config is checked by form when it loads (exchange names when the data load)
        with pytest.raises(InputError, match=r"data\.calendar|data\.session_cut"):
            load_config(None, data_overrides={"calendar": calendar, "session_cut": cut})


def test_fx_sessions_follow_the_new_york_cut_across_dst():
    t = calendars.session_table(
        "24/5", pd.Timestamp("2024-03-06", tz="UTC"), pd.Timestamp("2024-03-12", tz="UTC"), "17:00", NY
    )
    names = [str(d) for d in t.label]
    assert "2024-03-09" not in names and "2024-03-10" not in names  # Saturday, Sunday: no FX session
    monday = names.index("2024-03-11")
    opens = pd.DatetimeIndex(t.open.astype("datetime64[ns]"), tz="UTC").tz_convert(NY)
    closes = pd.DatetimeIndex(t.close.astype("datetime64[ns]"), tz="UTC").tz_convert(NY)
    assert str(opens[monday]) == "2024-03-10 17:00:00-04:00"  # Monday's session opens Sunday 17:00 (after DST)
    assert str(closes[monday]) == "2024-03-11 17:00:00-04:00"
    friday = names.index("2024-03-08")
    assert str(closes[friday]) == "2024-03-08 17:00:00-05:00"  # before the change: 22:00 UTC
    utc = calendars.session_table("24/7", pd.Timestamp("2024-03-08", tz="UTC"), pd.Timestamp("2024-03-09", tz="UTC"))
    i = list(utc.label).index(np.datetime64("2024-03-09"))
    assert (utc.open[i], utc.close[i]) == (
        pd.Timestamp("2024-03-09", tz="UTC").value,
        pd.Timestamp("2024-03-10", tz="UTC").value,
    )


def test_crypto_24_7_file_loads_every_day(tmp_path):
    path = crypto_csv(tmp_path)
    bars = load_bars(DataConfig(source="file", path=str(path), calendar="24/7", timezone="UTC", interval="1h"))
    assert bars.report["sessions"] == 14 and bars.report["bars_outside_session_dropped"] == 0
    per_day = pd.Series(bars.session_date).value_counts()
    assert (per_day == 24).all()
    assert date(2024, 3, 2) in bars.session_dates() and date(2024, 3, 3) in bars.session_dates()  # weekends trade
    assert bars.annualisation()["bars_per_year"] == 8_760
    assert bars.provenance["calendar"] == "24/7" and bars.provenance["session_end"] == "00:00 UTC"
    assert bars.report["gap_bars"] == 0


def test_fx_24_5_hourly_file_loads_with_the_17h_cut(tmp_path):
    path = fx_csv(tmp_path)
    cfg = DataConfig(source="file", path=str(path), calendar="24/5", session_cut="17:00", timezone=NY, interval="1h")
    bars = load_bars(cfg)
    assert bars.report["sessions"] == 10 and bars.report["bars_outside_session_dropped"] == 0
    assert all(d.weekday() < 5 for d in bars.session_dates())
    counts = pd.Series(bars.session_date).value_counts()
    assert (counts == 24).all()  # 24 hourly bars in every session, DST week included
    first = bars.frame.index[0]
    assert str(first) == "2024-03-03 17:00:00-05:00" and str(bars.session_date[0]) == "2024-03-04"  # Sunday → Monday
    assert bars.annualisation()["bars_per_year"] == 6_240
    assert any("no volume column" in n for n in bars.report["notes"])
    # a window's dates name sessions: the test span "Monday" starts on Sunday 17:00
    specs, _, _ = parse_windows(
        [
            {
                "train_start": "2024-03-04",
                "train_end": "2024-03-08",
                "test_start": "2024-03-11",
                "test_end": "2024-03-12",
            }
        ],
        "fx.json",
        NY,
    )
    ts = bars.frame.index.as_unit("ns").asi8
    sid = np.cumsum(np.r_[True, bars.session_open[1:] != bars.session_open[:-1]]) - 1
    (w,) = resolve(specs, ts, sid, 0, "fx.json", bars=bars)
    assert str(bars.frame.index[w.test_start]) == "2024-03-10 17:00:00-04:00"
    assert (w.train_bars, w.test_bars, w.train_sessions, w.test_sessions) == (120, 48, 5, 2)
    # bars on the weekend are outside the FX week and dropped
    raw = pd.read_csv(path)
    friday_last = raw.index[raw["Date"].str.startswith("2024-03-08 16:00")][0]
    saturday = raw.loc[[friday_last]].assign(Date="2024-03-09 12:00:00-05:00")
    raw = pd.concat([raw.loc[:friday_last], saturday, raw.loc[friday_last + 1 :]])
    raw.to_csv(tmp_path / "weekend.csv", index=False)
    again = load_bars(cfg.model_copy(update={"path": str(tmp_path / "weekend.csv")}))
    assert again.report["bars_outside_session_dropped"] == 1


def test_fx_data_start_and_end_select_sessions_by_name(tmp_path):
    path = fx_csv(tmp_path)
    cfg = DataConfig(
        source="file",
        path=str(path),
        calendar="24/5",
        session_cut="17:00",
        timezone=NY,
        interval="1h",
        start=date(2024, 3, 11),
        end=date(2024, 3, 11),
    )
    bars = load_bars(cfg)
    assert bars.session_dates() == [date(2024, 3, 11)] and len(bars.frame) == 24
    assert str(bars.frame.index[0]) == "2024-03-10 17:00:00-04:00"


def test_synthetic_bars_on_a_24_7_calendar():
    bars = load_bars(
        DataConfig(
            source="synthetic",
            calendar="24/7",
            timezone="UTC",
            interval="15m",
            start=date(2024, 1, 1),
            end=date(2024, 1, 7),
        )
    )
    assert bars.session_dates() == [date(2024, 1, d) for d in range(1, 8)]
    assert len(bars.frame) == 7 * 96


def test_exchange_sessions_are_named_by_exchange_date():
    bars = load_bars(DataConfig(interval="1h", start=date(2019, 3, 8), end=date(2019, 3, 12)))
    assert bars.session_dates() == [date(2019, 3, 8), date(2019, 3, 11), date(2019, 3, 12)]
    assert bars.provenance["session_end"] == "the XNYS close"
