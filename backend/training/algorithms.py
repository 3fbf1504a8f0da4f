"""The training layer's entry to the algorithms: builds a model, and gathers every algorithm- and backend-specific step.

The list of algorithms itself is ``SPECS`` in :mod:`backend.config.algorithms`; an algorithm's own settings are a
section of :mod:`backend.config.agent`, its constructor kwargs come from :mod:`backend.training.algo_kwargs`, its
class from :mod:`backend.training.model_classes`, its weights are saved and loaded by
:mod:`backend.training.weights`. This module builds the model and re-exports those names, so the trainer and the
replay stay algorithm-agnostic by calling only this module. Importing it imports neither torch nor JAX (the
dry-run imports it); each backend's libraries are imported inside the functions that need them, JAX only when the
backend is ``sbx``.

Algorithms × backends (``agent.algorithm`` × ``agent.backend``; docs/algorithms.md)::

              sb3 (PyTorch)                      sbx (JAX, pip install '.[jax]')
    sac       stable_baselines3.SAC              sbx.SAC
    tqc       sb3_contrib.TQC                    sbx.TQC
    crossq    sb3_contrib.CrossQ                 sbx.CrossQ
    td3       stable_baselines3.TD3              sbx.TD3

Public API (names are stable; the trainer and replay depend on them):

* ``ALGORITHMS``, ``BACKENDS`` — the names (backend.config.agent builds its Literals from them);
  ``SPECS[name]`` — an :class:`Algorithm` (display ``title``, classes, ignored shared keys).
* ``check_backend(backend)`` — InputError with the fix when the backend's package is missing
  (no import; call it before anything runs).
* ``model_class(algorithm, backend, library=False)`` — the class that trains: the library class, or its
  lean-update subclass of ``FAST_CLASSES`` (SAC on sb3: :class:`backend.training.fast_sac.FastSAC`, same
  math bit for bit); ``library=True`` gives the library's own; InputError for an unknown pair.
* ``identify(model) -> (algorithm, backend)`` of a built model.
* ``model_kwargs(cfg) -> (kwargs, unused_keys)`` — constructor arguments (JSON-serialisable,
  fit for metadata) and the shared or per-algorithm keys this algorithm ignores although the
  config gives them a non-default value (``unused_settings(cfg)`` alone);
  ``unused_warning(cfg) -> str | None`` formats them as one line with values and reasons.
* ``configure_worker(backend, threads=1, device="cpu")`` — threads and device of a process
  that trains or replays; call it before anything imports JAX (``build_model`` calls it
  with ``training.torch_threads`` when JAX is not initialised yet).
* ``build_model(cfg, env, seed, device="cpu", tensorboard_log=None, *, for_replay=False)``.
* ``save_weights(model, path_or_buffer)`` / ``load_weights(model, path_or_buffer, device="cpu",
  error=EvaluationError)`` — model.zip that loading never unpickles (see "Safe weights").
* ``make_policy(model, deterministic) -> act(obs) -> action`` — fast single-observation policy,
  bit-identical to ``model.predict(obs, deterministic)``.
* ``seed_everything(model, seed)`` — seeds Python, NumPy, torch, the spaces and (sbx) the
  policy's JAX noise key, so a stochastic replay repeats.
* ``non_finite_parameters(model) -> list[str]`` — names of weights holding NaN or inf.
* ``library_versions(backend) -> dict`` — for the bundle metadata.

Shared keys (the ``sac`` section) reach every algorithm as named, except those in
``Algorithm.unused_shared``: CrossQ has no target networks (``tau``), TD3 has a deterministic
actor (``ent_coef``, ``target_entropy``, ``use_sde``). ``buffer_size`` is capped at
``training.total_timesteps``. Such a key, and a key of another algorithm's ``agent.<name>``
section, is reported in ``unused_keys`` only when its value differs from the default: the
mini configs spell every key out with its default, and a warning on each of their runs would
teach users to ignore it; what matters is a value someone chose that has no effect.

Safe weights. SB3's model.zip holds cloudpickled objects in its ``data`` entry; loading that
runs code. ``load_weights`` never reads ``data``: for sb3 it reads the ``.pth`` entries with
``torch.load(weights_only=True)`` (tensors and plain containers only; any other global is
refused) and loads them into a model freshly built from the config, as SB3's
``set_parameters`` does; for sbx (whose own save pickles the whole policy into ``data``) the
flax train states are stored in a ``jax_weights.msgpack`` entry (``flax.serialization``
msgpack: dicts, numbers and raw numeric array bytes) and every leaf is checked against the
fresh model's structure, shape and dtype before it is restored. Either zip stays loadable
by ``SAC.load`` / ``sbx.SAC.load`` for whoever trusts the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from backend.config.algorithms import (
    ALGORITHMS,
    AUTO,
    BACKEND_INSTALL,
    BACKEND_PACKAGES,
    BACKENDS,
    SPECS,
    Algorithm,
    check_backend,
)

if TYPE_CHECKING:  # pragma: no cover
    from backend.config.models import Config

from backend.training.algo_kwargs import (
    _action_noise,
    _ignored,
    _number,
    _own_kwargs,
    model_kwargs,
    unused_settings,
    unused_warning,
)
from backend.training.auto_backend import resolve
from backend.training.model_classes import (
    AGENT_ENTRY,
    FAST_CLASSES,
    JAX_WEIGHTS_ENTRY,
    POLICY,
    WEIGHTS_FORMAT,
    identify,
    model_class,
)
from backend.training.replay_policy import (
    _non_finite_leaves,
    make_policy,
    non_finite_parameters,
    seed_everything,
)
from backend.training.threads import (
    _JAX_POOL,
    XLA_ONE_THREAD,
    _check_jax_device,
    _init_jax,
    _jax_initialised,
    configure_worker,
)
from backend.training.versions import (
    library_versions,
)
from backend.training.weights import (
    _NUMERIC_KINDS,
    _agent_entry,
    _check_numeric,
    _conform,
    _jax_states,
    _jax_weights_bytes,
    _load_jax_weights,
    _load_torch_weights,
    _set_torch_variables,
    load_weights,
    save_weights,
)


def build_model(
    cfg: Config,
    env: Any,
    seed: int,
    device: str = "cpu",
    tensorboard_log: str | None = None,
    *,
    for_replay: bool = False,
) -> Any:
    """A fresh agent of ``cfg.agent.algorithm`` on ``cfg.agent.backend`` for ``env``'s spaces.

    Backend ``auto`` becomes the faster backend of :mod:`backend.training.auto_backend` for this machine,
    config and spaces (``identify(model)`` then names the backend that trains).

    ``device`` is the resolved device (cpu | cuda); for sbx it must match the platform JAX was
    initialised on, and when JAX is not initialised yet this calls :func:`configure_worker`
    with ``training.torch_threads``. ``for_replay`` allocates a one-transition replay buffer:
    weights do not depend on it, memory does.
    """
    if cfg.agent.backend == AUTO:  # the faster backend for this machine and config (measured once, cached)
        shape, act = env.observation_space.shape, env.action_space.shape
        cfg = resolve(cfg, int(np.prod(shape)), int(np.prod(act)), build=build_model)
    algorithm, backend = cfg.agent.algorithm, cfg.agent.backend
    cls = model_class(algorithm, backend)
    kwargs, _ = model_kwargs(cfg)
    if for_replay:
        kwargs["buffer_size"] = 1
    noise = _action_noise(cfg, env.action_space)
    if noise is not None:
        kwargs["action_noise"] = noise
    if backend == "sbx":
        if not _jax_initialised():  # a caller that skipped configure_worker still gets the rule
            configure_worker("sbx", cfg.training.torch_threads, device)
        _check_jax_device(device)
        device = "cpu"  # the torch side of SBX holds only the replay buffer
    return cls(POLICY, env, seed=seed, device=device, verbose=0, tensorboard_log=tensorboard_log, **kwargs)


__all__ = [
    "AGENT_ENTRY",
    "ALGORITHMS",
    "AUTO",
    "BACKENDS",
    "BACKEND_INSTALL",
    "BACKEND_PACKAGES",
    "FAST_CLASSES",
    "JAX_WEIGHTS_ENTRY",
    "POLICY",
    "SPECS",
    "WEIGHTS_FORMAT",
    "XLA_ONE_THREAD",
    "_JAX_POOL",
    "_NUMERIC_KINDS",
    "Algorithm",
    "_action_noise",
    "_agent_entry",
    "_check_jax_device",
    "_check_numeric",
    "_conform",
    "_ignored",
    "_init_jax",
    "_jax_initialised",
    "_jax_states",
    "_jax_weights_bytes",
    "_load_jax_weights",
    "_load_torch_weights",
    "_non_finite_leaves",
    "_number",
    "_own_kwargs",
    "_set_torch_variables",
    "build_model",
    "check_backend",
    "configure_worker",
    "identify",
    "library_versions",
    "load_weights",
    "make_policy",
    "model_class",
    "model_kwargs",
    "non_finite_parameters",
    "save_weights",
    "seed_everything",
    "unused_settings",
    "unused_warning",
]
