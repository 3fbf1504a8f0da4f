"""The documented commands, as a user types them (subprocesses from the repo root)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import no_temp_files, strict_json, wf

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # the earlier harness's example files
SCRIPT = ROOT / "backend" / "scripts" / "run_walk_forward.py"


def sh(*args, timeout=300):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin"},
    )


def test_end_to_end_subprocess(tiny_config, tiny_windows, tmp_path):
    out = tmp_path / "run"
    p = sh(
        SCRIPT,
        "--symbol",
        "SPY",
        "--source",
        "sample",
        "--windows",
        tiny_windows,
        "--config",
        tiny_config,
        "--timesteps",
        "300",
        "--output-dir",
        out,
        "--quiet",
        "--stochastic",
    )
    assert p.returncode == 0, p.stdout + p.stderr
    markers = [line for line in p.stdout.splitlines() if line.startswith("[STAGE")]
    assert markers[0].startswith("[STAGE ✅] Window Setup — 2 windows")
    assert markers[-1] == f"[STAGE ✅] Summary — {out / 'summary.json'}"
    assert len(markers) == 7 and p.stdout.splitlines() == markers  # --quiet: markers only
    assert markers[-2] == f"[STAGE ✅] Report — {out / 'report.html'}"
    s = strict_json(out / "summary.json")
    assert s["status"] == "completed" and s["windows"][0]["training"]["timesteps"] == 300
    assert s["windows"][0]["evaluation"]["deterministic"] is False
    assert no_temp_files(out)


def test_dry_run_never_imports_torch():
    code = (
        "import sys\n"
        "from backend.cli.app import cli\n"
        "try:\n"
        "    cli(['run', '--symbol', 'SPY', '--source', 'sample', '--windows', 'tmp/mini_windows_multi.json',"
        " '--dry-run'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'gymnasium', 'tensorboard') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    p = sh("-c", code)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[STAGE ✅] Window Setup — 3 windows" in p.stdout
    assert "w03     2019-03-01 -> 2019-03-26" in p.stdout


def test_legacy_config_and_windows_dry_run_report_unmapped_keys():
    p = sh(
        SCRIPT, "--windows", FIXTURES / "legacy_windows.json", "--config", FIXTURES / "legacy_config.json", "--dry-run"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "config: earlier-harness format" in p.stdout and "every key mapped" in p.stdout and "SPY 15m" in p.stdout
    # the benchmark (IWM) is mapped; offline it is reported unavailable, not dropped silently
    assert "benchmark IWM unavailable" in p.stdout


def test_legacy_unimplemented_keys_are_reported_in_dry_run_and_summary(tmp_path):
    raw = {
        "agent_type": "SAC_INTRADAY",
        "symbol": "SPY",
        "training_settings": {"interval": "15m", "total_timesteps": 300, "fancy_option": 1},
        "sac_hyperparameters": {"learning_starts": 50, "batch_size": 32, "policy_noise": 0.2},
    }
    cfg = tmp_path / "legacy.json"
    cfg.write_text(json.dumps(raw))
    p = sh(SCRIPT, "--windows", "tmp/mini_window.json", "--config", cfg, "--dry-run")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "not implemented: training_settings.fancy_option, sac_hyperparameters.policy_noise" in p.stdout
    res = wf(
        "run",
        "--windows",
        "tmp/mini_window.json",
        "--config",
        cfg,
        "--output-dir",
        tmp_path / "o",
        "--quiet",
        "--no-report",
        "--set",
        "sac.net_arch=[8]",
    )
    assert res.exit_code == 0, res.output
    s = strict_json(tmp_path / "o" / "summary.json")
    assert s["unmapped_legacy_keys"] == ["training_settings.fancy_option", "sac_hyperparameters.policy_noise"]
    assert any("fancy_option" in w for w in s["warnings"])


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--config", "{cfg_typo}"], 2, "did you mean 'sac.learning_rate'"),
        (["--windows", "{bad_windows}"], 2, "test_start 2019-01-20 is not after train_end"),
        (["--windows", "{outside}"], 3, "lie after the last bar"),
        (["--windows", "{missing}"], 2, "window file not found"),
        (["--symbol", "TNA", "--source", "sample"], 2, "SPY only"),
        (["--timesteps", "0"], 2, "training.total_timesteps"),
        (["--set", "sac.gamma=2"], 2, "sac.gamma"),
    ],
)
def test_bad_input_exit_codes_without_traceback(tmp_path, args, code, needle):
    files = {
        "cfg_typo": ({"sac": {"learning_rat": 0.1}}, "c.json"),
        "bad_windows": (
            [
                {
                    "train_start": "2019-01-02",
                    "train_end": "2019-01-25",
                    "test_start": "2019-01-20",
                    "test_end": "2019-01-30",
                }
            ],
            "w.json",
        ),
        "outside": (
            [
                {
                    "train_start": "2021-01-04",
                    "train_end": "2021-01-25",
                    "test_start": "2021-01-28",
                    "test_end": "2021-01-29",
                }
            ],
            "o.json",
        ),
    }
    paths = {"missing": str(tmp_path / "nope.json")}
    for key, (obj, name) in files.items():
        (tmp_path / name).write_text(json.dumps(obj))
        paths[key] = str(tmp_path / name)
    args = [a.format(**paths) for a in args]
    if "--windows" not in args:
        args += ["--windows", "tmp/mini_window.json"]
    res = wf("run", *args, "--dry-run")
    assert res.exit_code == code, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[STAGE ❌] Window Setup") and needle in lines[0]
    assert "Traceback" not in res.output


def test_output_dir_that_is_a_file_is_refused(tmp_path, tiny_config, tiny_windows):
    f = tmp_path / "file"
    f.write_text("x")
    res = wf("run", "--config", tiny_config, "--windows", tiny_windows, "--output-dir", f, "--quiet")
    assert res.exit_code == 2 and "is a file" in res.output


def test_sigterm_during_training_leaves_a_true_summary(tiny_config, tiny_windows, tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--windows",
            str(tiny_windows),
            "--config",
            str(tiny_config),
            "--timesteps",
            "200000",
            "--output-dir",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin"},
    )
    deadline = time.time() + 120
    while not (out / "w01" / "training_progress.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "[STAGE ❌] Training [w01] — interrupted" in stdout and "Traceback" not in stdout + stderr
    summary = strict_json(out / "summary.json")
    assert summary["status"] == "interrupted" and summary["windows"][0]["status"] == "interrupted"
    assert no_temp_files(out)


def test_output_dir_not_writable_is_refused_before_training(tmp_path, tiny_config, tiny_windows, monkeypatch):
    import os

    from backend.training import trainer

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root, chmod cannot make this happen
    monkeypatch.setattr(trainer, "train_window", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    res = wf("run", "--config", tiny_config, "--windows", tiny_windows, "--output-dir", tmp_path / "o", "--quiet")
    assert res.exit_code == 2 and "not writable" in res.output


def test_device_auto_rule(monkeypatch):
    import torch

    from backend.config.models import Config
    from backend.core.errors import TrainingError
    from backend.training.trainer import pick_device

    small = Config.model_validate({"sac": {"net_arch": [64, 64], "batch_size": 256}, "training": {"device": "auto"}})
    big = Config.model_validate({"sac": {"net_arch": [512, 512], "batch_size": 256}, "training": {"device": "auto"}})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device(small) == "cpu" and pick_device(big) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device(big) == "cpu"
    with pytest.raises(TrainingError, match="no CUDA device"):
        pick_device(Config.model_validate({"training": {"device": "cuda"}}))
