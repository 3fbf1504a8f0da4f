import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.config.models import DataConfig
from backend.core.errors import DataError, InputError
from backend.data.loader import load_bars
from backend.walkforward.windows import auto_windows, load_windows, parse_day, parse_windows, resolve, trim_train
from tests.helpers import wf

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # the earlier harness's example files, outside.json
W = {"train_start": "2019-01-02", "train_end": "2019-01-25", "test_start": "2019-01-28", "test_end": "2019-01-30"}


def test_bare_list_and_object_formats_agree(tmp_path, market_5m):
    a, emb_a, _ = parse_windows([W], "a")
    b, emb_b, tz = parse_windows(
        {"timezone": "America/New_York", "embargo_bars": 3, "windows": [{"id": "w01", **W}]}, "b"
    )
    assert a[0].id == "w01" and [(s.train_start, s.test_end) for s in a] == [(s.train_start, s.test_end) for s in b]
    assert (emb_a, emb_b, tz) == (0, 3, "America/New_York")
    (w,) = resolve(a, market_5m.timestamps, market_5m.session_id, 0, "a")
    # date-only ends are inclusive: the whole 2019-01-30 session (78 bars at 5m) is in the test span
    assert w.test_bars == 3 * 78 and w.test_sessions == 3 and w.train_sessions == 17
    d = w.describe(market_5m.timestamps, "America/New_York")
    assert d["test_end"] == "2019-01-30T15:55:00-05:00" and d["train_start"] == "2019-01-02T09:30:00-05:00"


def test_resolved_windows_file_reads_back_identically(tmp_path, market_5m):
    from backend.walkforward.windows import windows_document

    specs, _, _ = parse_windows(
        [
            W,
            {
                **W,
                "train_start": "2019-02-01",
                "train_end": "2019-02-20",
                "test_start": "2019-02-21",
                "test_end": "2019-02-22",
            },
        ],
        "x",
    )
    ws = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "x")
    p = tmp_path / "w.json"
    p.write_text(json.dumps(windows_document(ws, market_5m.timestamps, "America/New_York", 0)))
    again = resolve(load_windows(p)[0], market_5m.timestamps, market_5m.session_id, 0, str(p))
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in again] == [
        (w.train_start, w.train_end, w.test_start, w.test_end) for w in ws
    ]


def test_legacy_window_list_parses():
    specs, _, _ = load_windows(FIXTURES / "legacy_windows.json")
    assert [s.id for s in specs] == ["w01", "w02"]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ([{**W, "train_end": "2019-01-01"}], "train_end 2019-01-01 is not after train_start"),
        ([{**W, "test_start": "2019-01-20"}], "not after train_end"),
        ([{**W, "test_end": "2019-01-27"}], "test_end 2019-01-27 is not after test_start"),
        ([{**W, "train_start": "2019-02-30"}], "train_start"),
        ([{**W, "train_start": 20190102}], "expected an ISO date"),
        ([{"train_start": "2019-01-02"}], "missing field(s) train_end"),
        ([{**W, "tset_end": "x"}], "unknown field"),
        ([{**W, "id": "a"}, {**W, "id": "a"}], "duplicate window id"),
        ([{**W, "id": "a"}, {**W, "id": "b"}], "overlap"),
        ([{**W, "id": "../x"}], "not a safe folder name"),
        ([{**W, "id": "/abs"}], "not a safe folder name"),
        ([], "non-empty list"),
        ({"windows": [W], "embargo_bars": -1}, "embargo_bars"),
        ({"windows": [W], "timezone": "Mars/Base"}, "time zone"),
    ],
)
def test_bad_windows_are_input_errors(doc, needle):
    with pytest.raises(InputError) as e:
        parse_windows(doc, "wins.json")
    assert needle in str(e.value) and "wins.json" in str(e.value)


def test_spans_without_bars_and_embargo(market_5m):
    holiday = {
        "train_start": "2018-06-01",
        "train_end": "2018-06-29",
        "test_start": "2018-07-04",
        "test_end": "2018-07-04",
    }
    specs, _, _ = parse_windows([holiday], "f")
    with pytest.raises(DataError, match="test span 2018-07-04 -> 2018-07-04 holds no bars"):
        resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "f")
    specs, _, _ = parse_windows([W], "f")
    with pytest.raises(InputError, match="embargo_bars 100"):
        resolve(specs, market_5m.timestamps, market_5m.session_id, 100, "f")


def span(days: list[date], train: int, test: int, step: int | None, mode: str) -> dict:
    """auto_windows's keyword-only arguments over all of ``days``."""
    return dict(
        start=days[0], end=days[-1], train_days=train, test_days=test, step_days=step, mode=mode, tz="America/New_York"
    )


def test_auto_windows_rolling_and_anchored():
    days = [date(2019, 1, d) for d in range(1, 31)]
    roll = auto_windows(days, **span(days, 10, 5, None, "rolling"))
    anch = auto_windows(days, **span(days, 10, 5, 5, "anchored"))
    assert len(roll) == len(anch) == 4
    assert [w.text["train_start"] for w in roll] == ["2019-01-01", "2019-01-06", "2019-01-11", "2019-01-16"]
    assert {w.text["train_start"] for w in anch} == {"2019-01-01"}
    for w in roll:
        assert w.test_start >= w.train_end
    with pytest.raises(DataError, match="fewer than"):
        auto_windows(days[:5], **span(days[:5], 10, 5, None, "rolling"))
    with pytest.raises(TypeError):  # negative control: by position, train and test sessions could be swapped
        auto_windows(days, days[0], days[-1], 10, 5, None, "rolling", "America/New_York")  # type: ignore[misc]


# ----------------------------------------------------------------------------- dates and spans (issue #12)


@pytest.mark.parametrize("value", ["01/25/2019", "today", "2019-02", "20190125", "2019-1-25", "Jan 25 2019", "2019"])
def test_window_dates_must_be_iso(value):
    with pytest.raises(InputError) as e:
        parse_windows([{**W, "train_end": value}], "wins.json")
    msg = str(e.value)
    assert repr(value) in msg and "wins.json: windows[0].train_end" in msg and "ISO" in msg


@pytest.mark.parametrize(
    "value", ["2019-01-25", "2019-01-25T15:55", "2019-01-25 15:55:00", "2019-01-25T15:55:00-05:00", "2019-01-25T20:55Z"]
)
def test_iso_dates_and_datetimes_are_accepted(value):
    (spec,), _, _ = parse_windows([{**W, "train_end": value}], "w")
    if value == "2019-01-25":
        assert spec.date_only == frozenset({"train_start", "train_end", "test_start", "test_end"})
        assert str(spec.train_end) == "2019-01-26 00:00:00-05:00"  # the whole session of the 25th
    else:
        assert "train_end" not in spec.date_only
        assert spec.train_end == pd.Timestamp("2019-01-25 15:55:00.000000001-05:00")  # inclusive


@pytest.mark.parametrize("value", ["01/25/2019", "today", "2019-02", "20190125", "2019-01-25T09:30"])
def test_command_line_dates_must_be_iso(value):
    with pytest.raises(InputError, match="expected an ISO date like 2019-01-02") as e:
        parse_day(value, "--start")
    assert repr(value) in str(e.value)
    assert parse_day("2019-01-25", "--end") == date(2019, 1, 25)


def test_non_iso_dates_are_refused_by_wf_run(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps([{**W, "test_end": "01/30/2019"}]))
    res = wf("run", "--windows", p, "--dry-run")
    assert res.exit_code == 2 and "'01/30/2019'" in res.output
    res = wf("run", "--start", "today", "--train-days", "5", "--test-days", "2", "--dry-run")
    assert res.exit_code == 2 and "'today'" in res.output


def test_window_partly_outside_the_data_is_a_data_error(sample_5m, market_5m):
    specs, _, _ = parse_windows(
        [
            {
                "train_start": "2016-12-01",
                "train_end": "2017-01-20",
                "test_start": "2017-01-23",
                "test_end": "2017-01-24",
            }
        ],
        "w.json",
    )
    for bars in (sample_5m, None):
        with pytest.raises(DataError) as e:
            resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w.json", bars=bars)
        msg = str(e.value)
        assert "window w01: train_start 2016-12-01 lies outside the data" in msg
        assert "sessions 2017-01-03 -> 2019-12-31" in msg and "w.json" in msg
    late = parse_windows([{**W, "train_start": "2019-11-01", "train_end": "2019-12-20", "test_start": "2019-12-23",
                           "test_end": "2020-01-10"}], "w.json")[0]  # fmt: skip
    with pytest.raises(DataError, match=r"test_end 2020-01-10 lies outside the data .*XNYS session\(s\)"):
        resolve(late, market_5m.timestamps, market_5m.session_id, 0, "w.json", bars=sample_5m)
    res = wf("run", "--windows", FIXTURES / "outside.json", "--dry-run")
    assert res.exit_code == 3 and "lies outside the data" in res.output


def test_days_without_sessions_before_the_data_are_not_outside(sample_5m, market_5m):
    # 2017-01-01 is a Sunday and 2017-01-02 a holiday: the data's first session is 2017-01-03
    specs, _, _ = parse_windows(
        [
            {
                "train_start": "2017-01-01",
                "train_end": "2017-01-20",
                "test_start": "2017-01-23",
                "test_end": "2017-01-24",
            }
        ],
        "w",
    )
    (w,) = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w", bars=sample_5m)
    assert w.train_start == 0 and w.train_sessions == 13


def test_a_span_too_short_for_one_episode_fails_at_resolution():
    bars = load_bars(DataConfig(interval="1h", start=date(2019, 1, 2), end=date(2019, 1, 31)))
    ts = bars.frame.index.as_unit("ns").asi8
    sid = np.cumsum(np.r_[True, bars.session_open[1:] != bars.session_open[:-1]]) - 1
    specs, _, _ = parse_windows([{**W, "test_start": "2019-01-28T15:30", "test_end": "2019-01-28T15:30"}], "w.json")
    with pytest.raises(DataError) as e:
        resolve(specs, ts, sid, 0, "w.json", bars=bars)
    msg = str(e.value)
    assert "window w01" in msg and "test_start..test_end" in msg and "none with 2 bars" in msg


def test_date_only_windows_resolve_the_same_with_or_without_the_bars(sample_5m, market_5m):
    specs, _, _ = parse_windows([W], "w")
    a = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w")
    b = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w", bars=sample_5m)
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in a] == [
        (w.train_start, w.train_end, w.test_start, w.test_end) for w in b
    ]


def test_automatic_windows_with_overlapping_test_spans_are_refused():
    days = [date(2019, 1, d) for d in range(1, 31)]
    with pytest.raises(InputError) as e:
        auto_windows(days, **span(days, 10, 5, 2, "rolling"))
    msg = str(e.value)
    assert "w01" in msg and "w02" in msg and "--step-days 5" in msg and "overlap" in msg
    assert len(auto_windows(days, **span(days, 10, 5, 5, "rolling"))) == 4
    assert len(auto_windows(days, **span(days, 10, 20, 3, "rolling"))) == 1  # one: no overlap
    res = wf("run", "--start", "2019-01-02", "--end", "2019-03-29", "--train-days", "10", "--test-days", "5",
             "--step-days", "2", "--dry-run")  # fmt: skip
    assert res.exit_code == 2 and "--step-days" in res.output


def test_file_windows_with_overlapping_test_spans_are_refused():
    a = {**W, "id": "a"}
    b = {**W, "id": "b", "train_end": "2019-01-28", "test_start": "2019-01-29", "test_end": "2019-01-31"}
    with pytest.raises(InputError, match="the test spans of a and b overlap"):
        parse_windows([a, b], "w.json")


@pytest.mark.parametrize("wid", ["tensorboard", "replay", "Replay", ".hidden", "summary.json", "TensorBoard"])
def test_reserved_window_ids_are_refused(tmp_path, wid):
    with pytest.raises(InputError, match="window id"):
        parse_windows([{**W, "id": wid}], "w.json")
    p = tmp_path / "w.json"
    p.write_text(json.dumps([{**W, "id": wid}]))
    assert wf("run", "--windows", p, "--dry-run").exit_code == 2


def test_trim_train_keeps_the_test_span(market_5m):
    specs, _, _ = parse_windows([W], "w")
    trimmed = trim_train(specs[0], market_5m.timestamps, 10)
    (a,) = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w")
    (b,) = resolve([trimmed], market_5m.timestamps, market_5m.session_id, 10, "w")
    assert (b.test_start, b.test_end) == (a.test_start, a.test_end)
    assert b.train_end == a.train_end - 10 and "train_end" not in trimmed.date_only


def test_a_datetime_end_on_the_last_session_is_inside(sample_5m, market_5m):
    doc = [{"train_start": "2019-12-02", "train_end": "2019-12-20", "test_start": "2019-12-23",
            "test_end": "2019-12-31T15:55"}]  # fmt: skip
    specs, _, _ = parse_windows(doc, "w")
    for bars in (sample_5m, None):
        (w,) = resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "w", bars=bars)
        assert w.test_end == len(market_5m.timestamps)
