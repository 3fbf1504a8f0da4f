"""wf data fetch/list/import/show and the yfinance source's failure modes (never touching the network)."""

import json
from datetime import date, timedelta

import pytest

from backend.data import cache, sources, yahoo
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
    assert [(r["symbol"], r["interval"], r["source"]) for r in listed] == [
        ("SPY", "1m", "sample"),
        ("TNA", "5m", "yfinance"),
    ]
    assert listed[0]["rows"] == 293_707 and listed[1]["rows"] > 0 and listed[1]["status"] == "ok"
    manifest = json.loads((tmp_path / "TNA_5m.manifest.json").read_text())
    assert {"source", "fetched_at", "ranges", "rows", "content_hash"} <= set(manifest)
    shown = wf("data", "show", "TNA", "--interval", "5m", "--cache-dir", tmp_path, "--start", start, "--end", end)
    assert shown.exit_code == 0, shown.output
    assert "source" in shown.output and "yfinance" in shown.output and "bars a year" in shown.output
    shown = wf(
        "data", "show", "TNA", "--interval", "5m", "--cache-dir", tmp_path, "--start", start, "--end", end, "--json"
    )
    info = json.loads(shown.output)
    assert info["provenance"]["source"] == "yfinance" and info["report"]["sessions"] > 0
    assert len(calls) == 1  # show read the cache


def test_import_a_broker_csv_into_the_cache_and_run_on_it(tmp_path):
    raw = sources.read_sample().loc["2019-01-02":"2019-02-01"].reset_index()
    raw.columns = ["Date Time", "Open", "High", "Low", "Close", "Volume"]
    raw["Date Time"] = raw["Date Time"].dt.tz_localize(None)
    raw.to_csv(tmp_path / "broker.csv", index=False)
    cache_dir = tmp_path / "cache"
    res = wf("data", "import", tmp_path / "broker.csv", "--symbol", "ABC", "--interval", "1m", "--cache-dir", cache_dir)
    assert res.exit_code == 0, res.output
    assert "imported 8,602 bars of ABC 1m" in res.output and "naive timestamps read as America/New_York" in res.output
    listed = json.loads(wf("data", "list", "--cache-dir", cache_dir, "--json").output)
    assert listed[1]["symbol"] == "ABC" and listed[1]["source"] == "import"
    assert listed[1]["origin"] == str((tmp_path / "broker.csv").resolve())
    # the import serves runs at 1m and at any coarser interval, with no network
    for interval in ("1m", "5m", "1h"):
        res = wf("run", "--symbol", "ABC", "--interval", interval, "--cache-dir", cache_dir, "--windows",
                 "tmp/mini_window.json", "--dry-run")  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "import ABC" in res.output
    info = json.loads(wf("data", "show", "ABC", "--interval", "5m", "--cache-dir", cache_dir, "--json").output)
    assert info["provenance"]["source"] == "import" and info["provenance"]["adjustment"] == "as provided"
    assert info["provenance"]["origin"] == str((tmp_path / "broker.csv").resolve())
    assert info["report"]["bars_outside_session_dropped"] > 0  # the run applies the calendar


def test_import_refuses_a_symbol_that_is_a_path(tmp_path):
    raw = sources.read_sample().loc["2019-01-02":"2019-01-02"]
    raw.to_csv(tmp_path / "bars.csv")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    for sym in ("../../evil", "../evil", "ev/il", "..", ""):
        res = wf("data", "import", tmp_path / "bars.csv", "--symbol", sym, "--interval", "1m", "--cache-dir", work)
        assert res.exit_code == 2 and "not a valid symbol" in res.output, res.output
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["bars.csv"]
    assert wf("data", "fetch", "../x", "--start", "2026-01-01", "--end", "2026-01-02").exit_code == 2


IMPORT_SCRIPT = "import sys; from backend.cli.app import cli; sys.argv[0] = 'wf'; cli()"


def test_concurrent_imports_of_one_symbol_lose_nothing(tmp_path):
    """Real processes: four `wf data import` of one symbol with different bars, started together."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    days = ["2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07"]
    files = []
    for d in days:
        f = tmp_path / f"{d}.csv"
        sources.read_sample().loc[d:d].to_csv(f)
        files.append(f)
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                IMPORT_SCRIPT,
                "data",
                "import",
                str(f),
                "--symbol",
                "ABC",
                "--interval",
                "1m",
                "--cache-dir",
                str(cache_dir),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for f in files
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(files), outs
    frame, meta = cache.read(cache.entry(cache_dir, "ABC", "1m", "import"))
    assert sorted({str(d) for d in frame.index.date}) == days
    assert len(frame) == sum(len(sources.read_sample().loc[d:d]) for d in days)
    assert sorted(Path(f["path"]).name for f in meta["files"]) == [f"{d}.csv" for d in days]


def test_a_corrupt_entry_is_reported_by_list_show_and_run(tmp_path):
    raw = sources.read_sample().loc["2019-01-02":"2019-01-31"]
    raw.to_csv(tmp_path / "bars.csv")
    cache_dir = tmp_path / "cache"
    assert wf("data", "import", tmp_path / "bars.csv", "--symbol", "ABC", "--interval", "1m", "--cache-dir",
              cache_dir).exit_code == 0  # fmt: skip
    data = cache_dir / "ABC_1m.import.parquet"
    data.write_bytes(data.read_bytes()[:1000])  # truncated
    res = wf("data", "list", "--cache-dir", cache_dir)
    assert res.exit_code == 0 and "corrupt" in res.output and "wf data delete ABC --interval 1m" in res.output
    listed = json.loads(wf("data", "list", "--cache-dir", cache_dir, "--json").output)
    assert listed[1]["status"] == "corrupt" and "wf data import" in listed[1]["problem"]
    for args in (
        ("data", "show", "ABC", "--interval", "5m", "--cache-dir", cache_dir),
        ("run", "--symbol", "ABC", "--cache-dir", cache_dir, "--windows", "tmp/mini_window.json", "--dry-run"),
    ):
        res = wf(*args)
        assert res.exit_code == 3, res.output
        assert "is corrupt" in res.output and "wf data delete ABC --interval 1m" in res.output
        assert "internal error" not in res.output and "Traceback" not in res.output
    res = wf("data", "delete", "ABC", "--interval", "1m", "--import", "--cache-dir", cache_dir)
    assert res.exit_code == 0 and not data.exists()
    assert wf("data", "import", tmp_path / "bars.csv", "--symbol", "ABC", "--interval", "1m", "--cache-dir",
              cache_dir).exit_code == 0  # fmt: skip
    assert wf("data", "show", "ABC", "--interval", "5m", "--cache-dir", cache_dir).exit_code == 0


def test_every_command_offers_the_one_interval_list():
    from backend.core.intervals import INTERVALS

    for cmd in (("data", "fetch"), ("data", "import"), ("data", "show"), ("run",)):
        out = wf(*cmd, "--help").output
        assert "[" + "|".join(INTERVALS) + "]" in " ".join(out.split()), (cmd, out)
        for bad in ("2m", "60m", "90m"):
            assert bad not in out.replace("1m|5m", "")
    assert (
        wf("data", "fetch", "TNA", "--interval", "60m", "--start", "2026-01-01", "--end", "2026-01-02").exit_code == 2
    )


def test_show_prints_a_table_and_the_sample(tmp_path):
    res = wf("data", "show", "SPY", "--interval", "5m", "--start", "2019-01-02", "--end", "2019-01-31")
    assert res.exit_code == 0, res.output
    assert "sample" in res.output and "19,656 bars a year" in res.output and "{" not in res.output
    res = wf("data", "list", "--cache-dir", tmp_path)
    assert res.exit_code == 0 and "SPY" in res.output and "sample" in res.output


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
