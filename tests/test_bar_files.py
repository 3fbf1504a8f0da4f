"""Bar files as people have them (issue #18): pandas to_csv(), index columns, epochs, Date + Time, Adj Close,
time zones, and one clear line for every file that cannot be used."""

import gzip
from datetime import date

import numpy as np
import pandas as pd
import pytest

from backend.config.models import DataConfig
from backend.core.errors import DataError, InputError
from backend.data import sources
from backend.data.loader import load_bars
from tests.helpers import wf

NY = "America/New_York"


@pytest.fixture(scope="module")
def raw():
    """Three sessions of the sample's 1-minute bars, tz-aware New York, index named None."""
    frame = sources.read_sample().loc["2019-01-02":"2019-01-04"].copy()
    frame.index.name = None
    return frame


@pytest.fixture(scope="module")
def ref():
    return load_bars(DataConfig(interval="5m", start=date(2019, 1, 2), end=date(2019, 1, 4)))


def _load(path, **kw):
    return load_bars(DataConfig(source="file", path=str(path), interval="5m", **kw))


def _same(bars, ref):
    pd.testing.assert_frame_equal(bars.frame, ref.frame)
    assert bars.data_hash() == ref.data_hash()


def _epoch(raw, unit_ns):
    return raw.index.as_unit("ns").asi8 // unit_ns


def test_pandas_to_csv_with_the_unnamed_index_column(tmp_path, raw, ref):
    raw.to_csv(tmp_path / "a.csv")  # header starts with an empty name: ",open,high,low,close,volume"
    assert (tmp_path / "a.csv").read_text().startswith(",open,high")
    bars = _load(tmp_path / "a.csv")
    _same(bars, ref)
    assert "unnamed first column" in bars.provenance["time_from"]


def test_naive_to_csv_is_read_in_data_timezone_with_a_note(tmp_path, raw, ref):
    raw.tz_localize(None).to_csv(tmp_path / "naive.csv")
    bars = _load(tmp_path / "naive.csv")
    _same(bars, ref)
    assert any("naive timestamps read as America/New_York" in n for n in bars.report["notes"])
    # the same wall-clock times read in UTC are other instants (09:30 UTC is before the New York open)
    utc = _load(tmp_path / "naive.csv", timezone="UTC")
    assert utc.frame["open"].iloc[0] != ref.frame["open"].iloc[0]


def test_utc_timestamps_with_z_or_offsets_are_exact_instants(tmp_path, raw, ref):
    f = raw.copy()
    f.index = f.index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    f.to_csv(tmp_path / "z.csv", index_label="time")
    _same(_load(tmp_path / "z.csv"), ref)


@pytest.mark.parametrize("kind", ["index column", "parquet string index", "parquet datetime column", "read_csv index"])
def test_an_index_column_holding_timestamps(tmp_path, raw, ref, kind):
    if kind == "index column":
        raw.reset_index().to_csv(tmp_path / "f.csv", index=False)  # the column is called "index"
        path = tmp_path / "f.csv"
    elif kind == "parquet string index":
        f = raw.copy()
        f.index = f.index.astype(str)
        f.to_parquet(tmp_path / "f.parquet")
        path = tmp_path / "f.parquet"
    elif kind == "parquet datetime column":
        raw.rename_axis("Datetime").reset_index().to_parquet(tmp_path / "f.parquet", index=False)
        path = tmp_path / "f.parquet"
    else:  # a frame read with index_col=0 and saved again keeps its index as a named column
        raw.to_csv(tmp_path / "a.csv")
        pd.read_csv(tmp_path / "a.csv", index_col=0).to_parquet(tmp_path / "f.parquet")
        path = tmp_path / "f.parquet"
    _same(_load(path), ref)


@pytest.mark.parametrize(("unit_ns", "label"), [(10**9, "seconds"), (10**6, "milliseconds"), (1, "nanoseconds")])
def test_epoch_timestamps_by_magnitude(tmp_path, raw, ref, unit_ns, label):
    f = raw.reset_index(drop=True).assign(timestamp=_epoch(raw, unit_ns))
    f.to_csv(tmp_path / "e.csv", index=False)
    bars = _load(tmp_path / "e.csv")
    _same(bars, ref)
    assert any(f"epoch {label} (UTC)" in n for n in bars.report["notes"])


def test_float_epoch_seconds(tmp_path, raw, ref):
    f = raw.reset_index(drop=True).assign(t=_epoch(raw, 10**9).astype(float))
    f[["t", "open", "high", "low", "close", "volume"]].to_csv(tmp_path / "e.csv", index=False)
    _same(_load(tmp_path / "e.csv"), ref)


@pytest.mark.parametrize("style", ["us text", "compact numbers", "iso text"])
def test_split_date_and_time_columns(tmp_path, raw, ref, style):
    local = raw.index.tz_localize(None)
    f = raw.reset_index(drop=True)
    if style == "us text":
        f.insert(0, "Time", local.strftime("%H:%M"))
        f.insert(0, "Date", local.strftime("%m/%d/%Y"))
    elif style == "compact numbers":
        f.insert(0, "TIME", local.hour * 100 + local.minute)  # 930, 931, …
        f.insert(0, "DATE", local.year * 10000 + local.month * 100 + local.day)  # 20190102
    else:
        f.insert(0, "time", local.strftime("%H:%M:%S"))
        f.insert(0, "date", local.strftime("%Y-%m-%d"))
    f.to_csv(tmp_path / "split.csv", index=False)
    bars = _load(tmp_path / "split.csv")
    _same(bars, ref)
    assert "+" in bars.provenance["time_from"]


def test_adj_close_is_ignored_with_a_note(tmp_path, raw, ref):
    f = raw.rename(columns=str.title)
    f.insert(3, "Adj Close", f["Close"] * 0.98)
    f.rename_axis("Date").to_csv(tmp_path / "yahoo.csv")
    bars = _load(tmp_path / "yahoo.csv")
    _same(bars, ref)
    assert any("'Adj Close' ignored" in n for n in bars.report["notes"])


def test_semicolons_gzip_and_a_byte_order_mark(tmp_path, raw, ref):
    text = raw.to_csv(sep=";")
    (tmp_path / "semi.csv").write_text("\ufeff" + text, encoding="utf-8")
    _same(_load(tmp_path / "semi.csv"), ref)
    with gzip.open(tmp_path / "bars.csv.gz", "wt") as fh:
        fh.write(raw.to_csv())
    _same(_load(tmp_path / "bars.csv.gz"), ref)


def _csv(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_FILES = [
    ("header only", "timestamp,open,high,low,close,volume\n", "header only, no rows"),
    ("to_csv of an empty frame", ",open,high,low,close,volume\n", "header only, no rows"),
    ("empty", "", "the file is empty"),
    ("no time column", "open,high,low,close,volume\n1,2,0.5,1,10\n", "no timestamp column"),
    ("bad time", "timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1,10\n", "does not parse as timestamps"),
    ("row numbers", ",open,high,low,close,volume\n0,1,2,0.5,1,10\n1,1,2,0.5,1,10\n", "neither epoch"),
    ("missing close", "timestamp,open,high,low,Adj Close,volume\n2019-01-02 09:30,1,2,0.5,1,10\n", "missing column"),
    ("text price", "timestamp,open,high,low,close,volume\n2019-01-02 09:30,1,2,abc,1,10\n", "non-numeric"),
    ("dst gap", "timestamp,open,high,low,close,volume\n2019-03-10 02:30,1,2,0.5,1,10\n", "cannot be placed"),
    (
        "mixed offsets",
        "timestamp,open,high,low,close,volume\n2019-01-02 09:30-05:00,1,2,.5,1,1\n2019-01-02 09:31,1,2,.5,1,1\n",
        "with and without UTC offsets",
    ),
]


@pytest.mark.parametrize(("case", "text", "needle"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_give_one_clear_line(tmp_path, case, text, needle):
    path = _csv(tmp_path, text)
    with pytest.raises(DataError) as e:
        _load(path)
    msg = str(e.value)
    assert needle in msg and str(path) in msg and "columns found" in msg and "\n" not in msg, msg
    if case == "missing close":
        assert "'Adj Close' is there" in msg
    res = wf("run", "--data", path, "--windows", "tmp/mini_window.json", "--dry-run")
    assert res.exit_code == 3 and needle in res.output and "internal error" not in res.output, res.output


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_parquet_is_a_data_error(tmp_path, raw, damage):
    path = tmp_path / "bars.parquet"
    if damage == "garbage":
        path.write_bytes(b"PAR1 this is not parquet at all")
    else:
        raw.to_parquet(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot read as Parquet") as e:
        _load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    res = wf("data", "import", path, "--symbol", "ABC", "--interval", "1m", "--cache-dir", tmp_path / "c")
    assert res.exit_code == 3 and "internal error" not in res.output


def test_missing_and_unsupported_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        _load(tmp_path / "nope.csv")
    (tmp_path / "bars.xlsx").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported file type"):
        _load(tmp_path / "bars.xlsx")


def test_fx_file_without_volume_loads_with_a_note(tmp_path, raw, ref):
    raw.drop(columns="volume").to_csv(tmp_path / "novol.csv")
    bars = _load(tmp_path / "novol.csv")
    assert bars.report["missing_volume_bars"] > 0 and (bars.frame["volume"] == 0).all()
    assert any("no volume column" in n for n in bars.report["notes"])
    np.testing.assert_array_equal(bars.frame["close"].to_numpy(), ref.frame["close"].to_numpy())


@pytest.mark.parametrize("writer", ["to_csv", "epoch seconds"])
def test_wf_data_import_accepts_the_same_files(tmp_path, raw, writer):
    path = tmp_path / "broker.csv"
    if writer == "to_csv":
        raw.tz_localize(None).to_csv(path)
    else:
        raw.reset_index(drop=True).assign(time=_epoch(raw, 10**9)).to_csv(path, index=False)
    res = wf("data", "import", path, "--symbol", "ABC", "--interval", "1m", "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    assert f"imported {len(raw):,} bars of ABC 1m" in res.output
    bars = load_bars(DataConfig(symbol="ABC", interval="5m", cache_dir=str(tmp_path / "cache")))
    assert bars.source == "import" and len(bars.frame) == 3 * 78
