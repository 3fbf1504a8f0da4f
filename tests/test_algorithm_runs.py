"""agent.algorithm = tqc / crossq / td3 through the whole harness: train, save, replay exactly, compare side by side."""

import pytest

from tests.helpers import strict_json, wf


@pytest.mark.parametrize("algorithm", ["tqc", "crossq", "td3"])
def test_algorithm_trains_saves_and_replays_exactly(algorithm, tiny_config, tiny_windows, tmp_path):
    out = tmp_path / algorithm
    res = wf(
        "run",
        "--config",
        tiny_config,
        "--windows",
        tiny_windows,
        "--output-dir",
        out,
        "--quiet",
        "--no-report",
        "--set",
        f"agent.algorithm={algorithm}",
    )
    assert res.exit_code == 0, res.output
    summary = strict_json(out / "summary.json")
    assert summary["algorithm"] == algorithm
    meta = strict_json(out / "w02" / "metadata.json")
    assert meta["compatibility"]["algorithm"] == algorithm and meta["compatibility"]["backend"] == "sb3"
    rep = wf("eval", "--model-path", out / "w02" / "model.zip", "--output-dir", tmp_path / "replay", "--quiet")
    assert rep.exit_code == 0, rep.output
    assert strict_json(tmp_path / "replay" / "evaluation.json")["evaluation"] == summary["windows"][1]["evaluation"]
    if algorithm != "sac":
        # the bundle says which class to build: replaying it as another algorithm is refused, naming the field
        wrong = wf("eval", "--model-path", out / "w02" / "model.zip", "--set", "agent.algorithm=sac", "--quiet")
        assert wrong.exit_code == 5 and "algorithm: bundle" in wrong.output


def test_unused_shared_keys_are_listed_once_in_the_summary(tiny_config, tiny_windows, tmp_path):
    out = tmp_path / "crossq"
    res = wf(
        "run",
        "--config",
        tiny_config,
        "--windows",
        tiny_windows,
        "--output-dir",
        out,
        "--no-report",
        "--set",
        "agent.algorithm=crossq",
        "--set",
        "sac.tau=0.01",
        "--timesteps",
        "120",
    )
    assert res.exit_code == 0, res.output
    warnings = [w for w in strict_json(out / "summary.json")["warnings"] if "does not use" in w]
    assert len(warnings) == 1 and "sac.tau=0.01" in warnings[0]
    assert (
        wf(
            "run", "--config", tiny_config, "--windows", tiny_windows, "--dry-run", "--set", "agent.tqc.n_quantiles=0"
        ).exit_code
        == 2
    )


def test_algorithms_side_by_side_in_compare(tiny_config, tiny_windows, tmp_path):
    for algorithm in ("sac", "tqc"):
        res = wf(
            "run",
            "--config",
            tiny_config,
            "--windows",
            tiny_windows,
            "--output-dir",
            tmp_path / algorithm,
            "--quiet",
            "--no-report",
            "--set",
            f"agent.algorithm={algorithm}",
            "--timesteps",
            "120",
        )
        assert res.exit_code == 0, res.output
    res = wf("compare", tmp_path / "sac", tmp_path / "tqc", "--json")
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert {r["path"].split("/")[-1] for r in rows} == {"sac", "tqc"}
    assert all(r.get("oos_sharpe") is not None for r in rows)
