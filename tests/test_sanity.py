"""wf sanity: a planted edge is found, a random walk shows none; collapse diagnostics."""

import numpy as np

from backend.evaluation.diagnostics import diagnose
from backend.evaluation.simulate import Trajectory
from tests.helpers import strict_json, wf


def test_sanity_passes_both_halves(tmp_path):
    res = wf("sanity", "--output-dir", tmp_path, "--quiet")
    assert res.exit_code == 0, res.output
    assert "[STAGE ✅] Sanity (edge)" in res.output and "[STAGE ✅] Sanity (random walk)" in res.output
    edge = strict_json(tmp_path / "edge" / "summary.json")
    assert edge["synthetic"] is True and edge["statistics"]["psr"] >= 0.95
    w = edge["windows"][0]
    assert w["evaluation"]["total_return"] > w["baselines"]["buy_and_hold"]["total_return"]
    assert strict_json(tmp_path / "random_walk" / "summary.json")["statistics"]["psr"] < 0.95


def test_sanity_fails_when_there_is_no_edge_to_find(tmp_path, monkeypatch):
    import backend.checks.sanity

    monkeypatch.setattr(backend.checks.sanity, "EDGE", 0.0)  # the "edge" half becomes a random walk
    res = wf("sanity", "--output-dir", tmp_path, "--timesteps", "1500", "--quiet")
    assert res.exit_code == 1 and "[STAGE ❌] Sanity (edge)" in res.output


def _traj(actions, positions, n=100):
    z = np.zeros(n)
    return Trajectory(0, z, np.asarray(positions, float), z, z, z, z, np.asarray(actions, float), np.zeros(n, int))


def test_collapse_diagnostics():
    n = 100
    constant = diagnose(_traj(np.full(n, 0.99), np.full(n, 1.0)), 1.0, 0)
    assert any("near-constant action" in w for w in constant["warnings"])
    assert any("zero trades" in w for w in constant["warnings"])
    assert any("position limit" in w for w in constant["warnings"])
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, n)
    healthy = diagnose(_traj(acts, acts * 0.5), 1.0, 12)
    assert healthy["warnings"] == [] and healthy["action_std"] > 0.3
