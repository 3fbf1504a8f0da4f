"""`wf tune` counts every bar a trial reads: the look-back and feature warm-ups behind a span's first bar (issue 23).

Canary: a trial whose inner window starts right after an earlier outer test span reads that span through its
look-back; it is reported per window. Negative control: with a look-back of one bar and no warm-up nothing is.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from backend.studies.tune.split import read_behind, read_range, seen_test_bars


def _setup(lookback: int, features: list[str]) -> SimpleNamespace:
    n = 600
    env = SimpleNamespace(lookback=lookback, features=features)
    market = SimpleNamespace(timestamps=np.arange(n), session_id=np.arange(n) // 78)
    outer = [
        SimpleNamespace(id="w01", train_start=0, train_end=200, test_start=200, test_end=278),
        SimpleNamespace(id="w02", train_start=278, train_end=478, test_start=478, test_end=556),
    ]
    return SimpleNamespace(cfg=SimpleNamespace(env=env), market=market, windows=outer)


def _inner() -> list[SimpleNamespace]:  # validation = last sessions of each outer train span, embargo 3
    return [
        SimpleNamespace(id="w01", train_start=0, train_end=122, test_start=125, test_end=200),
        SimpleNamespace(id="w02", train_start=278, train_end=400, test_start=403, test_end=478),
    ]


def test_a_lookback_reaching_an_earlier_test_span_is_reported_per_window():
    s = _setup(32, [])
    assert read_behind(s) == 31
    assert read_range(s, _inner()[1]) == (247, 478)
    assert seen_test_bars(s, _inner()) == {"w01": 31}  # the last 31 test bars of w01, read through w02's look-back


def test_feature_warmup_counts_and_a_one_bar_lookback_reads_nothing_behind():
    assert seen_test_bars(_setup(1, []), _inner()) == {}  # negative control: no bar behind the span is read
    s = _setup(1, ["ret_1"])
    from backend.features import warmup_bars

    assert read_behind(s) == warmup_bars(["ret_1"], 78)
    assert seen_test_bars(s, _inner()) == ({"w01": read_behind(s)} if read_behind(s) else {})
