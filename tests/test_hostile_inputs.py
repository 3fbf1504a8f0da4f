"""Hostile inputs are refused early, with the stage's exit code and a message naming the file (issue 21).

Bundles are built by hand (no training): wf eval verifies a bundle before it loads data or torch, so a
hand-made bundle folder with a re-signed metadata.json is enough to reach each check.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.core.errors import EXIT_EVALUATION, EXIT_INPUT
from backend.training import bundle
from tests.helpers import wf

COMPAT = {
    "algorithm": "sac",
    "backend": "sb3",
    "net_arch": [8],
    "observation_shape": [19],
    "feature_names": ["ret_1", "ret_5", "vol_20", "time_of_day"],
    "normalize_obs": True,
}


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _stats(n: int = 4, **override) -> bytes:
    arrays = {"feature_mean": np.zeros(n), "feature_var": np.ones(n), "clip_obs": np.float64(10), "count": np.int64(1)}
    arrays.update(override)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def torch_like(obj: object, protocol: int = 2) -> bytes:
    """What torch.save writes, without torch: a zip holding archive/data.pkl (enough for the pickle scan)."""
    import pickle

    buf = io.BytesIO()
    _zip_into(buf, {"archive/data.pkl": pickle.dumps(obj, protocol=protocol), "archive/version": b"3"})
    return buf.getvalue()


def _zip_into(target, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def make_bundle(folder: Path, model: dict[str, bytes] | None = None, stats: bytes | None = None) -> Path:
    """A bundle folder (w01/) with model.zip, obs_stats.npz and a metadata.json whose hashes match them."""
    w = folder / "w01"
    w.mkdir(parents=True)
    _zip(w / bundle.MODEL_FILE, model or {"policy.pth": torch_like({"w": [0.0] * 8}), "data": b"{}"})
    (w / bundle.STATS_FILE).write_bytes(stats if stats is not None else _stats())
    files = {n: hashlib.sha256((w / n).read_bytes()).hexdigest() for n in (bundle.MODEL_FILE, bundle.STATS_FILE)}
    meta = {"schema_version": 2, "files": files, "compatibility": COMPAT, "window": {}}
    (w / bundle.METADATA_FILE).write_text(json.dumps(meta))
    return w / bundle.MODEL_FILE


def evaluate(model: Path, tiny_config: Path, tiny_windows: Path):
    return wf("eval", "--model-path", model, "--config", tiny_config, "--windows", tiny_windows, "--quiet")


def test_member_bound_follows_the_network():
    small = bundle.member_bound({"compatibility": COMPAT})
    big = bundle.member_bound({"compatibility": {**COMPAT, "net_arch": [256, 256], "observation_shape": [100]}})
    assert 1 << 20 < small < 2 << 20
    assert 20 << 20 < big < 40 << 20
    assert bundle.member_bound({}) < bundle.MAX_UNZIPPED_BYTES


def test_member_larger_than_the_network_allows_is_refused(tmp_path, tiny_config, tiny_windows):
    bound = bundle.member_bound({"compatibility": COMPAT})
    model = make_bundle(tmp_path, {"policy.pth": os.urandom(bound + 1), "data": b"{}"})  # ratio ~1, no bomb
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert "'policy.pth' declares" in res.output and str(bound) in res.output and "model.zip" in res.output


def test_npz_bomb_is_refused_from_its_directory(tmp_path, tiny_config, tiny_windows):
    buf = io.BytesIO()
    np.savez_compressed(buf, feature_mean=np.zeros(2_000_000), feature_var=np.ones(4), clip_obs=np.float64(10))
    model = make_bundle(tmp_path, stats=buf.getvalue())
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert "obs_stats.npz" in res.output and "feature_mean.npy" in res.output
    assert "internal error" not in res.output


def test_npz_of_the_wrong_shape_is_exit_5_naming_the_file(tmp_path, tiny_config, tiny_windows):
    model = make_bundle(tmp_path, stats=_stats(feature_mean=np.zeros(3)))
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert "obs_stats.npz: feature_mean is float64 (3,), expected float64 (4,)" in res.output
    assert "internal error" not in res.output


def test_npz_with_too_many_entries_is_refused(tmp_path):
    path = tmp_path / "s.npz"
    _zip(path, {f"a{k}.npy": b"" for k in range(bundle.MAX_NPZ_ENTRIES + 1)})
    with pytest.raises(bundle.EvaluationError, match=rf"s.npz: {bundle.MAX_NPZ_ENTRIES + 1} entries, over the cap"):
        bundle.read_statistics(path, 4)


def test_zip_with_many_entries_is_refused_with_the_count(tmp_path, tiny_config, tiny_windows):
    members = {f"e{k}": b"" for k in range(bundle.MAX_ENTRIES + 1)}
    model = make_bundle(tmp_path, {"policy.pth": b"x", **members})
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert f"model.zip: {bundle.MAX_ENTRIES + 2} entries, over the cap of {bundle.MAX_ENTRIES}" in res.output


def test_zip64_entry_count_is_read_without_parsing_the_directory(tmp_path):
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        for k in range(70_000):  # > 0xFFFF: the count lives in the zip64 record
            z.writestr(f"{k}", b"")
    assert bundle._zip_entry_count(path) == 70_000


def test_hostile_bundle_is_refused_before_data_or_torch(tmp_path, tiny_config, tiny_windows):
    model = make_bundle(tmp_path, {f"e{k}": b"" for k in range(200)})
    probe = (
        "import sys\nfrom backend.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "loaded = [m for m in ('torch', 'backend.data.loader', 'backend.run.driver') if m in sys.modules]\n"
        "print('LOADED', loaded)\nsys.exit(code)\n"
    )
    args = ["eval", "--model-path", str(model), "--config", str(tiny_config), "--windows", str(tiny_windows), "--quiet"]
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_EVALUATION, proc.stdout + proc.stderr
    assert "entries, over the cap" in proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout  # refused before torch, the data loader or the run driver


def test_config_with_too_many_keys_is_refused(tmp_path, tiny_windows):
    cfg = tmp_path / "big.json"
    cfg.write_text(json.dumps({"sac": {f"k{i}": 1 for i in range(1500)}}))
    res = wf("run", "--config", cfg, "--windows", tiny_windows, "--output-dir", tmp_path / "out", "--quiet")
    assert res.exit_code == EXIT_INPUT, res.output
    assert "big.json" in res.output and "1500 keys" in res.output and "over the cap of 1000" in res.output


def test_unknown_keys_are_listed_at_most_ten(tmp_path):
    from backend.config.models import validate
    from backend.core.errors import InputError

    with pytest.raises(InputError) as e:
        validate({"sac": {f"zz{i}": 1 for i in range(50)}}, "c.json")
    msg = str(e.value)
    assert msg.count("unknown key") == 10 and "and 40 more" in msg


def test_window_file_with_too_many_windows_is_refused(tmp_path):
    from backend.core.errors import InputError
    from backend.walkforward.windows import MAX_WINDOWS, load_windows

    path = tmp_path / "w.json"
    one = {"train_start": "2019-01-01", "train_end": "2019-01-02", "test_start": "2019-01-03", "test_end": "2019-01-04"}
    path.write_text(json.dumps([one] * (MAX_WINDOWS + 1)))
    with pytest.raises(InputError, match=rf"w.json: {MAX_WINDOWS + 1} windows, over the cap of {MAX_WINDOWS}"):
        load_windows(path)


def test_config_file_over_the_byte_cap_is_refused_unread(tmp_path):
    from backend.config.models import load_config
    from backend.core.errors import InputError
    from backend.core.jsonio import MAX_CONFIG_BYTES

    path = tmp_path / "huge.json"
    path.write_text('{"sac": {}, "pad": "' + "x" * MAX_CONFIG_BYTES + '"}')
    with pytest.raises(InputError, match=rf"huge.json: config file is \d+ bytes, over the limit of {MAX_CONFIG_BYTES}"):
        load_config(path)


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL and STACK_GLOBAL opcodes
def test_a_pickle_that_runs_code_is_refused_before_torch(tmp_path, tiny_config, tiny_windows, protocol):
    model = make_bundle(tmp_path, {"policy.pth": torch_like({"w": _Payload()}, protocol), "data": b"{}"})
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert "member 'policy.pth': its pickle names posix.system" in res.output


def test_a_pth_member_that_is_not_a_torch_archive_is_refused(tmp_path, tiny_config, tiny_windows):
    model = make_bundle(tmp_path, {"policy.pth": b"x" * 100, "data": b"{}"})
    res = evaluate(model, tiny_config, tiny_windows)
    assert res.exit_code == EXIT_EVALUATION, res.output
    assert "not a readable torch weights archive" in res.output or "not a torch weights archive" in res.output


def test_real_sb3_weights_pass_the_pickle_scan(tmp_path):
    """No false refusal: what torch.save writes for SB3's state dicts (policy, optimiser, variables) passes."""
    import torch as th

    from backend.training.pth_scan import scan_member

    net = th.nn.Sequential(th.nn.Linear(4, 8), th.nn.ReLU(), th.nn.Linear(8, 2))
    opt = th.optim.Adam(net.parameters())
    net(th.zeros(3, 4)).sum().backward()
    opt.step()
    for obj in (net.state_dict(), opt.state_dict(), {"log_ent_coef": th.zeros(1, requires_grad=True)}):
        buf = io.BytesIO()
        th.save(obj, buf)
        scan_member(tmp_path / "model.zip", "x.pth", buf.getvalue())
