"""backend.training.algorithms: registry, config mapping, safe weights, fast policy, determinism.

Every algorithm × backend trains once or twice on a toy env (net_arch [8], 120 steps) per
session; the SBX ones spend most of their time compiling. Safe-loading tests plant payloads
that would create a file if anything unpickled them, and prove the payloads are live by
loading them with the library's own (unsafe) ``load`` as a control.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from backend.config.models import Config, load_config
from backend.core.errors import EvaluationError, InputError, TrainingError
from backend.training import algorithms as A

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:jax.core.pytype_aval_mappings is deprecated:DeprecationWarning")
PAIRS = [(alg, backend) for backend in A.BACKENDS for alg in A.ALGORITHMS]
IDS = [f"{alg}-{backend}" for alg, backend in PAIRS]
OBS = np.random.default_rng(7).standard_normal((40, 6)).astype(np.float32)


class Toy(gym.Env):
    """Reward for matching tanh(obs[0]); 20-step episodes; all randomness from np_random."""

    observation_space = spaces.Box(-np.inf, np.inf, (6,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.obs = self.np_random.standard_normal(6).astype(np.float32)
        return self.obs, {}

    def step(self, action):
        reward = -float((action[0] - np.tanh(self.obs[0])) ** 2)
        self.t += 1
        self.obs = self.np_random.standard_normal(6).astype(np.float32)
        return self.obs, reward, False, self.t >= 20, {}


class Spaces163(gym.Env):
    """The harness's observation size with the mini configs (lookback 16 × 10 features + 3)."""

    observation_space = spaces.Box(-np.inf, np.inf, (163,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(163, np.float32), {}

    def step(self, action):  # pragma: no cover - never stepped
        raise RuntimeError


def cfg_for(algorithm: str = "sac", backend: str = "sb3", **sections) -> Config:
    raw = {
        "agent": {"algorithm": algorithm, "backend": backend},
        "sac": {"net_arch": [8], "batch_size": 16, "learning_starts": 40, "buffer_size": 1000},
        "training": {"total_timesteps": 120},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return Config.model_validate(raw)


_TRAINED: dict[tuple[str, str, int, int], object] = {}


def trained(algorithm: str, backend: str, seed: int = 0, copy: int = 0):
    """A model trained once per (pair, seed, copy) per session; copy 1 is the same-seed rerun."""
    key = (algorithm, backend, seed, copy)
    if key not in _TRAINED:
        cfg = cfg_for(algorithm, backend)
        model = A.build_model(cfg, Toy(), seed)
        model.learn(cfg.training.total_timesteps)
        _TRAINED[key] = model
    return _TRAINED[key]


def weights(model) -> dict[str, np.ndarray]:
    """Every trained number of a model (weights, batch-norm statistics, entropy coefficient)."""
    if A.identify(model)[1] == "sbx":
        from flax import serialization

        out = {}

        def walk(tree, where):
            if isinstance(tree, dict):
                for k, v in tree.items():
                    walk(v, f"{where}.{k}")
            elif tree is not None:
                out[where] = np.asarray(tree)

        for key, state in A._jax_states(model).items():
            sd = serialization.to_state_dict(state)
            for part in ("params", "target_params", "batch_stats"):
                walk(sd.get(part), f"{key}.{part}")
        return out
    out = {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}
    for name in model._get_torch_save_params()[1]:
        out[name] = getattr(model, name).detach().cpu().numpy().copy()
    return out


def same_weights(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def saved_bytes(model) -> bytes:
    buf = io.BytesIO()
    A.save_weights(model, buf)
    return buf.getvalue()


def replace_entry(data: bytes, name: str, payload: bytes) -> bytes:
    """The zip ``data`` with entry ``name`` replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item.filename))
        dst.writestr(name, payload)
    return out.getvalue()


class Payload:
    """Unpickling this runs ``exec``: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plant_in_data(data: bytes, marker: Path) -> bytes:
    """Add a cloudpickled payload to the archive's ``data`` JSON the way SB3 stores objects."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        doc = json.loads(z.read("data"))
    doc["evil"] = {
        ":type:": "<class 'object'>",
        ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode(),
    }
    return replace_entry(data, "data", json.dumps(doc).encode())


def fresh(algorithm: str, backend: str, seed: int = 123):
    return A.build_model(cfg_for(algorithm, backend), Toy(), seed, for_replay=True)


# ------------------------------------------------------------------------------------------ registry, config


def test_import_pulls_in_neither_torch_nor_jax():
    code = (
        "import sys; import backend.config.models, backend.training.algorithms as A; "
        "A.model_kwargs(backend.config.models.Config()); A.library_versions('sbx'); A.check_backend('sb3'); "
        "bad = {'torch', 'jax', 'stable_baselines3', 'sbx', 'flax'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_registry_classes_and_unknown_pairs():
    from sb3_contrib import TQC, CrossQ
    from stable_baselines3 import SAC, TD3

    from backend.training.fast_sac import FastSAC

    assert [A.model_class(a, "sb3", library=True) for a in A.ALGORITHMS] == [SAC, TQC, CrossQ, TD3]
    assert [A.model_class(a, "sb3") for a in A.ALGORITHMS] == [FastSAC, TQC, CrossQ, TD3]  # SAC's lean update
    assert issubclass(FastSAC, SAC)
    import sbx

    from backend.training.fast_sbx import FastSBXSAC

    assert [A.model_class(a, "sbx", library=True) for a in A.ALGORITHMS] == [sbx.SAC, sbx.TQC, sbx.CrossQ, sbx.TD3]
    assert [A.model_class(a, "sbx") for a in A.ALGORITHMS] == [FastSBXSAC, sbx.TQC, sbx.CrossQ, sbx.TD3]
    assert issubclass(FastSBXSAC, sbx.SAC)
    with pytest.raises(InputError, match=r"ppo.*not one of sac, tqc, crossq, td3"):
        A.model_class("ppo", "sb3")
    with pytest.raises(InputError, match=r"no 'tf' backend; set agent\.backend to one of sb3, sbx"):
        A.model_class("sac", "tf")


def test_config_names_come_from_the_registry():
    from backend.config.agent import AgentConfig

    assert AgentConfig.model_json_schema()["properties"]["algorithm"]["enum"] == list(A.ALGORITHMS)
    with pytest.raises(Exception, match=r"agent\.algorithm"):
        load_config(ROOT / "tmp" / "mini_config_v1_default.json", ["agent.algorithm=ppo"])


def test_shared_keys_reach_every_algorithm_except_the_ones_it_cannot_use():
    every = set(type(Config().sac).model_fields) - {"net_arch"}
    for alg in A.ALGORITHMS:
        kwargs, unused = A.model_kwargs(cfg_for(alg))
        assert unused == []
        assert every - set(kwargs) == set(A.SPECS[alg].unused_shared), alg
        assert kwargs["buffer_size"] == 120  # capped at total_timesteps
        assert kwargs["policy_kwargs"]["net_arch"] == [8]
        json.dumps(kwargs)  # plain values, fit for metadata
    assert set(A.SPECS["crossq"].unused_shared) == {"tau"}
    assert set(A.SPECS["td3"].unused_shared) == {"ent_coef", "target_entropy", "use_sde"}


def test_unused_keys_are_the_non_default_ones():
    cfg = cfg_for(
        "td3", sac={"use_sde": True, "ent_coef": 0.1, "target_entropy": "auto"}, agent={"tqc": {"n_quantiles": 5}}
    )
    _, unused = A.model_kwargs(cfg)
    assert unused == ["sac.ent_coef", "sac.use_sde", "agent.tqc.n_quantiles"]
    line = A.unused_warning(cfg)
    assert line.startswith("agent.algorithm=td3 ignores sac.ent_coef=0.1 (")
    assert "\n" not in line and "agent.tqc.n_quantiles=5 (read only by tqc)" in line
    assert A.model_kwargs(cfg_for("crossq", sac={"tau": 0.01}))[1] == ["sac.tau"]
    assert A.model_kwargs(cfg_for("crossq", sac={"tau": 0.005}))[1] == []  # the default, spelled out
    assert A.unused_warning(cfg_for("sac")) is None


def test_own_sections_map_to_each_library():
    k, _ = A.model_kwargs(cfg_for("tqc", agent={"tqc": {"n_quantiles": 10, "top_quantiles_to_drop_per_net": 3}}))
    assert k["top_quantiles_to_drop_per_net"] == 3 and k["policy_kwargs"]["n_quantiles"] == 10
    k, _ = A.model_kwargs(cfg_for("crossq", agent={"crossq": {"batch_norm_momentum": 0.02}}))
    assert k["policy_delay"] == 3 and k["policy_kwargs"]["batch_norm_momentum"] == 0.02
    k, _ = A.model_kwargs(
        cfg_for("crossq", "sbx", agent={"crossq": {"batch_norm_momentum": 0.02, "batch_norm": False}})
    )
    assert k["policy_kwargs"]["batch_norm_momentum"] == pytest.approx(0.98)  # flax convention
    assert k["policy_kwargs"]["batch_norm"] is False and k["policy_kwargs"]["batch_norm_actor"] is False
    k, _ = A.model_kwargs(cfg_for("td3", agent={"td3": {"policy_delay": 3, "target_policy_noise": 0.1}}))
    assert (k["policy_delay"], k["target_policy_noise"], k["target_noise_clip"]) == (3, 0.1, 0.5)
    with pytest.raises(InputError, match="exactly 2 critics"):
        A.model_kwargs(cfg_for("tqc", "sbx", agent={"tqc": {"n_critics": 3}}))
    with pytest.raises(InputError, match="SBX has no real gSDE"):
        A.model_kwargs(cfg_for("sac", "sbx", sac={"use_sde": True}))
    with pytest.raises(Exception, match="must be below"):
        cfg_for("tqc", agent={"tqc": {"n_quantiles": 2, "top_quantiles_to_drop_per_net": 2}})


def test_td3_action_noise():
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    assert A.build_model(cfg_for("td3"), Toy(), 0).action_noise is None  # the libraries' default
    model = A.build_model(cfg_for("td3", agent={"td3": {"action_noise_std": 0.1}}), Toy(), 0)
    assert isinstance(model.action_noise, NormalActionNoise) and model.action_noise._sigma.tolist() == [0.1]
    cfg = cfg_for("td3", "sbx", agent={"td3": {"action_noise_std": 0.2, "action_noise": "ornstein_uhlenbeck"}})
    assert isinstance(A.build_model(cfg, Toy(), 0).action_noise, OrnsteinUhlenbeckActionNoise)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tmp").glob("mini_config_*.json")))
@pytest.mark.parametrize("algorithm", ["tqc", "crossq"])
def test_mini_configs_run_with_another_algorithm_as_they_are(name, algorithm):
    for backend in A.BACKENDS:
        cfg = load_config(ROOT / "tmp" / name, [f"agent.algorithm={algorithm}", f"agent.backend={backend}"]).config
        assert A.model_kwargs(cfg)[1] == []
        model = A.build_model(cfg, Spaces163(), 0)
        assert A.identify(model) == (algorithm, backend)
        assert model.learning_rate == cfg.sac.learning_rate and model.batch_size == cfg.sac.batch_size


# ------------------------------------------------------------------------------------------ determinism, policy


@pytest.mark.parametrize(("algorithm", "backend"), PAIRS, ids=IDS)
def test_same_seed_same_weights(algorithm, backend):
    a, b = trained(algorithm, backend, 0, 0), trained(algorithm, backend, 0, 1)
    assert same_weights(a, b)
    assert not same_weights(a, fresh(algorithm, backend, seed=0))  # training changed the weights


@pytest.mark.parametrize("backend", A.BACKENDS)
def test_another_seed_other_weights(backend):
    assert not same_weights(trained("sac", backend, 0), trained("sac", backend, 1))


@pytest.mark.parametrize(("algorithm", "backend"), PAIRS, ids=IDS)
def test_make_policy_is_predict_bit_for_bit(algorithm, backend):
    model = trained(algorithm, backend)
    act = A.make_policy(model, deterministic=True)
    for obs in OBS:
        expected, _ = model.predict(obs, deterministic=True)
        got = act(obs)
        assert got.dtype == expected.dtype and got.shape == expected.shape == (1,)
        assert np.array_equal(got, expected)
    act = A.make_policy(model, deterministic=False)
    A.seed_everything(model, 11)
    fast = [act(obs) for obs in OBS]
    A.seed_everything(model, 11)
    slow = [model.predict(obs, deterministic=False)[0] for obs in OBS]
    assert all(np.array_equal(f, s) for f, s in zip(fast, slow, strict=True))
    A.seed_everything(model, 11)
    assert all(np.array_equal(act(obs), f) for obs, f in zip(OBS, fast, strict=True))  # a stochastic replay repeats
    if algorithm != "td3":  # TD3's actor is deterministic
        assert not all(np.array_equal(act(obs), f) for obs, f in zip(OBS, fast, strict=True))


@pytest.mark.parametrize(("algorithm", "backend"), PAIRS, ids=IDS)
def test_save_load_gives_the_same_weights_and_actions(algorithm, backend, tmp_path):
    model = trained(algorithm, backend)
    path = tmp_path / "model.zip"
    A.save_weights(model, path)
    with zipfile.ZipFile(path) as z:
        assert json.loads(z.read(A.AGENT_ENTRY))["algorithm"] == algorithm
    replay = fresh(algorithm, backend)
    assert not same_weights(model, replay)
    A.load_weights(replay, path)
    assert same_weights(model, replay)
    act, again = A.make_policy(model, True), A.make_policy(replay, True)
    assert all(np.array_equal(act(obs), again(obs)) for obs in OBS)
    # warm start: the loaded model trains on
    warm = A.build_model(cfg_for(algorithm, backend), Toy(), 3)
    A.load_weights(warm, path, error=TrainingError)
    warm.learn(60)
    assert A.non_finite_parameters(warm) == []


def test_non_finite_parameters_names_the_weight():
    import torch

    model = fresh("sac", "sb3")
    assert A.non_finite_parameters(model) == []
    with torch.no_grad():
        model.policy.actor.mu.weight[0, 0] = float("nan")
    assert A.non_finite_parameters(model) == ["actor.mu.weight"]
    model = fresh("sac", "sbx")
    assert A.non_finite_parameters(model) == []
    state = model.policy.actor_state
    params = dict(state.params)
    params["params"] = dict(params["params"])
    dense = dict(params["params"]["Dense_0"])
    dense["bias"] = dense["bias"].at[0].set(np.inf)
    params["params"]["Dense_0"] = dense
    model.policy.actor_state = state.replace(params=params)
    assert A.non_finite_parameters(model) == ["policy.actor_state.params.params.Dense_0.bias"]


# ------------------------------------------------------------------------------------------ safe loading


@pytest.mark.parametrize("backend", A.BACKENDS)
def test_a_payload_in_data_is_never_unpickled(backend, tmp_path):
    model = trained("sac", backend)
    marker = tmp_path / "pwned"
    path = tmp_path / "model.zip"
    path.write_bytes(plant_in_data(saved_bytes(model), marker))
    replay = fresh("sac", backend)
    A.load_weights(replay, path)
    assert not marker.exists()
    assert same_weights(model, replay)
    # control: the library's own load runs the payload, so it is live
    type(model).load(path, device="cpu")
    assert marker.exists()


def test_a_payload_in_a_pth_entry_is_refused(tmp_path):
    import torch

    model = trained("sac", "sb3")
    marker = tmp_path / "pwned"
    evil = io.BytesIO()
    torch.save({"actor.mu.weight": Payload(marker)}, evil)
    path = tmp_path / "model.zip"
    path.write_bytes(replace_entry(saved_bytes(model), "policy.pth", evil.getvalue()))
    with pytest.raises(EvaluationError, match=r"refused to load policy\.pth: it holds something other than tensors"):
        A.load_weights(fresh("sac", "sb3"), path)
    assert not marker.exists()
    # control: an unrestricted torch.load runs it
    with zipfile.ZipFile(path) as z:
        torch.load(io.BytesIO(z.read("policy.pth")), weights_only=False)
    assert marker.exists()


def test_a_payload_in_the_jax_weights_is_refused(tmp_path):
    import msgpack

    model = trained("sac", "sbx")
    marker = tmp_path / "pwned"
    data = saved_bytes(model)
    path = tmp_path / "model.zip"
    path.write_bytes(replace_entry(data, A.JAX_WEIGHTS_ENTRY, pickle.dumps(Payload(marker))))
    with pytest.raises(EvaluationError, match="not written by this harness or was tampered with"):
        A.load_weights(fresh("sac", "sbx"), path)
    assert not marker.exists()
    # an object array smuggled in as a flax ndarray extension: numpy refuses to build it from bytes
    inner = msgpack.packb(((1,), "O", pickle.dumps(Payload(marker))), use_bin_type=True)
    doc = {"format": 1, "algorithm": "sac", "backend": "sbx", "states": {"x": msgpack.ExtType(1, inner)}}
    path.write_bytes(replace_entry(data, A.JAX_WEIGHTS_ENTRY, msgpack.packb(doc, use_bin_type=True)))
    with pytest.raises(EvaluationError):
        A.load_weights(fresh("sac", "sbx"), path)
    assert not marker.exists()


def test_jax_weights_of_another_shape_or_type_are_refused(tmp_path):
    from flax import serialization

    model = trained("sac", "sbx")
    data = saved_bytes(model)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        doc = serialization.msgpack_restore(z.read(A.JAX_WEIGHTS_ENTRY))
    kernel = doc["states"]["policy.actor_state"]["params"]["params"]["Dense_0"]
    for bad, match in (
        (np.zeros((6, 9), np.float32), "shape"),
        (np.zeros((6, 8), np.float64), "dtype"),
        ("x", "not a number"),
    ):
        original = kernel["kernel"]
        kernel["kernel"] = bad
        path = tmp_path / "model.zip"
        path.write_bytes(replace_entry(data, A.JAX_WEIGHTS_ENTRY, serialization.msgpack_serialize(doc)))
        with pytest.raises(EvaluationError, match=f"Dense_0.kernel: .*{match}"):
            A.load_weights(fresh("sac", "sbx"), path)
        kernel["kernel"] = original


def test_weights_of_another_config_or_algorithm_are_refused(tmp_path):
    path = tmp_path / "model.zip"
    A.save_weights(trained("sac", "sb3"), path)
    wider = A.build_model(cfg_for("sac", sac={"net_arch": [16]}), Toy(), 0, for_replay=True)
    with pytest.raises(EvaluationError, match=r"do not fit a sac agent .*config\.resolved\.json"):
        A.load_weights(wider, path)
    with pytest.raises(TrainingError, match="holds a sac agent on sb3, but the config builds tqc on sb3"):
        A.load_weights(fresh("tqc", "sb3"), path, error=TrainingError)
    with pytest.raises(EvaluationError, match="holds a sac agent on sb3, but the config builds sac on sbx"):
        A.load_weights(fresh("sac", "sbx"), path)
    path.write_bytes(b"not a zip")
    with pytest.raises(EvaluationError, match=r"not a readable model\.zip"):
        A.load_weights(fresh("sac", "sb3"), path)


def test_a_plain_sb3_save_still_loads(tmp_path):
    """Bundles of the first round were SB3's own model.save (no harness_agent.json)."""
    model = trained("sac", "sb3")
    path = tmp_path / "model.zip"
    model.save(path)
    replay = fresh("sac", "sb3")
    A.load_weights(replay, path)
    assert same_weights(model, replay)  # the entropy coefficient included, which set_parameters leaves out


# ------------------------------------------------------------------------------------------ environment


def test_library_versions():
    sb3 = A.library_versions("sb3")
    assert sb3["stable-baselines3"] and sb3["torch"] and "jax" not in sb3
    assert set(A.library_versions("sbx")) >= {"sbx-rl", "jax", "jaxlib", "flax", "stable-baselines3"}


CONFIGURED_CHILD = """
import os, sys
from backend.training import algorithms as A
allowed = os.sched_getaffinity(0)
A.configure_worker("sbx", 1, "cpu")
import jax, jax.numpy as jnp, torch
assert jax.default_backend() == "cpu" and torch.get_num_threads() == 1
assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
assert os.sched_getaffinity(0) == allowed  # nothing stays pinned

def ticks():
    out = {}
    for t in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{t}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[t] = int(fields[11]) + int(fields[12])
    return out

f = jax.jit(lambda a: (a @ a).sum())
x = jnp.ones((1024, 1024))
f(x).block_until_ready()
before = ticks()
for _ in range(30):
    f(x).block_until_ready()
after = ticks()
busy = [t for t in after if after[t] - before.get(t, 0) > 3]
print(len(busy))
"""


def test_configure_worker_gives_jax_one_compute_thread():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    run = subprocess.run([sys.executable, "-c", CONFIGURED_CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "1"


@pytest.mark.slow
def test_sbx_training_repeats_across_processes():
    """Same seed, two configured processes (fresh JIT compiles each): identical SBX weights, bit for bit."""
    code = (
        "import sys, hashlib; sys.path.insert(0, 'tests'); from backend.training import algorithms as A; "
        "A.configure_worker('sbx', 1, 'cpu'); from test_algorithms import trained, weights; "
        "w = weights(trained('crossq', 'sbx')); "
        "print(hashlib.sha256(b''.join(w[k].tobytes() for k in sorted(w))).hexdigest())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    digests = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        digests.append(run.stdout.split()[-1])
    assert digests[0] == digests[1]
