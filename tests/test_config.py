import json
from pathlib import Path

import pytest

from backend.config.models import DEFAULT_CONFIG, Config, config_hash, load_config
from backend.core.errors import InputError

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # the earlier harness's example files
ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, obj, name="c.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_default_and_example_configs_validate():
    assert load_config(DEFAULT_CONFIG).config.training.total_timesteps > 0
    for p in sorted((ROOT / "tmp").glob("mini_config_*.json")):
        cfg = load_config(p).config
        assert cfg.training.total_timesteps <= 25_000, p


def test_mini_variants_differ_from_v1_only_in_their_name():
    base = json.loads((ROOT / "tmp" / "mini_config_v1_default.json").read_text())
    expected = {
        "v2_low_lr": ("sac", "learning_rate"),
        "v3_low_entropy": ("sac", "ent_coef"),
        "v4_high_gamma": ("sac", "gamma"),
        "v5_return_reward": ("env", "reward"),
    }
    for name, (section, key) in expected.items():
        other = json.loads((ROOT / "tmp" / f"mini_config_{name}.json").read_text())
        diffs = [(s, k) for s in base for k in base[s] if base[s][k] != other[s][k]]
        assert diffs == [(section, key)], name


def test_unknown_key_names_path_and_suggests(tmp_path):
    p = write(tmp_path, {"sac": {"learning_rat": 0.001}})
    with pytest.raises(InputError) as e:
        load_config(p)
    msg = str(e.value)
    assert "sac.learning_rat" in msg and "did you mean 'sac.learning_rate'" in msg and str(p) in msg


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"training": {"total_timesteps": 0}}, "training.total_timesteps"),
        ({"training": {"total_timesteps": True}}, "training.total_timesteps"),
        ({"sac": {"gamma": 1.5}}, "sac.gamma"),
        ({"sac": {"tau": 0}}, "sac.tau"),
        ({"sac": {"batch_size": 512, "buffer_size": 100}}, "batch_size"),
        ({"sac": {"learning_starts": 5000}, "training": {"total_timesteps": 1000}}, "learning_starts"),
        ({"env": {"lookback": "32"}}, "env.lookback"),
        ({"env": {"reward": "sharpe"}}, "env.reward"),
        ({"sac": {"ent_coef": "auto_x"}}, "ent_coef"),
    ],
)
def test_bad_values_are_input_errors(tmp_path, obj, needle):
    with pytest.raises(InputError, match=needle):
        load_config(write(tmp_path, obj))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"sac": {"gamma": NaN}}', "NaN"),
        ('{"sac": {"gamma": 0.9, "gamma": 0.8}}', "duplicate key"),
        ('{"sac": ', "malformed JSON at line 1"),
        ('{"sac": {"gamma": Infinity}}', "Infinity"),
    ],
)
def test_strict_json(tmp_path, text, needle):
    with pytest.raises(InputError, match=needle):
        load_config(write(tmp_path, text))


def test_overrides_and_hash(tmp_path):
    p = write(tmp_path, {})
    a = load_config(p, overrides=["sac.learning_rate=0.001", 'env.features=["ret_1"]', "env.reward=dsr"]).config
    assert a.sac.learning_rate == 0.001 and a.env.features == ["ret_1"] and a.env.reward == "dsr"
    b = load_config(p).config
    assert config_hash(a) != config_hash(b)
    assert config_hash(b) == config_hash(Config())
    with pytest.raises(InputError, match=r"sac\.learnin_rate"):
        load_config(p, overrides=["sac.learnin_rate=0.1"])
    with pytest.raises(InputError, match=r"key\.path=value"):
        load_config(p, overrides=["sac.learning_rate"])


def test_legacy_config_maps_and_reports_unmapped():
    legacy = FIXTURES / "legacy_config.json"
    loaded = load_config(legacy)
    cfg = loaded.config
    assert cfg.data.symbol == "SPY" and cfg.data.interval == "15m"
    assert cfg.training.total_timesteps == 20000 and cfg.training.seed == 7
    assert cfg.env.reward == "dsr" and cfg.env.initial_capital == 50000 and cfg.env.forced_exit_minutes == 375.0
    assert cfg.env.costs.commission_per_share == 0.0035 and cfg.env.costs.commission_min == 1.0
    assert cfg.env.costs.slippage_buy_bps == 5.0 and cfg.env.dsr.decay == 0.95 and cfg.env.dsr.warmup_steps == 100
    assert cfg.evaluation.gates.min_trades == 10 and cfg.evaluation.gates.max_drawdown == pytest.approx(0.15)
    assert cfg.sac.learning_rate == 0.0001 and cfg.sac.learning_starts == 1000
    assert cfg.data.start.isoformat() == "2019-01-02"
    assert cfg.data.benchmark_symbol == "IWM"
    assert loaded.legacy and loaded.unmapped == [] and loaded.warnings == []


def test_legacy_unknown_keys_are_listed_once_never_dropped(tmp_path):
    raw = json.loads((FIXTURES / "legacy_config.json").read_text())
    raw["training_settings"]["use_gpu_magic"] = True
    raw["training_settings"]["commission"] = {"per_share": 0.01, "rebate": 0.1}
    raw["ppo_settings"] = {"clip": 0.2}
    loaded = load_config(write(tmp_path, raw))
    assert sorted(loaded.unmapped) == [
        "ppo_settings",
        "training_settings.commission.rebate",
        "training_settings.use_gpu_magic",
    ]
    assert len(loaded.warnings) == 1 and all(k in loaded.warnings[0] for k in loaded.unmapped)


def test_legacy_rejects_non_sac(tmp_path):
    with pytest.raises(InputError, match="only SAC"):
        load_config(write(tmp_path, {"agent_type": "PPO", "training_settings": {}}))
