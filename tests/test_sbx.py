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


def test_workers_share_a_jax_compilation_cache_per_machine(monkeypatch):
    """configure_worker points JAX's persistent cache at $WF_CACHE_DIR/jax/<machine>; a compile writes into it."""
    import os

    import jax
    import jax.numpy as jnp

    from backend.training import threads

    threads.configure_worker("sbx", 1)
    folder = threads.jax_cache_dir()
    assert folder is not None and folder.parent == __import__("pathlib").Path(os.environ["WF_CACHE_DIR"]) / "jax"
    assert jax.config.jax_compilation_cache_dir == str(folder)
    before = set(folder.iterdir())
    jax.jit(lambda x: jnp.tanh(x) * 3.25 + 0.125)(jnp.arange(7.0)).block_until_ready()  # a fresh computation
    assert set(folder.iterdir()) - before, "the compile was not written to the cache"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    assert threads.jax_cache_dir() != folder  # other flags, other folder
    monkeypatch.setenv("WF_JAX_CACHE", "off")
    assert threads.jax_cache_dir() is None
