import json
from datetime import date
from pathlib import Path

import pytest

from backend.errors import DataError, InputError
from backend.windows import auto_windows, load_windows, parse_windows, resolve

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # the earlier harness's example files
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
    from backend.windows import windows_document

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
    specs, _, _ = parse_windows([{**W, "test_start": "2021-01-04", "test_end": "2021-01-05"}], "f")
    with pytest.raises(DataError, match="test span 2021-01-04 -> 2021-01-05 holds no bars"):
        resolve(specs, market_5m.timestamps, market_5m.session_id, 0, "f")
    specs, _, _ = parse_windows([W], "f")
    with pytest.raises(InputError, match="embargo_bars 100"):
        resolve(specs, market_5m.timestamps, market_5m.session_id, 100, "f")


def test_auto_windows_rolling_and_anchored():
    days = [date(2019, 1, d) for d in range(1, 31)]
    roll = auto_windows(days, days[0], days[-1], 10, 5, None, "rolling", "America/New_York")
    anch = auto_windows(days, days[0], days[-1], 10, 5, 5, "anchored", "America/New_York")
    assert len(roll) == len(anch) == 4
    assert [w.text["train_start"] for w in roll] == ["2019-01-01", "2019-01-06", "2019-01-11", "2019-01-16"]
    assert {w.text["train_start"] for w in anch} == {"2019-01-01"}
    for w in roll:
        assert w.test_start >= w.train_end
    with pytest.raises(DataError, match="fewer than"):
        auto_windows(days[:5], days[0], days[4], 10, 5, None, "rolling", "America/New_York")
