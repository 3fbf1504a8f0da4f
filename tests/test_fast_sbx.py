"""FastSBXSAC against sbx.SAC: trained side by side from one seed, every action, loss and weight equal (issue 25)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("sbx")

OBS = 10


class _Env(gym.Env):
    """Random observations from the env's own seeded stream; the reward depends on the action (so it learns)."""

    observation_space = spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, episode: int = 25) -> None:
        self.episode, self.rng = episode, np.random.default_rng(5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.obs = self.rng.normal(size=OBS).astype(np.float32)
        return self.obs, {}

    def step(self, action):
        self.t += 1
        reward = float(self.obs[0] * action[0] - 0.1 * abs(action[0]))
        self.obs = self.rng.normal(size=OBS).astype(np.float32)
        return self.obs, reward, self.t % 40 == 0, self.t >= self.episode, {}


def _train(cls, steps: int = 400, **kwargs):
    from stable_baselines3.common.logger import configure

    from backend.training.threads import configure_worker

    configure_worker("sbx", threads=1, device="cpu")
    common = dict(policy_kwargs={"net_arch": [16, 16]}, buffer_size=1000, learning_starts=60, batch_size=32, seed=7)
    model = cls("MlpPolicy", _Env(), **(common | kwargs))
    model.set_logger(configure(None, []))
    actions: list[np.ndarray] = []
    original = model.predict

    def recording_predict(*args, **kw):
        out = original(*args, **kw)
        actions.append(np.array(out[0], copy=True))
        return out

    model.predict = recording_predict
    model.learn(steps)
    return model, np.concatenate(actions), dict(model.logger.name_to_value)


def _leaves(model) -> list[np.ndarray]:
    import jax

    states = (model.policy.actor_state, model.policy.qf_state, model.ent_coef_state)
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(states))]


@pytest.mark.parametrize("kwargs", [{}, {"ent_coef": 0.05}, {"train_freq": 4, "gradient_steps": 4, "policy_delay": 2}])
def test_training_bit_identical_to_sbx(kwargs):
    from sbx import SAC

    from backend.training.fast_sbx import FastSBXSAC

    ref, ref_actions, ref_logged = _train(SAC, **kwargs)
    fast, fast_actions, fast_logged = _train(FastSBXSAC, **kwargs)
    assert len(ref_actions) == len(fast_actions) > 300
    np.testing.assert_array_equal(ref_actions, fast_actions)
    assert ref_logged == fast_logged  # losses, ent_coef, learning rates, n_updates: the same floats
    for a, b in zip(_leaves(ref), _leaves(fast), strict=True):
        np.testing.assert_array_equal(a, b)
    obs = np.random.default_rng(1).normal(size=(8, OBS)).astype(np.float32)
    np.testing.assert_array_equal(ref.predict(obs, deterministic=True)[0], fast.predict(obs, deterministic=True)[0])


def test_numpy_batch_draws_what_sb3_sample_draws():
    from stable_baselines3.common.buffers import ReplayBuffer

    from backend.training.fast_sbx import numpy_batch

    buffer = ReplayBuffer(50, spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (1,), np.float32))
    rng = np.random.default_rng(0)
    for k in range(70):  # wraps: the buffer is full
        buffer.add(
            rng.normal(size=(1, 3)),
            rng.normal(size=(1, 3)),
            rng.uniform(-1, 1, (1, 1)),
            rng.normal(size=1),
            np.array([k % 9 == 0]),
            [{"TimeLimit.truncated": k % 18 == 0}],
        )
    np.random.seed(3)
    ref = buffer.sample(64)
    after_ref = np.random.random()
    np.random.seed(3)
    ours = numpy_batch(buffer, 64, 0.97)
    after_ours = np.random.random()
    assert after_ref == after_ours  # the same draws consumed
    assert ours is not None
    np.testing.assert_array_equal(ours.observations, ref.observations.numpy())
    np.testing.assert_array_equal(ours.actions, ref.actions.numpy())
    np.testing.assert_array_equal(ours.next_observations, ref.next_observations.numpy())
    np.testing.assert_array_equal(ours.dones, ref.dones.numpy().flatten())
    np.testing.assert_array_equal(ours.rewards, ref.rewards.numpy().flatten())
    assert ours.dones.any() and ours.discounts.dtype == np.float32 and (ours.discounts == np.float32(0.97)).all()


def test_buffers_it_cannot_reproduce_fall_back():
    from stable_baselines3.common.buffers import ReplayBuffer

    from backend.training.fast_sbx import numpy_batch

    space = spaces.Box(-1, 1, (3,), np.float32)
    memory_saving = ReplayBuffer(10, space, space, optimize_memory_usage=True, handle_timeout_termination=False)
    assert numpy_batch(memory_saving, 4, 0.99) is None

    class Subclass(ReplayBuffer):
        pass

    assert numpy_batch(Subclass(10, space, space), 4, 0.99) is None
