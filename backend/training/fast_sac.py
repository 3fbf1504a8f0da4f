"""A lean SB3 SAC update: the same math as ``stable_baselines3.SAC.train``, less Python and autograd work.

:class:`FastSAC` is a subclass of ``stable_baselines3.SAC`` (same constructor, ``learn``, ``predict``,
``save``/``load``, logger keys, model.zip): only ``train`` differs, and only in how it computes, never in
what. Per gradient step it does what SB3 does, in SB3's order and with SB3's random draws:

1. sample a batch; actor forward on it (Gaussian sample through ``tanh``, log-prob with SB3's epsilon);
2. entropy-coefficient loss and its Adam step (when ``ent_coef='auto'``);
3. the TD target from the target critics on the next observation (no grad);
4. critic loss ``0.5 · Σ MSE`` and its Adam step;
5. actor loss ``mean(α·logπ − min Q(s, π(s)))`` and its Adam step;
6. Polyak update of the target critics every ``target_update_interval`` steps.

What it saves (measured in benchmarks/learner_candidates.py; docs/performance.md):

* no ``torch.distributions`` objects (their argument validation runs a dozen small ops per call): the
  Gaussian sample and log-prob are written out with the same ops and the same ``normal_`` draw;
* the actor loss back-propagates into the actor only: the critic's parameters are frozen for it
  (SB3 computes their gradients and throws them away at the next ``zero_grad``);
* the three Adam optimizers run multi-tensor (``foreach``) kernels instead of one loop per tensor,
  same hyperparameters, same state (``foreach`` is an implementation flag of ``torch.optim.Adam``);
* Polyak averaging is two ``torch._foreach_*`` calls instead of a Python loop over tensors;
* the losses are collected as tensors and turned into floats once per ``train`` call.

Anything this path does not reproduce exactly (gSDE) runs SB3's own ``train``. ``tests/test_fast_learner.py``
checks one update against SB3's on identical weights and batch (losses and new weights equal to 1e-6).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
SQUASH_EPS = 1e-6  # SquashedDiagGaussianDistribution's epsilon


class FastSAC(SAC):
    """``stable_baselines3.SAC`` with a lean ``train`` (same math; see the module docstring)."""

    def _excluded_save_params(self) -> list[str]:
        """The per-update views of the critic's tensors are not state: saving them would put live tensors in
        model.zip's data (and make two identical trainings' bundles differ byte for byte)."""
        return [*super()._excluded_save_params(), "_critic_params", "_target_params"]

    def _optimizers(self) -> list[th.optim.Optimizer]:
        out = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            out.append(self.ent_coef_optimizer)
        return out

    def _prepare_optimizers(self) -> None:
        """Multi-tensor Adam kernels (re-applied each call: loading a state dict resets the flag)."""
        for opt in self._optimizers():
            for group in opt.param_groups:
                if "foreach" in group and not group.get("fused"):
                    group["foreach"] = True

    def _sample_actor(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(tanh action, log-prob) as SB3's SquashedDiagGaussianDistribution computes them."""
        actor: Any = self.actor
        features = actor.extract_features(obs, actor.features_extractor)
        latent = actor.latent_pi(features)
        mean = actor.mu(latent)
        log_std = th.clamp(actor.log_std(latent), LOG_STD_MIN, LOG_STD_MAX)
        std = th.ones_like(mean) * log_std.exp()
        gauss = mean + th.empty(mean.shape, dtype=mean.dtype, device=mean.device).normal_() * std
        action = th.tanh(gauss)
        log_prob = -((gauss - mean) ** 2) / (2 * std**2) - std.log() - LOG_SQRT_2PI
        log_prob = log_prob.sum(dim=1) if log_prob.dim() > 1 else log_prob.sum()
        log_prob = log_prob - th.sum(th.log(1 - action**2 + SQUASH_EPS), dim=1)
        return action, log_prob

    def _step(self, data: Any, stats: dict[str, list[th.Tensor]]) -> None:
        """One gradient step (steps 1–5 of the module docstring)."""
        discounts = data.discounts if data.discounts is not None else self.gamma
        actions_pi, log_prob = self._sample_actor(data.observations)
        log_prob = log_prob.reshape(-1, 1)
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            ent_coef = th.exp(self.log_ent_coef.detach())
            target_entropy = float(self.target_entropy)  # a float once SB3 has set the model up
            ent_loss = -(self.log_ent_coef * (log_prob + target_entropy).detach()).mean()
            stats["ent_coef_loss"].append(ent_loss.detach())
            self.ent_coef_optimizer.zero_grad()
            ent_loss.backward()
            self.ent_coef_optimizer.step()
        else:
            ent_coef = self.ent_coef_tensor
        stats["ent_coef"].append(ent_coef.detach().reshape(()))
        with th.no_grad():
            next_actions, next_log_prob = self._sample_actor(data.next_observations)
            next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)
            next_q, _ = th.min(next_q, dim=1, keepdim=True)
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            target_q = data.rewards + (1 - data.dones) * discounts * next_q
        current_q = self.critic(data.observations, data.actions)
        critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
        assert isinstance(critic_loss, th.Tensor)
        stats["critic_loss"].append(critic_loss.detach())
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()
        critic_params = self._critic_params
        for p in critic_params:
            p.requires_grad_(False)
        try:
            q_pi = th.cat(self.critic(data.observations, actions_pi), dim=1)
            min_q_pi, _ = th.min(q_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_q_pi).mean()
            stats["actor_loss"].append(actor_loss.detach())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
        finally:
            for p in critic_params:
                p.requires_grad_(True)
        self.actor.optimizer.step()

    def _polyak(self) -> None:
        """SB3's polyak_update (target·(1−τ) + τ·param) over all tensors at once, and the BN-stat copy."""
        with th.no_grad():
            targets, params = self._target_params, self._critic_params
            th._foreach_mul_(targets, 1 - self.tau)
            th._foreach_add_(targets, params, alpha=self.tau)
            for stat, target in zip(self.batch_norm_stats, self.batch_norm_stats_target, strict=True):
                target.mul_(0.0)
                th.add(target, stat, alpha=1.0, out=target)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.use_sde:  # gSDE resamples its noise matrix: SB3's own path
            super().train(gradient_steps, batch_size)
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self._optimizers())
        self._prepare_optimizers()
        self._critic_params: list[th.Tensor] = list(self.critic.parameters())
        self._target_params: list[th.Tensor] = list(self.critic_target.parameters())
        stats: dict[str, list[th.Tensor]] = {k: [] for k in ("ent_coef", "ent_coef_loss", "actor_loss", "critic_loss")}
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            self._step(data, stats)
            if gradient_step % self.target_update_interval == 0:
                self._polyak()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key in ("ent_coef", "actor_loss", "critic_loss", "ent_coef_loss"):
            if stats[key]:
                self.logger.record(f"train/{key}", float(np.mean(th.stack(stats[key]).double().numpy())))
