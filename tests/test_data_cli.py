"""wf data fetch/list/import/show and the yfinance source's failure modes (never touching the network)."""

import json
from datetime import date, timedelta

import pytest

from backend.data import sources, yahoo
from tests.helpers import fake_history, wf


def test_offline_yfinance_dry_run_fails_fast_with_exit_3(monkeypatch, tmp_path):
    monkeypatch.setattr(yahoo, "_network_reachable", lambda timeout=5.0: False)
    today = date.today()
    wins = tmp_path / "w.json"
    wins.write_text(
        json.dumps(
            [
                {
                    "train_start": str(today - timedelta(days=30)),
                    "train_end": str(today - timedelta(days=10)),
                    "test_start": str(today - timedelta(days=9)),
                    "test_end": str(today - timedelta(days=5)),
                }
            ]
        )
    )
    res = wf(
        "run",
        "--source",
        "yfinance",
        "--symbol",
        "TNA",
        "--interval",
        "5m",
        "--windows",
        wins,
        "--cache-dir",
        tmp_path / "cache",
        "--dry-run",
    )
    assert res.exit_code == 3
    assert "network is unreachable" in res.output and "--source sample" in res.output and "Traceback" not in res.output


def test_old_5m_range_is_refused_before_any_request(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    res = wf(
        "data",
        "fetch",
        "TNA",
        "--interval",
        "5m",
        "--start",
        "2019-01-02",
        "--end",
        "2019-01-31",
        "--cache-dir",
        tmp_path,
    )
    assert res.exit_code == 3 and "last 60 days" in res.output and calls == []


def test_fetch_then_list_then_show_from_cache(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(yahoo, "fetch_history", fake_history(calls))
    today = date.today()
    start, end = today - timedelta(days=20), today - timedelta(days=10)
    res = wf("data", "fetch", "TNA", "--interval", "5m", "--start", start, "--end", end, "--cache-dir", tmp_path)
    assert res.exit_code == 0, res.output
    assert "fetched" in res.output and len(calls) == 1
    res = wf("data", "fetch", "TNA", "--interval", "5m", "--start", start, "--end", end, "--cache-dir", tmp_path)
    assert "from the cache" in res.output and len(calls) == 1
    listed = json.loads(wf("data", "list", "--cache-dir", tmp_path, "--json").output)
    assert [(r["symbol"], r["interval"]) for r in listed] == [("TNA", "5m")] and listed[0]["rows"] > 0
    manifest = json.loads((tmp_path / "TNA_5m.manifest.json").read_text())
    assert {"source", "fetched_at", "ranges", "rows", "content_hash"} <= set(manifest)
    shown = wf("data", "show", "TNA", "--interval", "5m", "--cache-dir", tmp_path, "--start", start, "--end", end)
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert info["provenance"]["source"] == "yfinance" and info["report"]["sessions"] > 0
    assert len(calls) == 1  # show read the cache


def test_import_a_broker_csv_into_the_cache_and_run_on_it(tmp_path):
    raw = sources.read_sample().loc["2019-01-02":"2019-02-01"].reset_index()
    raw.columns = ["Date Time", "Open", "High", "Low", "Close", "Volume"]
    raw["Date Time"] = raw["Date Time"].dt.tz_localize(None)
    raw = raw.rename(columns={"Date Time": "datetime"})
    raw.to_csv(tmp_path / "broker.csv", index=False)
    res = wf(
        "data",
        "import",
        tmp_path / "broker.csv",
        "--symbol",
        "ABC",
        "--interval",
        "1m",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert res.exit_code == 0, res.output
    assert "imported" in res.output and "bars outside session dropped" in res.output
    listed = json.loads(wf("data", "list", "--cache-dir", tmp_path / "cache", "--json").output)
    assert listed[0]["symbol"] == "ABC" and listed[0]["source"].startswith("import:")
    # the cached import serves runs with no network: its range is covered
    res = wf(
        "run",
        "--symbol",
        "ABC",
        "--interval",
        "1m",
        "--cache-dir",
        tmp_path / "cache",
        "--windows",
        "tmp/mini_window.json",
        "--dry-run",
    )
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("err", ["429 Too Many Requests", "Rate limited. Try after a while."])
def test_rate_limits_are_retried_with_backoff(monkeypatch, tmp_path, err):
    calls = []
    good = fake_history([])

    def flaky(*args):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(err)
        return good(*args)

    monkeypatch.setattr(yahoo, "fetch_history", flaky)
    monkeypatch.setattr(yahoo, "BACKOFF_S", 0.01)
    today = date.today()
    frame, meta = yahoo.load("TNA", "5m", today - timedelta(days=5), today, tmp_path, "America/New_York")
    assert len(calls) == 3 and len(frame) > 0 and not meta["cache_hit"]


def test_hard_timeout_on_a_hanging_request(monkeypatch, tmp_path):
    import time

    monkeypatch.setattr(yahoo, "REQUEST_TIMEOUT_S", 0.1)
    monkeypatch.setattr(yahoo, "_yf_history", lambda *a: time.sleep(5))
    t0 = time.time()
    with pytest.raises(TimeoutError):
        yahoo.fetch_history("TNA", date.today(), date.today(), "5m", tmp_path)
    assert time.time() - t0 < 2
