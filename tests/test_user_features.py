"""env.feature_modules and the worked example of docs/features.md: a user module, two TA-Lib indicators, a file
column and a daily context series dry-run, train, replay and pass the audit; a planted user leak (close[t+1]) makes
the audit exit 3; editing the module's function refuses --resume and the stale bundle (exit 5 naming the feature)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.core.errors import InputError
from backend.features import builtin, user
from tests.helpers import wf

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
WINDOW = [
    {"id": "w01", "train_start": "2019-01-02", "train_end": "2019-01-11", "test_start": "2019-01-14",
     "test_end": "2019-01-15"}
]  # fmt: skip


@pytest.fixture
def clean_registry():
    """User modules register into the process-wide registry: restore it after each test."""
    saved = (dict(builtin.FEATURES), dict(builtin.FEATURE_WARMUP), dict(user._INSTALLED), dict(user.FEATURE_MODULE))
    yield
    for live, old in zip(
        (builtin.FEATURES, builtin.FEATURE_WARMUP, user._INSTALLED, user.FEATURE_MODULE), saved, strict=True
    ):
        live.clear()
        live.update(old)


@pytest.fixture(name="example")
def example_fixture(tmp_path, monkeypatch, clean_registry):
    """The docs/examples folder, its data written by make_data.py, in a fresh working directory."""
    for name in ("features_config.json", "my_features.py", "make_data.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import make_data

        make_data.main(tmp_path)
    finally:
        sys.path.remove(str(EXAMPLES))
    (tmp_path / "w.json").write_text(json.dumps(WINDOW))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_worked_example_dry_runs_trains_replays_and_passes_the_audit(example):
    res = wf("run", "--config", "features_config.json", "--windows", "w.json", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "context QQQ 1d:" in res.output and "no back-fill" in res.output
    res = wf("run", "--config", "features_config.json", "--windows", "w.json", "--output-dir", "run", "--quiet")
    assert res.exit_code == 0, res.output
    summary = json.loads((example / "run" / "summary.json").read_text())
    assert len(summary["data"]["context_hash"]) == 16
    identity = summary["data"]["feature_identity"]
    assert identity["close_vs_high_10"]["module_source_sha256"]
    assert identity["talib:RSI(timeperiod=14)"]["ta_lib"]
    meta = json.loads((example / "run" / "w01" / "metadata.json").read_text())
    assert "close_vs_high_10" in meta["compatibility"]["feature_identity"]
    res = wf("eval", "--model-path", "run/w01/model.zip", "--config", "features_config.json", "--output-dir", "replay")
    assert res.exit_code == 0, res.output
    a = json.loads((example / "run" / "w01" / "evaluation.json").read_text())["evaluation"]
    b = json.loads((example / "replay" / "evaluation.json").read_text())["evaluation"]
    assert a == b  # the replay reproduces the run's metrics exactly
    assert (example / "run" / "w01" / "equity.csv").read_bytes() == (example / "replay" / "equity.csv").read_bytes()
    # from a history starting a month later (2019-01-02 instead of 2018-12-03): the same replay, value for value
    res = wf("eval", "--model-path", "run/w01/model.zip", "--config", "features_config.json",
             "--set", "data.start=2019-01-02", "--output-dir", "late")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((example / "late" / "evaluation.json").read_text())["evaluation"] == a
    run_rows = _rows_without_session(example / "run" / "w01" / "equity.csv")
    assert run_rows == _rows_without_session(example / "late" / "equity.csv") and len(run_rows) == 52
    res = wf(
        "audit", "--config", "features_config.json", "--windows", "w.json", "--steps", "200", "--quiet", "--cuts", "0"
    )
    assert res.exit_code == 0, res.output


def _rows_without_session(path):
    """equity.csv rows without the session counter (it numbers sessions from the first loaded one)."""
    import csv

    with path.open() as f:
        return [{k: v for k, v in row.items() if k != "session"} for row in csv.DictReader(f)]


def test_editing_the_user_function_refuses_resume_and_the_stale_bundle(example):
    res = wf("run", "--config", "features_config.json", "--windows", "w.json", "--output-dir", "run", "--quiet")
    assert res.exit_code == 0, res.output
    module = example / "my_features.py"
    module.write_text(module.read_text().replace("- 1.0", "- 0.5"))  # the function changes, its name does not
    res = wf("run", "--config", "features_config.json", "--windows", "w.json", "--output-dir", "run", "--resume")
    assert res.exit_code == 2 and "config changed" in res.output, res.output  # refused, never reused
    res = wf("eval", "--model-path", "run/w01/model.zip", "--config", "features_config.json", "--output-dir", "replay")
    assert res.exit_code == 5, res.output
    assert "feature 'close_vs_high_10' changed since training" in res.output


def test_user_leak_reading_close_t_plus_1_fails_the_audit(example):
    module = example / "my_features.py"
    module.write_text(
        module.read_text()
        + '\n\n@register_feature("peek", "planted leak: next close", warmup=0)\n'
        + "def peek(m):\n    return np.r_[m.close[1:] / m.close[:-1] - 1.0, np.nan]\n"
    )
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["env"]["features"] = ["ret_1", "peek"]
    (example / "c.json").write_text(json.dumps(cfg))
    res = wf("audit", "--config", "c.json", "--windows", "w.json", "--steps", "200", "--quiet", "--cuts", "0")
    assert res.exit_code == 3, res.output
    assert "look-ahead [w01] features:" in res.output and "feature 'peek' at 2019-01-14T09:30" in res.output


def test_module_entries_load_from_file_or_import_path(tmp_path, clean_registry):
    path = tmp_path / "feats.py"
    path.write_text(
        "import numpy as np\nfrom backend.features import register_feature\n\n"
        "@register_feature('two_bar_sum', 'sum of the last two closes', warmup=1)\n"
        "def f(m):\n    return np.r_[np.nan, m.close[1:] + m.close[:-1]]\n"
    )
    sources = user.install_entries(["feats.py"], tmp_path)
    assert sources[0][1] == path.read_text()  # the source itself travels with the bars (no shared disk needed)
    assert "two_bar_sum" in builtin.FEATURES and user.source_hash_of("two_bar_sum")
    builtin.FEATURES.pop("two_bar_sum")
    user._INSTALLED.clear()
    user.install(sources)  # what a worker does with the shipped source: the feature is back
    assert "two_bar_sum" in builtin.FEATURES
    with pytest.raises(InputError, match="not found"):
        user.install_entries(["missing.py"], tmp_path)
    with pytest.raises(InputError, match=r"neither a \.py file nor an importable module"):
        user.install_entries(["no_such_module_xyz"], tmp_path)


def test_a_module_that_fails_to_load_names_itself(tmp_path, clean_registry):
    (tmp_path / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InputError, match=r"bad fails to load: RuntimeError: boom"):
        user.install_entries(["bad.py"], tmp_path)


def test_example_user_feature_reads_no_further_back_than_declared(market_5m, clean_registry):
    from tests.test_feature_specs import assert_reads_only_declared

    user.install_entries([str(EXAMPLES / "my_features.py")])
    assert_reads_only_declared("close_vs_high_10", market_5m)


def test_wf_features_lists_every_kind_and_previews_without_torch(example):
    res = wf("features", "--config", "features_config.json")
    assert res.exit_code == 0, res.output
    assert "close_vs_high_10      user" in res.output and "warm-up 9 bar(s)" in res.output
    assert "talib:MACD(fastperiod=12,slowperiod=26,signalperiod=9) -> macd|macdsignal|macdhist" in res.output
    assert "extra columns of spy_imb.csv (column:NAME, list them in data.columns): imb" in res.output
    code = (
        "import sys; from click.testing import CliRunner; from backend.cli.app import cli; "
        "r = CliRunner().invoke(cli, ['features', '--config', 'features_config.json', '--windows', 'w.json', "
        "'--json']); print(r.output); assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=example, timeout=300)
    assert out.returncode == 0, out.stderr + out.stdout
    doc = json.loads(out.stdout[: out.stdout.rindex("}") + 1])
    assert [r["feature"] for r in doc["features"]][:2] == ["ret_1", "talib:RSI(timeperiod=14)"]
    assert all(r["nan_share"] == 0.0 for r in doc["features"])  # warmed up before the train span
    assert doc["correlations"] and abs(doc["correlations"][0][0]) <= 1.0


def test_a_worker_without_the_file_runs_the_shipped_source(example):
    """What a Ray task without a shared disk gets: the pickled bars carry the module source; a fresh process
    with the file deleted computes the user feature exactly as the driver does."""
    import pickle
    import subprocess

    from backend.features.builtin import compute_features
    from backend.run.options import SetupOptions
    from backend.run.window_setup import setup

    s = setup(SetupOptions(config="features_config.json", windows="w.json"))
    names = ["close_vs_high_10", "QQQ:ret_1", "column:imb"]
    (example / "market.pkl").write_bytes(pickle.dumps(s.market))
    np.save(example / "want.npy", compute_features(s.market, names))
    (example / "my_features.py").unlink()
    code = (
        "import pickle, numpy as np; from backend.features.builtin import compute_features, FEATURES; "
        "assert 'close_vs_high_10' not in FEATURES; m = pickle.load(open('market.pkl', 'rb')); "
        f"got = compute_features(m, {names!r}); assert np.array_equal(got, np.load('want.npy')); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=example, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_a_user_feature_reading_further_back_than_declared_fails_the_audit(example):
    """A feature that reads 200 bars back while declaring 2 is no look-ahead, but it breaks the tune accounting
    and history-start independence: the audit's warm-up check (every test bar, the real compute_features on the
    declared warm-up only) names it."""
    module = example / "my_features.py"
    module.write_text(
        module.read_text()
        + '\n\n@register_feature("deep_mean", "planted: declares 2 bars, reads 200", warmup=2)\n'
        + "def deep_mean(m):\n"
        + "    c = np.asarray(m.close, dtype=np.float64)\n"
        + "    out = np.full(len(c), np.nan)\n"
        + "    for t in range(len(c)):\n"
        + "        out[t] = c[t] / c[max(0, t - 200) : t + 1].mean() - 1.0\n"
        + "    return out\n"
    )
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["env"]["features"] = ["ret_1", "deep_mean"]
    (example / "c.json").write_text(json.dumps(cfg))
    res = wf("audit", "--config", "c.json", "--windows", "w.json", "--steps", "200", "--quiet", "--cuts", "0",
             "--no-env-check")  # fmt: skip
    assert res.exit_code == 3, res.output
    assert "look-ahead [w01] warm-up:" in res.output, res.output
    assert "feature 'deep_mean' at 2019-01-14T09:30" in res.output and "further back than it declares" in res.output


def test_the_warm_up_check_passes_honest_declarations_and_names_a_short_one(market_5m, clean_registry):
    from backend.checks.warmup_audit import first_undeclared_read
    from backend.features.builtin import compute_features

    names = ["ret_1", "vol_20", "vwap_dev", "time_of_day"]
    m = market_5m.take(0, 3000)
    full = compute_features(m, names)
    assert first_undeclared_read(m, names, full, range(2500, 2600)) is None
    saved = builtin.FEATURE_WARMUP["vol_20"]
    builtin.FEATURE_WARMUP["vol_20"] = 10  # negative control: declared too short
    try:
        found = first_undeclared_read(m, names, full, range(2500, 2600))
    finally:
        builtin.FEATURE_WARMUP["vol_20"] = saved
    assert found is not None and found.feature == "vol_20" and found.bar == 2500


def test_a_bundle_replays_without_config_from_another_folder(example, monkeypatch):
    """config.resolved.json names the module file that was loaded (absolute), so wf eval --model-path alone works
    from any working directory (the module's path was relative to the config's folder)."""
    cfg = json.loads((example / "features_config.json").read_text())
    cfg["data"]["path"] = str(example / "spy_imb.csv")
    cfg["data"]["context"][0]["path"] = str(example / "qqq.csv")
    (example / "c_abs.json").write_text(json.dumps(cfg))
    res = wf("run", "--config", "c_abs.json", "--windows", "w.json", "--output-dir", "run", "--quiet", "--no-report")
    assert res.exit_code == 0, res.output
    elsewhere = example / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = wf("eval", "--model-path", str(example / "run" / "w01" / "model.zip"), "--output-dir", "replay")
    assert res.exit_code == 0, res.output
    a = json.loads((example / "run" / "w01" / "evaluation.json").read_text())["evaluation"]
    assert json.loads((elsewhere / "replay" / "evaluation.json").read_text())["evaluation"] == a
