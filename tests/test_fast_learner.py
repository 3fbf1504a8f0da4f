"""FastSAC's lean update against SB3's own SAC.train: same losses, same new weights (issue 25)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

OBS = 12


class _Env(gym.Env):
    observation_space = spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(OBS, np.float32), {}

    def step(self, action):  # pragma: no cover - never stepped here
        return np.zeros(OBS, np.float32), 0.0, False, False, {}


def _pair(**kwargs):
    from stable_baselines3 import SAC

    from backend.training.fast_sac import FastSAC

    common = dict(policy_kwargs={"net_arch": [32, 32]}, buffer_size=2000, learning_starts=0, seed=3, device="cpu")
    common.update(kwargs)
    ref, fast = SAC("MlpPolicy", _Env(), **common), FastSAC("MlpPolicy", _Env(), **common)
    fast.policy.load_state_dict(ref.policy.state_dict())
    if ref.log_ent_coef is not None:
        with th.no_grad():
            fast.log_ent_coef.copy_(ref.log_ent_coef)
    rng = np.random.default_rng(0)
    for _ in range(600):  # the same transitions in both buffers
        obs, nxt = rng.normal(size=(1, OBS)).astype(np.float32), rng.normal(size=(1, OBS)).astype(np.float32)
        act = rng.uniform(-1, 1, (1, 1)).astype(np.float32)
        rew, done = rng.normal(size=1).astype(np.float32), rng.random(1) < 0.05
        for m in (ref, fast):
            m.replay_buffer.add(obs, nxt, act, rew, done, [{}])
    return ref, fast


def _update(model, steps: int, batch: int) -> dict[str, float]:
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(None, []))
    np.random.seed(11)  # the replay buffer samples with np.random
    th.manual_seed(11)  # the actor's Gaussian draws
    model.train(gradient_steps=steps, batch_size=batch)
    return dict(model.logger.name_to_value)


def _assert_same(ref, fast, logged_ref, logged_fast, tol: float = 1e-6) -> None:
    assert set(logged_ref) == set(logged_fast)
    for key, value in logged_ref.items():
        assert logged_fast[key] == pytest.approx(value, rel=tol, abs=tol), key
    for (name, a), b in zip(ref.policy.state_dict().items(), fast.policy.state_dict().values(), strict=True):
        assert th.allclose(a, b, rtol=tol, atol=tol), name
    if ref.log_ent_coef is not None:
        assert th.allclose(ref.log_ent_coef, fast.log_ent_coef, rtol=tol, atol=tol)


@pytest.mark.parametrize("ent_coef", ["auto", 0.1])
def test_one_update_equals_sb3(ent_coef):
    ref, fast = _pair(ent_coef=ent_coef)
    logged_ref, logged_fast = _update(ref, 1, 64), _update(fast, 1, 64)
    _assert_same(ref, fast, logged_ref, logged_fast)


def test_several_updates_and_target_interval_equal_sb3():
    ref, fast = _pair(target_update_interval=2, tau=0.01)
    logged_ref, logged_fast = _update(ref, 5, 64), _update(fast, 5, 64)
    _assert_same(ref, fast, logged_ref, logged_fast)


def test_different_batch_differs():
    """Negative control: the comparison sees a different update."""
    ref, fast = _pair()
    _update(ref, 1, 64)
    _update(fast, 1, 32)
    diffs = [
        not th.allclose(a, b, rtol=1e-6, atol=1e-6)
        for a, b in zip(ref.policy.state_dict().values(), fast.policy.state_dict().values(), strict=True)
    ]
    assert any(diffs)


def test_fast_sac_is_an_sb3_sac_and_saves_as_one(tmp_path):
    from stable_baselines3 import SAC

    _, fast = _pair()
    assert isinstance(fast, SAC)
    fast.save(tmp_path / "m.zip")
    loaded = SAC.load(tmp_path / "m.zip", device="cpu")
    obs = np.ones(OBS, np.float32)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], fast.predict(obs, deterministic=True)[0])


def test_a_saved_fast_sac_holds_the_same_data_keys_as_sb3s(tmp_path):
    """The per-update tensor views are not saved: model.zip's data equals plain SAC's key for key, so two
    identical trainings give identical bundles (the audit compares them byte for byte)."""
    import zipfile

    ref, fast = _pair()
    for m in (ref, fast):
        _update(m, 2, 64)
    keys = []
    for name, m in (("ref", ref), ("fast", fast)):
        m.save(tmp_path / f"{name}.zip")
        with zipfile.ZipFile(tmp_path / f"{name}.zip") as z:
            import json

            keys.append(set(json.loads(z.read("data"))))
    assert keys[0] == keys[1]
    assert "_critic_params" not in keys[1]
