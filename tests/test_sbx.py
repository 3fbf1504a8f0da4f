"""The JAX backend (SBX) through the whole harness: determinism, exact replay, parallel identity, sanity."""

import pytest

from tests.helpers import strict_json, wf

pytest.importorskip("sbx")


def run(cfg, wins, out, *extra):
    return wf(
        "run",
        "--config",
        cfg,
        "--windows",
        wins,
        "--output-dir",
        out,
        "--quiet",
        "--no-report",
        "--set",
        "agent.backend=sbx",
        *extra,
    )


def test_sbx_same_seed_same_summary_and_exact_replay(tiny_config, tiny_windows, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(tiny_config, tiny_windows, a).exit_code == 0
    res = run(tiny_config, tiny_windows, b, "--workers", "2")
    assert res.exit_code == 0, res.output
    sa, sb = strict_json(a / "summary.json"), strict_json(b / "summary.json")
    assert sa["backend"] == "sbx" and sa["aggregate"] == sb["aggregate"]
    assert [w["evaluation"] for w in sa["windows"]] == [w["evaluation"] for w in sb["windows"]]
    meta = strict_json(a / "w01" / "metadata.json")
    assert meta["compatibility"]["backend"] == "sbx" and "jax" in meta["libraries"]
    rep = wf("eval", "--model-path", a / "w02" / "model.zip", "--output-dir", tmp_path / "r", "--quiet")
    assert rep.exit_code == 0, rep.output
    assert strict_json(tmp_path / "r" / "evaluation.json")["evaluation"] == sa["windows"][1]["evaluation"]
    other = run(tiny_config, tiny_windows, tmp_path / "c", "--seed", "1")  # negative control
    assert other.exit_code == 0
    assert strict_json(tmp_path / "c" / "summary.json")["aggregate"] != sa["aggregate"]


def test_sanity_passes_with_sbx(tmp_path):
    res = wf("sanity", "--backend", "sbx", "--output-dir", tmp_path, "--quiet")
    assert res.exit_code == 0, res.output
    assert "[STAGE ✅] Sanity (edge)" in res.output and "[STAGE ✅] Sanity (random walk)" in res.output
