"""Universes: `wf run --symbols` / data.symbols on three symbols of bar files (tests/fixtures/universe), a run folder
per symbol on one pool, the cross-symbol summary and `wf compare` row, --seeds, a sweep whose selection unit is
symbol × window, {symbol} paths and a missing symbol file (exit 2 before training), resume and overwrite; and the
content of data.context series in the data hash (a changed context file is never silently reused)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.evaluation.statistics import interquartile_mean
from tests.helpers import strict_json, wf

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "universe"
CONFIG = {
    "data": {"source": "file", "path": "bars/{symbol}_30m.csv", "interval": "30m", "symbols": ["SPY", "AAA", "BBB"]},
    "env": {"lookback": 4, "features": ["ret_1", "ret_5", "vol_20", "time_of_day"]},
    "sac": {"net_arch": [8], "batch_size": 32, "learning_starts": 50, "buffer_size": 1000},
    "training": {"total_timesteps": 120, "device": "cpu", "progress_every": 50},
}
WINDOWS = [
    {"id": "w01", "train_start": "2019-01-02", "train_end": "2019-01-08", "test_start": "2019-01-09",
     "test_end": "2019-01-10"},
    {"id": "w02", "train_start": "2019-01-09", "train_end": "2019-01-15", "test_start": "2019-01-16",
     "test_end": "2019-01-17"},
]  # fmt: skip


def _workdir(root: Path) -> Path:
    shutil.copytree(FIXTURES, root / "bars", ignore=shutil.ignore_patterns("*.py"))
    (root / "u.json").write_text(json.dumps(CONFIG))
    (root / "w.json").write_text(json.dumps(WINDOWS))
    (root / "w1.json").write_text(json.dumps(WINDOWS[:1]))
    return root


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    """One universe run of three symbols × two windows on two workers (shared by the read-only tests)."""
    root = _workdir(tmp_path_factory.mktemp("universe"))
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--output-dir", "out", "--workers", "2",
             "--quiet", "--no-report")  # fmt: skip
    yield root, res
    mp.undo()


def test_three_symbols_give_per_symbol_run_folders_and_a_cross_symbol_summary(universe):
    root, res = universe
    assert res.exit_code == 0, res.output
    out = root / "out"
    top = strict_json(out / "summary.json")
    assert top["kind"] == "universe" and top["status"] == "completed" and top["symbols"] == ["SPY", "AAA", "BBB"]
    assert [r["path"] for r in top["runs"]] == ["SPY", "AAA", "BBB"]
    hashes = set()
    for symbol in ("SPY", "AAA", "BBB"):
        run = out / symbol
        summary = strict_json(run / "summary.json")
        assert summary["symbol"] == symbol and summary["status"] == "completed"
        cfg = json.loads((run / "config.resolved.json").read_text())
        assert cfg["data"]["path"] == f"bars/{symbol}_30m.csv" and cfg["data"]["symbols"] == []  # a plain run
        assert (run / "w01" / "model.zip").is_file() and (run / "w02" / "equity.csv").is_file()
        assert f"[{symbol}] [STAGE ✅] Summary" in res.output
        hashes.add(summary["data_hash"])
    assert len(hashes) == 3  # each symbol's data loaded and hashed on its own
    # the cross-symbol aggregate, recomputed here from the symbols' own summaries
    cross = top["cross_symbol"]
    scores, beat = [], 0
    for symbol in ("SPY", "AAA", "BBB"):
        summary = strict_json(out / symbol / "summary.json")
        scores += [w["evaluation"]["sharpe"] for w in summary["windows"]]
        agg = summary["aggregate"]
        assert cross["symbols"][symbol]["oos_sharpe"] == pytest.approx(agg["sharpe"])
        beat += agg["total_return"] > agg["buy_and_hold"]["total_return"]
    ws = cross["window_sharpe"]
    assert ws["units"] == ["SPY/w01", "SPY/w02", "AAA/w01", "AAA/w02", "BBB/w01", "BBB/w02"]
    assert ws["mean"] == pytest.approx(np.mean(scores)) and ws["iqm"] == pytest.approx(interquartile_mean(scores))
    assert ws["ci_low"] <= ws["iqm"] <= ws["ci_high"]
    assert cross["beat_buy_and_hold"] == beat and cross["n_symbols"] == 3
    assert "[STAGE ✅] Universe — 3 symbols" in res.output
    # a symbol's folder is a complete run: its bundle replays from its own resolved files, metric for metric
    res = wf("eval", "--model-path", str(out / "AAA" / "w01" / "model.zip"), "--output-dir", str(root / "replay"))
    assert res.exit_code == 0, res.output
    run = json.loads((out / "AAA" / "w01" / "evaluation.json").read_text())["evaluation"]
    assert json.loads((root / "replay" / "evaluation.json").read_text())["evaluation"] == run


def test_wf_compare_on_a_universe_shows_symbol_rows_and_the_cross_symbol_row(universe):
    root, _ = universe
    res = wf("compare", str(root / "out"))
    assert res.exit_code == 0, res.output
    top = strict_json(root / "out" / "summary.json")
    ws = top["cross_symbol"]["window_sharpe"]
    lines = res.output.splitlines()
    for symbol in ("SPY", "AAA", "BBB"):
        assert any(line.startswith(f"out/{symbol} ") for line in lines)  # the member rows
        assert any(line.split()[:2] == ["out", symbol] for line in lines)  # the per-symbol rows
    cross = next(line for line in lines if "ALL (3 symbols)" in line)
    from backend.core.stages import fmt_num

    assert f"{top['cross_symbol']['beat_buy_and_hold']}/3" in cross
    assert f"{fmt_num(ws['iqm'])} [{fmt_num(ws['ci_low'])}, {fmt_num(ws['ci_high'])}]" in cross
    assert "symbols differ" not in res.output and "data differ" not in res.output  # by design in a universe
    rows = json.loads(wf("compare", str(root / "out"), "--json").output)
    assert sorted(r["symbol"] for r in rows) == ["AAA", "BBB", "SPY"]
    listed = wf("ls", str(root))
    assert listed.exit_code == 0 and "universe  out" in listed.output and "u on SPY, AAA, BBB" in listed.output


def test_resume_skips_finished_symbols_and_overwrite_replaces_the_universe(universe, tmp_path, monkeypatch):
    root, _ = universe
    work = _workdir(tmp_path)
    shutil.copytree(root / "out", work / "out")
    shutil.rmtree(work / "out" / "BBB")  # BBB did not finish
    spy_before = (work / "out" / "SPY" / "summary.json").read_bytes()
    monkeypatch.chdir(work)
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--output-dir", "out", "--quiet", "--no-report")
    assert res.exit_code == 2 and "--resume" in res.output  # never silently over an existing universe
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--output-dir", "out", "--quiet", "--no-report",
             "--resume")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "[SPY] [STAGE ✅] Training [w01] — skipped, completed earlier (--resume)" in res.output
    assert "[BBB] [STAGE ✅] Training [w01] — 120 steps" in res.output
    assert (work / "out" / "SPY" / "summary.json").read_bytes() == spy_before  # left exactly as it was
    assert strict_json(work / "out" / "summary.json")["cross_symbol"]["n_symbols"] == 3
    (work / "out" / "notes.txt").write_text("mine")
    res = wf("run", "--config", "u.json", "--windows", "w1.json", "--symbols", "AAA", "--output-dir", "out",
             "--quiet", "--no-report", "--overwrite")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (work / "out").iterdir() if not p.name.startswith(".")) == [
        "AAA", "notes.txt", "summary.json"
    ]  # fmt: skip
    assert strict_json(work / "out" / "summary.json")["symbols"] == ["AAA"]


def test_symbols_compose_with_seeds_on_one_pool(tmp_path, monkeypatch):
    monkeypatch.chdir(_workdir(tmp_path))
    from backend.run import executors

    made, submitted = [], []
    real = executors.make_executor

    def counting(*args, **kwargs):
        ex = real(*args, **kwargs)
        made.append(ex)
        submit = ex.submit
        ex.submit = lambda task: submitted.append(task.run) or submit(task)
        return ex

    monkeypatch.setattr(executors, "make_executor", counting)
    res = wf("run", "--config", "u.json", "--windows", "w1.json", "--symbols", "SPY,AAA", "--seeds", "2",
             "--output-dir", "out", "--quiet", "--no-report")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(made) == 1 and sorted(submitted) == ["AAA/s0", "AAA/s1", "SPY/s0", "SPY/s1"]  # one pool for all
    out = tmp_path / "out"
    for symbol in ("SPY", "AAA"):
        assert strict_json(out / symbol / "summary.json")["kind"] == "multi_seed"
        for seed in (0, 1):
            sub = strict_json(out / symbol / f"s{seed}" / "summary.json")
            assert sub["seed"] == seed and sub["symbol"] == symbol
    top = strict_json(out / "summary.json")
    assert top["seeds"] == [0, 1] and top["cross_symbol"]["window_sharpe"]["n_scores"] == 4  # 2 symbols × 1 × 2
    assert top["cross_symbol"]["symbols"]["SPY"]["runs"] == 2
    res = wf("compare", "out")
    assert res.exit_code == 0 and "out/SPY/s1" in res.output and "ALL (2 symbols)" in res.output


def test_sweep_of_two_configs_on_two_symbols_uses_symbol_x_window_units(tmp_path, monkeypatch):
    monkeypatch.chdir(_workdir(tmp_path))
    beta = json.loads(json.dumps(CONFIG))
    beta["sac"]["learning_rate"] = 1e-4
    Path("cfgs").mkdir()
    Path("cfgs/alpha.json").write_text(json.dumps(CONFIG))
    Path("cfgs/beta.json").write_text(json.dumps(beta))
    res = wf("sweep", "--configs", "cfgs/*.json", "--symbols", "SPY,AAA", "--windows", "w.json",
             "--output-dir", "sw", "--quiet", "--no-report")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = strict_json(tmp_path / "sw" / "sweep.json")
    assert sorted(r["name"] for r in doc["members"]) == ["alpha_s0/AAA", "alpha_s0/SPY", "beta_s0/AAA", "beta_s0/SPY"]
    sel = doc["selection"]
    assert sel["status"] == "ok" and sel["unit"] == "symbol × window"
    assert sel["units"] == ["SPY/w01", "SPY/w02", "AAA/w01", "AAA/w02"]
    assert {c["name"]: c["members"] for c in sel["configs"]} == {"alpha": ["alpha_s0"], "beta": ["beta_s0"]}
    for c in sel["configs"]:
        assert c["iqm"]["n_windows"] == 4 and c["iqm"]["n_scores"] == 4  # one score per symbol × window unit
    alpha = [strict_json(tmp_path / "sw" / "alpha_s0" / s / "summary.json") for s in ("SPY", "AAA")]
    scores = [w["evaluation"]["sharpe"] for sm in alpha for w in sm["windows"]]
    iqm = next(c["iqm"]["value"] for c in sel["configs"] if c["name"] == "alpha")
    assert iqm == pytest.approx(interquartile_mean(scores))
    assert strict_json(tmp_path / "sw" / "alpha_s0" / "summary.json")["kind"] == "universe"
    res = wf("compare", "sw")
    assert res.exit_code == 0 and res.output.count("ALL (2 symbols)") == 2, res.output


def test_symbol_path_expands_and_a_missing_symbol_file_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(_workdir(tmp_path))
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "data: file AAA 30m" in res.output and "[BBB] [STAGE ✅] Window Setup" in res.output
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--symbols", "SPY,ZZZ", "--output-dir", "out")
    assert res.exit_code == 2
    assert "symbol ZZZ: data.path 'bars/{symbol}_30m.csv' -> bars/ZZZ_30m.csv: file not found" in res.output
    assert "Training" not in res.output and not (tmp_path / "out" / "SPY").exists()
    # a single run expands {symbol} too; a universe config needs --symbol in one-symbol commands
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--symbol", "BBB", "--dry-run")
    assert res.exit_code == 0 and "data: file BBB 30m" in res.output, res.output
    res = wf("audit", "--config", "u.json", "--windows", "w.json")
    assert res.exit_code == 2 and "pass --symbol SPY" in res.output
    Path("foreign").mkdir()
    Path("foreign/notes.txt").write_text("not the harness's")
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--output-dir", "foreign", "--overwrite")
    assert res.exit_code == 2 and "not a run, seed or sweep folder of this harness" in res.output
    assert [p.name for p in Path("foreign").iterdir()] == ["notes.txt"]  # nothing written, nothing deleted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"symbols": ["SPY", "spy"]}, "data.symbols lists 'SPY' twice"),
        ({"symbol": "QQQ"}, "data.symbol 'QQQ' is not one of data.symbols"),
        ({"symbols": ["^VIX"]}, "cannot name a run folder"),
        ({"path": "bars/{sym}_30m.csv"}, "unknown placeholder {sym}; the only one is {symbol}"),
    ],
)
def test_universe_config_is_validated(tmp_path, monkeypatch, data, message):
    monkeypatch.chdir(_workdir(tmp_path))
    cfg = json.loads(json.dumps(CONFIG))
    cfg["data"].update(data)
    Path("bad.json").write_text(json.dumps(cfg))
    res = wf("run", "--config", "bad.json", "--windows", "w.json", "--dry-run")
    assert res.exit_code == 2 and message in res.output, res.output


def test_symbol_and_symbols_flags_exclude_each_other(tmp_path, monkeypatch):
    monkeypatch.chdir(_workdir(tmp_path))
    res = wf("run", "--config", "u.json", "--windows", "w.json", "--symbols", "SPY", "--symbol", "AAA", "--dry-run")
    assert res.exit_code == 2 and "--symbol and --symbols exclude each other" in res.output


def test_context_series_content_is_part_of_the_data_hash(tmp_path, monkeypatch):
    """A changed context file changes the data hash, so --resume refuses instead of reusing the finished window."""
    monkeypatch.chdir(_workdir(tmp_path))
    cfg = json.loads(json.dumps(CONFIG))
    cfg["data"] = {
        "source": "file",
        "path": "bars/SPY_30m.csv",
        "symbol": "SPY",
        "interval": "30m",
        "context": [{"symbol": "AAA", "source": "file", "path": "bars/AAA_30m.csv", "interval": "1d"}],
    }
    cfg["env"]["features"] = ["ret_1", "AAA:ret_1"]  # fmt: skip
    Path("c.json").write_text(json.dumps(cfg))
    from backend.run.options import SetupOptions
    from backend.run.window_setup import setup

    before = setup(SetupOptions(config="c.json", windows="w1.json")).bars.provenance
    res = wf("run", "--config", "c.json", "--windows", "w1.json", "--output-dir", "run", "--quiet", "--no-report")
    assert res.exit_code == 0, res.output
    assert strict_json(tmp_path / "run" / "summary.json")["data_hash"] == before["content_hash"]
    path = Path("bars/AAA_30m.csv")
    lines = path.read_text().splitlines()
    row = lines[40].split(",")
    row[5] = str(int(row[5]) + 1000)  # one context bar's volume moves (so its day's); the traded bars stay the same
    path.write_text("\n".join([*lines[:40], ",".join(row), *lines[41:]]) + "\n")
    after = setup(SetupOptions(config="c.json", windows="w1.json")).bars.provenance
    assert after["bars_hash"] == before["bars_hash"] and after["context_hash"] != before["context_hash"]
    assert after["content_hash"] != before["content_hash"]
    res = wf("run", "--config", "c.json", "--windows", "w1.json", "--output-dir", "run", "--quiet", "--no-report",
             "--resume")  # fmt: skip
    assert res.exit_code == 2 and "the data changed" in res.output, res.output  # refused, never reused
