from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from backend.config.models import DataConfig
from backend.core.errors import DataError, InputError
from backend.data import cache, catalog, sources, yahoo
from backend.data.loader import load_bars
from tests.helpers import fake_history, wf

NY = "America/New_York"


def test_sample_is_the_documented_real_data():
    raw = sources.read_sample()
    assert len(raw) == 293_707
    assert str(raw.index[0]) == "2017-01-03 09:30:00-05:00"
    assert str(raw.index[-1]) == "2019-12-31 16:00:00-05:00"


def test_sessions_open_0930_new_york_across_dst(sample_5m):
    idx = sample_5m.frame.index
    first = pd.Series(idx.strftime("%H:%M")).groupby(np.asarray(idx.date)).first()
    # every session opens at 09:30 local time, in winter (-05:00) and summer (-04:00) alike;
    # 2019-10-31 is a known data gap in the source (first bar 10:40 after resampling)
    assert set(first.drop(date(2019, 10, 31))) == {"09:30"}
    offsets = {str(t.utcoffset()) for t in idx[::5000]}
    assert offsets == {"-1 day, 19:00:00", "-1 day, 20:00:00"}  # -05:00 and -04:00 both present


def test_half_days_holidays_and_resampling(sample_5m):
    f = sample_5m.frame
    half = f.loc["2017-11-24"]
    assert str(half.index[-1].time()) == "12:55:00" and len(half) == 42  # 13:00 close
    assert len(f.loc["2018-07-04":"2018-07-04"]) == 0  # holiday
    full = f.loc["2019-03-12"]
    assert len(full) == 78 and str(full.index[-1].time()) == "15:55:00"
    raw = sources.read_sample().loc["2019-03-12 09:30":"2019-03-12 09:34"]
    bar = full.iloc[0]
    assert bar.open == raw.open.iloc[0] and bar.close == raw.close.iloc[-1]
    assert bar.high == raw.high.max() and bar.volume == raw.volume.sum()
    assert sample_5m.report["bars_outside_session_dropped"] > 0  # the 16:00 rows and post-close rows


def test_resampling_never_crosses_the_overnight_gap():
    bars = load_bars(DataConfig(interval="1h", start=date(2019, 3, 1), end=date(2019, 3, 15)))
    f = bars.frame
    days = pd.Series(f.index.date)
    assert (days.value_counts() == 7).all()
    assert {str(t.time()) for t in f.index} == {f"{h:02d}:30:00" for h in range(9, 16)}


def test_file_source_case_insensitive_csv_and_parquet(tmp_path):
    raw = sources.read_sample().loc["2019-01-02":"2019-01-04"]
    csv = raw.reset_index().rename(
        columns={
            "timestamp": "Datetime",
            "open": "OPEN",
            "close": "Close",
            "high": "High",
            "low": "Low",
            "volume": "Volume",
        }
    )
    csv["Datetime"] = csv["Datetime"].dt.tz_localize(None)  # naive: read in the exchange zone
    csv.to_csv(tmp_path / "bars.csv", index=False)
    raw.to_parquet(tmp_path / "bars.parquet")  # timestamp index
    a = load_bars(DataConfig(source="file", path=str(tmp_path / "bars.csv"), interval="5m"))
    b = load_bars(DataConfig(source="file", path=str(tmp_path / "bars.parquet"), interval="5m"))
    ref = load_bars(DataConfig(interval="5m", start=date(2019, 1, 2), end=date(2019, 1, 4)))
    pd.testing.assert_frame_equal(a.frame, ref.frame)
    pd.testing.assert_frame_equal(b.frame, ref.frame)
    assert a.data_hash() == ref.data_hash()


def _write(tmp_path, frame):
    path = tmp_path / "x.csv"
    frame.reset_index().to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.assign(close=f.close.where(f.index != f.index[5], np.nan)), "NaN/inf in close"),
        (lambda f: pd.concat([f.iloc[:10], f.iloc[9:10], f.iloc[10:]]), "duplicate timestamps"),
        (lambda f: pd.concat([f.iloc[10:20], f.iloc[:10]]), "not sorted"),
        (lambda f: f.assign(low=f.high + 1), "high < low"),
        (lambda f: f.assign(open=-f.open), "non-positive"),
    ],
)
def test_validation_errors_name_file_and_timestamps(tmp_path, mutate, needle):
    good = sources.read_sample().loc["2019-03-08":"2019-03-11"]
    path = _write(tmp_path, mutate(good))
    with pytest.raises(DataError) as e:
        load_bars(DataConfig(source="file", path=path, interval="5m"))
    assert needle in str(e.value) and path in str(e.value) and "2019-03-08" in str(e.value)


def test_missing_columns_and_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,open,high\n2019-01-02 09:30,1,1\n")
    with pytest.raises(DataError, match="missing column"):
        load_bars(DataConfig(source="file", path=str(p)))
    with pytest.raises(InputError, match="not found"):
        load_bars(DataConfig(source="file", path=str(tmp_path / "nope.csv")))
    with pytest.raises(InputError, match="SPY only"):
        load_bars(DataConfig(source="sample", symbol="TNA"))


def test_coarser_bars_than_interval_are_refused(tmp_path):
    bars = load_bars(DataConfig(interval="15m", start=date(2019, 1, 2), end=date(2019, 1, 4)))
    path = tmp_path / "b.parquet"
    bars.frame.to_parquet(path)
    with pytest.raises(DataError, match="coarser than interval 5m"):
        load_bars(DataConfig(source="file", path=str(path), interval="5m"))


def test_synthetic_is_deterministic_and_labelled():
    cfg = DataConfig(source="synthetic", start=date(2019, 1, 2), end=date(2019, 1, 10))
    a, b = load_bars(cfg), load_bars(cfg)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.synthetic and "synthetic" in a.provenance["origin"]
    c = load_bars(DataConfig(source="synthetic", start=date(2019, 1, 2), end=date(2019, 1, 10), synthetic_seed=1))
    assert not a.frame.equals(c.frame)


# ----------------------------------------------------------------------------- yfinance (no network)


def test_yfinance_caches_and_second_run_makes_no_request(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    today = date.today()
    start, end = today - timedelta(days=20), today - timedelta(days=10)
    cfg = DataConfig(source="yfinance", symbol="TNA", interval="5m", start=start, end=end, cache_dir=str(tmp_path))
    a = load_bars(cfg)
    assert len(calls) == 1 and a.source == "yfinance" and len(a.frame) > 0
    assert (tmp_path / "TNA_5m.parquet").exists() and (tmp_path / "TNA_5m.manifest.json").exists()

    def boom(*args, **kwargs):
        raise AssertionError("network used although the range is cached")

    monkeypatch.setattr(yahoo, "fetch_history", boom)
    b = load_bars(cfg)
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_yfinance_limits_refused_before_any_request(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    old = date.today() - timedelta(days=120)
    cfg = DataConfig(
        source="yfinance", symbol="TNA", interval="5m", start=old, end=old + timedelta(days=5), cache_dir=str(tmp_path)
    )
    with pytest.raises(DataError, match="last 60 days"):
        load_bars(cfg)
    assert calls == []


def test_yfinance_1m_is_chunked_and_empty_results_are_not_cached(tmp_path, monkeypatch):
    assert yahoo.chunks("1m", date(2026, 1, 1), date(2026, 1, 20)) == [
        (date(2026, 1, 1), date(2026, 1, 8)),
        (date(2026, 1, 9), date(2026, 1, 16)),
        (date(2026, 1, 17), date(2026, 1, 20)),
    ]
    monkeypatch.setattr(yahoo, "fetch_history", lambda *a, **k: pd.DataFrame())
    today = date.today()
    cfg = DataConfig(
        source="yfinance",
        symbol="ZZZ",
        interval="5m",
        start=today - timedelta(days=5),
        end=today,
        cache_dir=str(tmp_path),
    )
    with pytest.raises(DataError, match="no 5m bars"):
        load_bars(cfg)
    assert not list(tmp_path.glob("*.parquet"))


def test_messy_csv_across_march_dst_is_rejected_naming_every_problem(tmp_path):
    raw = sources.read_sample().loc["2019-03-08":"2019-03-12"]  # DST starts Sunday 2019-03-10
    f = raw.reset_index()
    f.loc[f.index[400], "close"] = np.nan  # a NaN close on 2019-03-11
    f = pd.concat([f.iloc[:10], f.iloc[9:10], f.iloc[10:]])  # a duplicated timestamp on 2019-03-08
    f = pd.concat([f.iloc[:500], f.iloc[520:530], f.iloc[500:520], f.iloc[530:]])  # unsorted on 2019-03-11
    f["timestamp"] = f["timestamp"].map(lambda t: t.isoformat())  # -05:00 before, -04:00 after the change
    path = tmp_path / "messy.csv"
    f.to_csv(path, index=False)
    res = wf("run", "--data", path, "--windows", "tmp/mini_window.json", "--dry-run")
    assert res.exit_code == 3, res.output
    line = res.output.strip()
    assert "not sorted" in line and "2019-03-11" in line
    assert "duplicate timestamps at 2019-03-08 09:39:00-05:00" in line
    assert "NaN/inf in close at 2019-03-11" in line
    assert str(path) in line and "Traceback" not in res.output


def test_dst_offsets_in_a_file_are_read_as_exact_instants(tmp_path):
    raw = sources.read_sample().loc["2019-03-08":"2019-03-12"]
    f = raw.reset_index()
    f["timestamp"] = f["timestamp"].map(lambda t: t.isoformat())
    f.to_csv(tmp_path / "ok.csv", index=False)
    bars = load_bars(DataConfig(source="file", path=str(tmp_path / "ok.csv"), interval="5m"))
    first = pd.Series(bars.frame.index.strftime("%H:%M")).groupby(np.asarray(bars.frame.index.date)).first()
    assert set(first) == {"09:30"}


def test_split_like_jumps_are_errors_unless_allowed(tmp_path):
    raw = sources.read_sample().loc["2019-03-08":"2019-03-11"].copy()
    cut = raw.index[500]
    for col in ("open", "high", "low", "close"):
        raw.loc[raw.index >= cut, col] /= 2  # an unadjusted 2:1 split
    raw.reset_index().to_csv(tmp_path / "split.csv", index=False)
    cfg = DataConfig(source="file", path=str(tmp_path / "split.csv"), interval="5m")
    with pytest.raises(DataError, match="split-like jumps of more than 25%"):
        load_bars(cfg)
    assert load_bars(cfg.model_copy(update={"max_jump": None})).report["bars"] > 0


def test_gaps_and_single_bar_sessions_are_counted(sample_5m):
    rep = sample_5m.report
    assert rep["gap_bars"] == 14 and rep["sessions_with_gaps"] == 1  # 2019-10-31 starts at 10:40
    assert rep["single_bar_sessions"] == 0


def test_cached_session_bounds_equal_the_calendar(tmp_path, monkeypatch):
    import exchange_calendars as xcals

    from backend.data import sessions

    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path))
    first, last = pd.Timestamp("2018-03-01", tz="UTC"), pd.Timestamp("2018-12-20", tz="UTC")
    fresh = sessions.session_bounds("XNYS", first, last)
    assert list(tmp_path.glob("calendars/XNYS-*-2018-2018.npz"))
    cached = sessions.session_bounds("XNYS", first, last)
    sched = xcals.get_calendar("XNYS").schedule.loc["2018-01-01":"2018-12-31"]
    want = pd.DatetimeIndex(sched["open"].array).as_unit("ns").asi8
    assert np.array_equal(fresh[0], want) and np.array_equal(cached[0], want)
    assert np.array_equal(cached[1], pd.DatetimeIndex(sched["close"].array).as_unit("ns").asi8)
    next(tmp_path.glob("calendars/*.npz")).write_bytes(b"garbage")  # a broken cache is recomputed
    assert np.array_equal(sessions.session_bounds("XNYS", first, last)[0], want)


# ----------------------------------------------------------------------------- the cache (issue #12)


@pytest.mark.parametrize("symbol", ["../../evil", "..", "a/b", "a\\b", "", ".hidden", "x" * 41, "A B"])
def test_symbols_are_checked_wherever_a_cache_path_is_built(tmp_path, symbol, monkeypatch):
    monkeypatch.setattr(yahoo, "fetch_history", fake_history([]))
    today = date.today()
    with pytest.raises(InputError, match="not a valid symbol"):
        yahoo.load(symbol, "5m", today - timedelta(days=5), today, tmp_path / "c", NY)
    with pytest.raises(InputError, match="not a valid symbol"):
        cache.entry(tmp_path / "c", symbol, "5m", "import")
    if symbol:
        with pytest.raises(InputError, match="not a valid symbol"):
            load_bars(DataConfig(source="yfinance", symbol=symbol, cache_dir=str(tmp_path / "c")))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_real_symbols_are_valid():
    for sym in ("TNA", "BRK-B", "BRK.B", "^GSPC", "EURUSD=X", "BTC-USD", "ES=F", "spy"):
        assert cache.check_symbol(sym) == sym.upper()


def _fetched(tmp_path, monkeypatch, symbol="TNA"):
    monkeypatch.setattr(yahoo, "fetch_history", fake_history([]))
    today = date.today()
    start, end = today - timedelta(days=20), today - timedelta(days=10)
    cfg = DataConfig(source="yfinance", symbol=symbol, interval="5m", start=start, end=end, cache_dir=str(tmp_path))
    load_bars(cfg)
    return cfg, tmp_path / f"{symbol}_5m.parquet", tmp_path / f"{symbol}_5m.manifest.json"


@pytest.mark.parametrize("damage", ["truncated", "garbled", "altered", "manifest"])
def test_a_corrupt_cache_entry_is_reported_with_the_fix(tmp_path, monkeypatch, damage):
    cfg, data, manifest = _fetched(tmp_path, monkeypatch)
    if damage == "truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "garbled":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 3 : len(raw) // 3 + 64] = b"\x00" * 64
        data.write_bytes(bytes(raw))
    elif damage == "altered":  # readable Parquet, other bars
        frame = pd.read_parquet(data)
        frame.iloc[3, 0] *= 1.01
        frame.to_parquet(data)
    else:
        manifest.write_text("{not json")
    with pytest.raises(DataError) as e:
        load_bars(cfg)
    msg = str(e.value)
    assert isinstance(e.value, cache.CorruptEntry) and "is corrupt" in msg and str(data) in msg
    assert "wf data delete TNA --interval 5m" in msg and "wf data fetch TNA --interval 5m --start" in msg
    assert "\n" not in msg


def test_yfinance_intervals_are_the_harness_intervals(tmp_path, monkeypatch):
    from backend.core.intervals import INTERVALS

    assert set(yahoo.LIMITS) == set(INTERVALS)
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    today = date.today()
    cfg = DataConfig(source="yfinance", symbol="TNA", interval="1h", start=today - timedelta(days=20),
                     end=today - timedelta(days=10), cache_dir=str(tmp_path))  # fmt: skip
    load_bars(cfg)
    assert calls[0][3] == "60m" and (tmp_path / "TNA_1h.parquet").exists()  # Yahoo's name on the wire only


# ----------------------------------------------------------------------------- imported bars (issue #15)


def _import(tmp_path, days=("2019-01-02", "2019-01-04"), symbol="ABC", interval="1m", frame=None):
    raw = frame if frame is not None else sources.read_sample().loc[days[0] : days[1]]
    path = tmp_path / f"{symbol.lower()}_{days[0]}.csv"
    raw.tz_localize(None).to_csv(path)
    return catalog.import_file(str(path), symbol, interval, tmp_path / "cache"), path


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "30m", "1h"])
def test_a_1m_import_serves_every_coarser_interval(tmp_path, interval):
    _, path = _import(tmp_path)
    cfg = DataConfig(symbol="ABC", interval=interval, cache_dir=str(tmp_path / "cache"))
    bars = load_bars(cfg)
    ref = load_bars(DataConfig(interval=interval, start=date(2019, 1, 2), end=date(2019, 1, 4)))
    pd.testing.assert_frame_equal(bars.frame, ref.frame)
    prov = bars.provenance
    assert bars.source == "import" and prov["source"] == "import"
    assert prov["origin"] == str(path.resolve()) and prov["adjustment"] == "as provided"
    assert "auto_adjust" not in str(prov) and "yfinance" not in str(prov)


def test_imports_merge_and_are_never_made_finer(tmp_path):
    _import(tmp_path, ("2019-01-02", "2019-01-03"))
    m, _ = _import(tmp_path, ("2019-01-04", "2019-01-07"))
    assert len(m["files"]) == 2 and m["ranges"] == [["2019-01-02", "2019-01-07"]]
    bars = load_bars(DataConfig(symbol="ABC", interval="5m", cache_dir=str(tmp_path / "cache")))
    assert bars.session_dates() == [date(2019, 1, d) for d in (2, 3, 4, 7)]
    hourly = load_bars(DataConfig(interval="1h", start=date(2019, 1, 8), end=date(2019, 1, 9))).frame
    catalog.import_file(_csv_of(tmp_path, hourly), "XYZ", "1h", tmp_path / "cache")
    with pytest.raises(DataError, match="none as fine as 5m"):
        load_bars(DataConfig(symbol="XYZ", interval="5m", cache_dir=str(tmp_path / "cache")))
    with pytest.raises(DataError, match="not 1m; import them with --interval 1h"):
        catalog.import_file(_csv_of(tmp_path, hourly), "XYZ", "1m", tmp_path / "cache")


def _csv_of(tmp_path, frame):
    path = tmp_path / "hourly.csv"
    frame.to_csv(path)
    return str(path)


def test_an_explicit_yfinance_source_does_not_use_the_import(tmp_path, monkeypatch):
    _import(tmp_path)
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    today = date.today()
    cfg = DataConfig(source="yfinance", symbol="ABC", interval="5m", start=today - timedelta(days=20),
                     end=today - timedelta(days=10), cache_dir=str(tmp_path / "cache"))  # fmt: skip
    bars = load_bars(cfg)
    assert bars.source == "yfinance" and len(calls) == 1
    assert (tmp_path / "cache" / "ABC_5m.parquet").exists() and (tmp_path / "cache" / "ABC_1m.import.parquet").exists()


def test_concurrent_fetches_of_one_entry_merge(tmp_path, monkeypatch):
    import threading
    import time

    base = fake_history([])

    def slow(*args):
        time.sleep(0.3)  # both fetchers read the empty cache before either writes
        return base(*args)

    monkeypatch.setattr(yahoo, "fetch_history", slow)
    today = date.today()
    spans = [
        (today - timedelta(days=25), today - timedelta(days=20)),
        (today - timedelta(days=12), today - timedelta(days=8)),
    ]
    errors: list[BaseException] = []

    def run(lo, hi):
        try:
            yahoo.load("TNA", "5m", lo, hi, tmp_path, NY)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=span) for span in spans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    frame, meta = yahoo.read_cache(tmp_path, "TNA", "5m")
    assert meta["ranges"] == [[lo.isoformat(), hi.isoformat()] for lo, hi in spans]
    days = set(frame.index.date)
    for lo, hi in spans:
        assert any(lo <= d <= hi for d in days)
