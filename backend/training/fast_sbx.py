"""SBX's SAC with less host-side work per step: the same jitted update, the same random draws, bit for bit.

On a CPU, SBX's jitted SAC update runs close to the machine's matmul floor; what keeps ``learn`` below it
is the host-side Python around the update, once per environment step (measured with cProfile on the
harness's null env, [128,128], batch 256: ≈ 1.1 ms of a ≈ 4.4 ms step). :class:`FastSBXSAC` removes the
three largest pieces without touching what is computed:

1. **Exploration sampling in one jitted call.** ``SACPolicy._predict`` splits the policy's key eagerly
   (``jax.random.split`` outside ``jit``: ≈ 0.4 ms of dispatch) and then calls the jitted sampler.
   :func:`_split_and_sample` does the split and the sample in one compiled call and returns the same two
   keys and the same action (threefry splitting is integer arithmetic: the keys are the same bits).
2. **The replay batch as NumPy.** SB3's ``ReplayBuffer.sample`` copies the batch into torch tensors and
   ``SAC.train`` copies them back to NumPy. :func:`numpy_batch` draws the same indices with the same
   ``np.random`` calls in the same order and slices the buffer's arrays directly.
3. **One transfer of the logged losses.** ``SAC.train`` calls ``.item()`` on four device arrays (four
   synchronisations); here one ``jax.device_get`` brings the four values back together.

The update itself is SBX's own ``SAC._train`` (same arguments, same jit). Anything this path does not
reproduce exactly falls back to SBX's ``train``/``_predict``: gSDE, a dict observation space, n-step or
HER buffers, ``optimize_memory_usage``, a ``VecNormalize`` env. The saved model is an SBX SAC model
(``identify`` names it ``sac``/``sbx``; bundles load it with this class). ``tests/test_fast_sbx.py`` trains
this class and ``sbx.SAC`` side by side from one seed and checks every action, loss and final weight equal.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import numpy as np
from sbx import SAC
from sbx.common.type_aliases import ReplayBufferSamplesNp
from sbx.sac.policies import SACPolicy
from stable_baselines3.common.buffers import ReplayBuffer

_LOSS_KEYS = ("actor_loss", "critic_loss", "ent_coef_loss", "ent_coef")


@jax.jit
def _split_and_sample(actor_state: Any, observations: jax.Array, key: jax.Array) -> tuple[Any, Any, Any]:
    """``SACPolicy.reset_noise`` then ``BaseJaxPolicy.sample_action``, compiled together: (key, noise key, action)."""
    key, noise_key = jax.random.split(key, 2)
    dist = actor_state.apply_fn(actor_state.params, observations)
    return key, noise_key, dist.sample(seed=noise_key)


class FastSACPolicy(SACPolicy):
    """``sbx.sac.policies.SACPolicy`` whose stochastic ``_predict`` is one compiled call (same keys, same action)."""

    def _predict(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:  # type: ignore[override]
        if deterministic or self.use_sde:  # the deterministic mode and gSDE's fixed noise: SBX's own path
            return super()._predict(observation, deterministic=deterministic)
        self.key, self.noise_key, action = _split_and_sample(self.actor_state, observation, self.key)
        return action


def numpy_batch(buffer: ReplayBuffer, n: int, gamma: float) -> ReplayBufferSamplesNp | None:
    """``n`` transitions as SBX's NumPy samples, drawn exactly as ``ReplayBuffer.sample`` draws them.

    None where the buffer is not a plain ``ReplayBuffer`` keeping next observations apart (the caller then
    uses SB3's sampler). The two ``np.random.randint`` calls are SB3's, in SB3's order, so the global NumPy
    stream (and every later draw) is the same as through ``ReplayBuffer.sample``.
    """
    if type(buffer) is not ReplayBuffer or buffer.optimize_memory_usage:
        return None
    upper = buffer.buffer_size if buffer.full else buffer.pos
    rows = np.random.randint(0, upper, size=n)  # BaseBuffer.sample
    envs = np.random.randint(0, high=buffer.n_envs, size=(len(rows),))  # ReplayBuffer._get_samples
    dones = buffer.dones[rows, envs] * (1 - buffer.timeouts[rows, envs])
    return ReplayBufferSamplesNp(
        buffer.observations[rows, envs, :],
        buffer.actions[rows, envs, :],
        buffer.next_observations[rows, envs, :],
        dones.reshape(-1),
        buffer.rewards[rows, envs].reshape(-1),
        np.full((n,), gamma, dtype=np.float32),
    )


class FastSBXSAC(SAC):
    """``sbx.SAC`` with less host-side work per step (see the module docstring); same update, same draws."""

    policy_aliases: ClassVar[dict[str, type[SACPolicy]]] = {
        **SAC.policy_aliases,
        "MlpPolicy": FastSACPolicy,
    }

    def _batch(self, n: int) -> ReplayBufferSamplesNp | None:
        if self._vec_normalize_env is not None or self.replay_buffer is None:
            return None
        return numpy_batch(self.replay_buffer, n, float(self.gamma))

    def train(self, gradient_steps: int, batch_size: int) -> None:
        data = self._batch(batch_size * gradient_steps)
        if data is None:  # a buffer or env this path does not reproduce: SBX's own train
            super().train(gradient_steps, batch_size)
            return
        self._update_learning_rate(
            self.policy.actor_state.opt_state,
            learning_rate=self.lr_schedule(self._current_progress_remaining),
            name="learning_rate_actor",
        )
        self._update_learning_rate(
            self.policy.qf_state.opt_state,
            learning_rate=self.initial_qf_learning_rate or self.lr_schedule(self._current_progress_remaining),
            name="learning_rate_critic",
        )
        self._maybe_reset_params()
        (self.policy.qf_state, self.policy.actor_state, self.ent_coef_state, self.key, losses) = self._train(
            self.tau,
            self.target_entropy,
            gradient_steps,
            data,
            self.policy_delay,
            (self._n_updates + 1) % self.policy_delay,
            self.policy.qf_state,
            self.policy.actor_state,
            self.ent_coef_state,
            self.key,
        )
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for name, value in zip(_LOSS_KEYS, jax.device_get(losses), strict=True):
            self.logger.record(f"train/{name}", float(value))
