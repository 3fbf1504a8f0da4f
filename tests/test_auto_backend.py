"""agent.backend: auto — the faster backend by a cached measurement; bundles record it, replay uses it (issue 25)."""

from __future__ import annotations

import json

import pytest

from backend.training import auto_backend as ab
from tests.conftest import tiny_cfg
from tests.helpers import strict_json, wf

pytest.importorskip("sbx")
OBS = 4 * 4 + 3  # tiny config: lookback 4 × 4 features + 3 state values


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ab, "_CHOSEN", {})


def _auto():
    return tiny_cfg(agent={"backend": "auto"})


def _forced(figures: dict[str, float], calls: list):
    def measure(cfg, obs_dim, act_dim, candidates):
        calls.append(candidates)
        return dict(figures)

    return measure


@pytest.mark.parametrize(
    ("figures", "want"), [({"sb3": 10.0, "sbx": 20.0}, "sbx"), ({"sb3": 30.0, "sbx": 20.0}, "sb3")]
)
def test_auto_picks_the_faster(figures, want):
    calls: list = []
    record = ab.choice(_auto(), OBS, measure=_forced(figures, calls))
    assert record["chosen"] == want and record["requested"] == "auto" and not record["cached"]
    assert record["steps_per_second"] == figures and calls == [("sb3", "sbx")]
    assert ab.resolve(_auto(), OBS).agent.backend == want


def test_cache_hit_skips_measuring(monkeypatch):
    calls: list = []
    first = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    monkeypatch.setattr(ab, "_CHOSEN", {})  # a new worker process: only the disk cache is left
    second = ab.choice(_auto(), OBS, measure=_forced({"sb3": 99.0, "sbx": 1.0}, calls))
    assert len(calls) == 1 and second["cached"] and second["chosen"] == first["chosen"] == "sbx"
    other = ab.choice(
        tiny_cfg(agent={"backend": "auto"}, sac={"net_arch": [16]}),
        OBS,
        measure=_forced({"sb3": 5.0, "sbx": 1.0}, calls),
    )
    assert len(calls) == 2 and other["chosen"] == "sb3"  # another network is another key


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json",
        b"\xff\xfe\x00",
        json.dumps({"key": "x", "chosen": "sbx", "steps_per_second": {"sb3": 1, "sbx": 2}}).encode(),
        b"[" * 100_000,
        b"{}",
    ],
)
def test_corrupt_or_foreign_cache_entry_is_measured_again(monkeypatch, garbage):
    calls: list = []
    record = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    path = record["cache_entry"]
    with open(path, "wb") as fh:
        fh.write(garbage)
    monkeypatch.setattr(ab, "_CHOSEN", {})
    again = ab.choice(_auto(), OBS, measure=_forced({"sb3": 30.0, "sbx": 20.0}, calls))
    assert len(calls) == 2 and again["chosen"] == "sb3" and not again["cached"]


def test_tampered_figures_are_not_trusted(monkeypatch):
    calls: list = []
    record = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    entry = json.loads(open(record["cache_entry"]).read())
    for bad in ({"sb3": 10.0, "sbx": float("nan")}, {"sb3": -1, "sbx": 2}, {"sb3": True, "sbx": 2}, {"sbx": 2}):
        entry["steps_per_second"] = bad
        with open(record["cache_entry"], "w") as fh:
            fh.write(json.dumps(entry))
        monkeypatch.setattr(ab, "_CHOSEN", {})
        ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    entry["steps_per_second"], entry["chosen"] = {"sb3": 10.0, "sbx": 20.0}, "sb3"  # not the faster one
    with open(record["cache_entry"], "w") as fh:
        fh.write(json.dumps(entry))
    monkeypatch.setattr(ab, "_CHOSEN", {})
    ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    assert len(calls) == 6


def test_backends_that_cannot_train_the_config_are_not_candidates():
    cfg = tiny_cfg(agent={"backend": "auto"}, sac={"use_sde": True})
    assert ab.usable_backends(cfg) == ("sb3",)
    assert ab.choice(cfg, OBS, measure=lambda *a: pytest.fail("nothing to measure"))["chosen"] == "sb3"


def _seed_cache(chosen: str) -> None:
    """The cache entry a measurement would write, choosing ``chosen`` (the run's workers read it)."""
    other = "sb3" if chosen == "sbx" else "sbx"
    ab.choice(_auto(), OBS, measure=_forced({chosen: 20.0, other: 10.0}, []))


def test_auto_trained_bundle_records_and_replays_with_its_backend(tiny_config, tiny_windows, tmp_path, monkeypatch):
    """A real (shortened) measurement in the run's worker; then replay while the cache says the other backend."""
    monkeypatch.setattr(ab, "TIMED_STEPS", 20)
    monkeypatch.setattr(ab, "WARMUP_STEPS", 8)
    out = tmp_path / "run"
    args = ["--windows", tiny_windows, "--output-dir", out, "--quiet", "--no-report", "--set", "agent.backend=auto"]
    res = wf("run", "--config", tiny_config, *args)
    assert res.exit_code == 0, res.output
    summary = strict_json(out / "summary.json")
    meta = strict_json(out / "w02" / "metadata.json")
    record = meta["compatibility"]["backend_choice"]
    chosen = meta["compatibility"]["backend"]
    assert summary["backend"] == "auto" and record["requested"] == "auto" and record["chosen"] == chosen
    assert [w["training"]["backend"] for w in summary["windows"]] == [chosen, chosen]
    assert summary["windows"][1]["training"]["backend_choice"] == record
    assert set(record["steps_per_second"]) == {"sb3", "sbx"} and all(v > 0 for v in record["steps_per_second"].values())
    assert chosen == max(record["steps_per_second"], key=record["steps_per_second"].get)
    assert strict_json(out / "w01" / "metadata.json")["compatibility"]["backend"] == chosen  # measured once
    assert "jax" in meta["libraries"]
    monkeypatch.setattr(ab, "_CHOSEN", {})
    for entry in ab.cache_dir().glob("*.json"):
        entry.unlink()
    other = "sb3" if chosen == "sbx" else "sbx"
    ab.choice(_auto(), OBS, measure=_forced({other: 99.0, chosen: 1.0}, []))  # the machine now prefers the other
    assert ab.resolve(_auto(), OBS).agent.backend == other
    rep = wf("eval", "--model-path", out / "w02" / "model.zip", "--output-dir", tmp_path / "r", "--quiet")
    assert rep.exit_code == 0, rep.output
    assert strict_json(tmp_path / "r" / "evaluation.json")["evaluation"] == summary["windows"][1]["evaluation"]
