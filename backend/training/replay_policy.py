"""The replay policy (bit-identical to predict), seeding and non-finite parameter checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend.training.model_classes import identify
from backend.training.weights import _jax_states

# ------------------------------------------------------------------------------------------ replay


def make_policy(model: Any, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``act(obs) -> action`` for one observation, bit-identical to ``model.predict(obs, deterministic)``.

    It skips predict's per-call checks and conversions but runs the same computation: the
    policy's ``_predict`` (torch under no_grad in eval mode, which batch norm needs; JAX's jitted
    actor) and the same clip / ``unscale_action``. Stochastic actions draw from the same RNG
    as predict (torch's global generator; the SBX policy's noise key), so
    :func:`seed_everything` makes them repeat.
    """
    _, backend = identify(model)
    policy = model.policy
    shape = policy.action_space.shape
    squash = policy.squash_output
    low, high = policy.action_space.low, policy.action_space.high

    if backend == "sbx":

        def act_jax(obs: np.ndarray) -> np.ndarray:
            a = np.array(policy._predict(obs.reshape((1, *obs.shape)), deterministic=deterministic))
            a = a.reshape((-1, *shape))
            a = policy.unscale_action(np.clip(a, -1, 1)) if squash else np.clip(a, low, high)
            return a[0]

        return act_jax

    import torch

    policy.set_training_mode(False)
    device = policy.device

    def act_torch(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            a = policy._predict(torch.as_tensor(obs[None], dtype=torch.float32, device=device), deterministic)
        a = a.cpu().numpy().reshape((-1, *shape))
        a = policy.unscale_action(a) if squash else np.clip(a, low, high)
        return a[0]

    return act_torch


def seed_everything(model: Any, seed: int) -> None:
    """Seed Python, NumPy, torch, the model's spaces and env, and (sbx) the policy's noise key."""
    model.set_random_seed(seed)
    if identify(model)[1] == "sbx":
        import jax

        model.policy.key = jax.random.PRNGKey(seed)


def non_finite_parameters(model: Any) -> list[str]:
    """Names of weights (and batch-norm statistics) holding NaN or inf; empty when all are finite."""
    if identify(model)[1] == "sbx":
        from flax import serialization

        bad = []
        for key, state in _jax_states(model).items():
            tree = serialization.to_state_dict(state)
            for part in ("params", "target_params", "batch_stats"):
                bad.extend(_non_finite_leaves(tree.get(part), f"{key}.{part}"))
        return bad
    import torch

    named = [*model.policy.named_parameters(), *model.policy.named_buffers()]
    named += [(k, getattr(model, k)) for k in model._get_torch_save_params()[1] if "." not in k]
    return [n for n, t in named if torch.is_floating_point(t) and not bool(torch.isfinite(t).all())]


def _non_finite_leaves(tree: Any, where: str) -> list[str]:
    if isinstance(tree, dict):
        return [b for k, v in tree.items() for b in _non_finite_leaves(v, f"{where}.{k}")]
    if tree is None:
        return []
    arr = np.asarray(tree)
    return [where] if arr.dtype.kind == "f" and not np.isfinite(arr).all() else []
