"""Constructor kwargs of an agent from the config, and the settings an algorithm ignores."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.config.algorithms import (
    SPECS,
)
from backend.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from backend.config.models import Config


# ------------------------------------------------------------------------------------------ kwargs


def _number(value: Any) -> Any:
    """Library constructors want floats, never ints, where a number replaces 'auto'."""
    return value if isinstance(value, str) else float(value)


def _own_kwargs(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """(algorithm kwargs, policy kwargs) from the algorithm's own ``agent.<name>`` section."""
    agent = cfg.agent
    alg, backend = agent.algorithm, agent.backend
    if alg == "tqc":
        t = agent.tqc
        if backend == "sbx" and t.n_critics != 2:
            raise InputError(
                f"agent.tqc.n_critics = {t.n_critics}: SBX's TQC has exactly 2 critics; "
                "set agent.tqc.n_critics=2 or agent.backend=sb3"
            )
        policy = {"n_quantiles": t.n_quantiles} | ({"n_critics": t.n_critics} if backend == "sb3" else {})
        return {"top_quantiles_to_drop_per_net": t.top_quantiles_to_drop_per_net}, policy
    if alg == "crossq":
        c = agent.crossq
        crossq: dict[str, Any] = {
            "batch_norm": c.batch_norm,
            "renorm_warmup_steps": c.renorm_warmup_steps,
            "n_critics": c.n_critics,
        }
        if backend == "sb3":
            crossq["batch_norm_momentum"] = c.batch_norm_momentum
        else:  # flax convention: the weight of the running statistics; one flag per network
            crossq["batch_norm_momentum"] = 1.0 - c.batch_norm_momentum
            crossq["batch_norm_actor"] = c.batch_norm
        return {"policy_delay": c.policy_delay}, crossq
    if alg == "td3":
        d = agent.td3
        algo = {
            "policy_delay": d.policy_delay,
            "target_policy_noise": d.target_policy_noise,
            "target_noise_clip": d.target_noise_clip,
        }
        return algo, {"n_critics": d.n_critics}
    return {}, {}


def _ignored(cfg: Config) -> list[tuple[str, Any, str]]:
    """(dotted key, value, reason) of every non-default setting the chosen algorithm ignores."""
    spec = SPECS[cfg.agent.algorithm]
    out: list[tuple[str, Any, str]] = []
    for key, info in type(cfg.sac).model_fields.items():
        value = getattr(cfg.sac, key)
        if key in spec.unused_shared and value != info.get_default(call_default_factory=True):
            out.append((f"sac.{key}", value, spec.unused_shared[key]))
    for other in SPECS.values():
        if other.section is None or other.name == spec.name:
            continue
        section = getattr(cfg.agent, other.section)
        for key, info in type(section).model_fields.items():
            value = getattr(section, key)
            if value != info.get_default(call_default_factory=True):
                out.append((f"agent.{other.section}.{key}", value, f"read only by {other.name}"))
    return out


def unused_settings(cfg: Config) -> list[str]:
    """Dotted keys with a non-default value that the chosen algorithm ignores (see the module docstring)."""
    return [key for key, _, _ in _ignored(cfg)]


def unused_warning(cfg: Config) -> str | None:
    """One warning line naming every ignored key with its value and the reason, or None."""
    ignored = _ignored(cfg)
    if not ignored:
        return None
    parts = [f"{key}={json.dumps(value)} ({why})" for key, value, why in ignored]
    return f"agent.algorithm={cfg.agent.algorithm} ignores " + "; ".join(parts)


def model_kwargs(cfg: Config) -> tuple[dict[str, Any], list[str]]:
    """Constructor arguments of the chosen class (without env, seed, device) and the ignored keys.

    The kwargs are plain JSON values (TD3's action-noise object is added by :func:`build_model`).
    """
    s = cfg.sac
    spec = SPECS[cfg.agent.algorithm]
    if cfg.agent.backend == "sbx" and s.use_sde and "use_sde" not in spec.unused_shared:
        raise InputError(
            "sac.use_sde = true: SBX has no real gSDE (it repeats one noise sample); "
            "set sac.use_sde=false or agent.backend=sb3"
        )
    shared = {
        "learning_rate": float(s.learning_rate),
        # the buffer never needs to hold more transitions than the run makes
        "buffer_size": min(s.buffer_size, cfg.training.total_timesteps),
        "learning_starts": s.learning_starts,
        "batch_size": s.batch_size,
        "tau": float(s.tau),
        "gamma": float(s.gamma),
        "train_freq": s.train_freq,
        "gradient_steps": s.gradient_steps,
        "ent_coef": _number(s.ent_coef),
        "target_entropy": _number(s.target_entropy),
        "use_sde": s.use_sde,
    }
    kwargs = {k: v for k, v in shared.items() if k not in spec.unused_shared}
    algo, policy = _own_kwargs(cfg)
    kwargs.update(algo)
    kwargs["policy_kwargs"] = {"net_arch": list(s.net_arch), **policy}
    return kwargs, unused_settings(cfg)


def _action_noise(cfg: Config, action_space: Any) -> Any:
    if cfg.agent.algorithm != "td3" or cfg.agent.td3.action_noise_std <= 0:
        return None
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    dim = int(np.prod(action_space.shape))
    mean, sigma = np.zeros(dim), np.full(dim, cfg.agent.td3.action_noise_std)
    if cfg.agent.td3.action_noise == "ornstein_uhlenbeck":
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    return NormalActionNoise(mean=mean, sigma=sigma)
