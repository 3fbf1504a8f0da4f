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


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"agent": {"algorithm": "crossq", "crossq": {"n_critics": 10}}}, False),
        ({"agent": {"algorithm": "crossq", "crossq": {"batch_norm": False}}}, False),
        ({"agent": {"algorithm": "td3", "td3": {"policy_delay": 1}}}, False),
        ({"agent": {"algorithm": "tqc", "tqc": {"n_quantiles": 100}}}, False),
        ({"training": {"device": "cuda"}}, False),
        ({"sac": {"ent_coef": 0.1}}, False),
        ({"sac": {"learning_rate": 1e-4, "gamma": 0.9, "tau": 0.01}}, True),  # a sweep's usual knobs: one measurement
    ],
)
def test_the_key_holds_every_setting_that_changes_a_steps_cost(change, same):
    def key(extra):
        base = {"agent": {"backend": "auto"}}
        algo = extra.get("agent", {}).get("algorithm")
        if algo:  # the algorithm's default settings, then the change
            base = {"agent": {"backend": "auto", "algorithm": algo}}
        merged = {k: {**base.get(k, {}), **extra.get(k, {})} for k in {*base, *extra}}
        return ab.choice_key(tiny_cfg(**merged), OBS, 1)

    algo = change.get("agent", {}).get("algorithm")
    reference = key({"agent": {"algorithm": algo}} if algo else {})
    assert (key(change) == reference) is same


def test_the_key_tells_apart_machines_of_one_model_string(monkeypatch):
    from backend.core import machine

    monkeypatch.setattr(machine, "cpu_model", lambda: "AMD EPYC")
    monkeypatch.setattr(machine, "vector_isa", lambda: ["avx", "avx2", "fma"])
    avx2 = ab.choice_key(_auto(), OBS, 1)
    monkeypatch.setattr(machine, "vector_isa", lambda: ["avx", "avx2", "avx512f", "fma"])
    assert ab.choice_key(_auto(), OBS, 1) != avx2


def test_a_lock_file_link_leaving_the_cache_is_exit_2_and_nothing_is_created(tmp_path):
    from backend.core.errors import FolderError

    folder = ab.cache_dir()
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    digest = ab._key_hash(ab.choice_key(_auto(), OBS, 1))
    (folder / f"{digest}.lock").symlink_to(outside / "victim.lock")
    with pytest.raises(FolderError, match="lock file is a symbolic link"):
        ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, []))
    assert list(outside.iterdir()) == []


def test_an_entry_link_is_not_followed_but_replaced(monkeypatch, tmp_path):
    calls: list = []
    record = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    entry = open(record["cache_entry"]).read()
    outside = tmp_path / "planted.json"
    outside.write_text(entry.replace('"sbx": 20.0', '"sbx": 30.0'))
    ab.Path(record["cache_entry"]).unlink()
    ab.Path(record["cache_entry"]).symlink_to(outside)
    monkeypatch.setattr(ab, "_CHOSEN", {})
    again = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    assert len(calls) == 2 and not again["cached"]  # measured, not read through the link
    assert not ab.Path(record["cache_entry"]).is_symlink() and "30.0" in outside.read_text()


@pytest.mark.parametrize("unusable", ["a_file", "lock_is_a_folder", "read_only"])
def test_an_unusable_cache_is_a_warning_and_a_measurement_in_the_process(monkeypatch, tmp_path, capsys, unusable):
    cache = tmp_path / "cache"
    if unusable == "a_file":
        cache.write_text("x")
    elif unusable == "lock_is_a_folder":
        digest = ab._key_hash(ab.choice_key(_auto(), OBS, 1))
        (cache / "backend_choice" / f"{digest}.lock").mkdir(parents=True)
    else:
        (cache / "backend_choice").mkdir(parents=True)
        (cache / "backend_choice").chmod(0o500)
        import os

        if os.access(cache / "backend_choice", os.W_OK):  # root ignores the mode
            pytest.skip("running as root: a read-only folder stays writable")
    calls: list = []
    record = ab.choice(_auto(), OBS, measure=_forced({"sb3": 10.0, "sbx": 20.0}, calls))
    assert record["chosen"] == "sbx" and calls and record["cache_entry"] is None
    assert "backend choice cache" in capsys.readouterr().err


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
