"""The one algorithm list: every algorithm- and backend-specific step of the harness.

The trainer and the replay stay algorithm-agnostic by calling only this module. Importing it
imports neither torch nor JAX (the dry-run and the config import it); each backend's libraries
are imported inside the functions that need them, JAX only when the backend is ``sbx``.

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
* ``model_class(algorithm, backend)`` — the library class; InputError for an unknown pair.
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

import importlib
import importlib.util
import io
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from backend.config.algorithms import (
    ALGORITHMS,
    SPECS,
    check_backend,
)
from backend.core.errors import EvaluationError, HarnessError, InputError, TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from backend.config.models import Config

POLICY = "MlpPolicy"
AGENT_ENTRY = "harness_agent.json"  # {"format", "algorithm", "backend", "class"}: read with json, never unpickled
JAX_WEIGHTS_ENTRY = "jax_weights.msgpack"
WEIGHTS_FORMAT = 1


def model_class(algorithm: str, backend: str) -> type:
    """The library class of ``algorithm`` on ``backend`` (imports that backend)."""
    spec = SPECS.get(algorithm)
    if spec is None:
        raise InputError(f"agent.algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}; set one of them")
    if backend not in spec.classes:
        raise InputError(
            f"agent.algorithm={algorithm} has no {backend!r} backend; set agent.backend to one of "
            f"{', '.join(spec.classes)}"
        )
    check_backend(backend)
    module, _, name = spec.classes[backend].partition(":")
    return getattr(importlib.import_module(module), name)


def identify(model: Any) -> tuple[str, str]:
    """(algorithm, backend) of a built model; imports nothing new."""
    cls = type(model)
    root = cls.__module__.split(".")[0]
    for spec in SPECS.values():
        for backend, path in spec.classes.items():
            module, _, name = path.partition(":")
            if module.split(".")[0] == root and cls.__name__ == name:
                return spec.name, backend
    for spec in SPECS.values():  # subclasses
        for backend, path in spec.classes.items():
            module, _, name = path.partition(":")
            if module in sys.modules and isinstance(model, getattr(sys.modules[module], name)):
                return spec.name, backend
    raise TypeError(f"{cls.__module__}.{cls.__name__} is not an algorithm of the list ({', '.join(ALGORITHMS)})")


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
        policy = {"batch_norm": c.batch_norm, "renorm_warmup_steps": c.renorm_warmup_steps, "n_critics": c.n_critics}
        if backend == "sb3":
            policy["batch_norm_momentum"] = c.batch_norm_momentum
        else:  # flax convention: the weight of the running statistics; one flag per network
            policy["batch_norm_momentum"] = 1.0 - c.batch_norm_momentum
            policy["batch_norm_actor"] = c.batch_norm
        return {"policy_delay": c.policy_delay}, policy
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


# ------------------------------------------------------------------------------------------ threads, device

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def configure_worker(backend: str, threads: int = 1, device: str = "cpu") -> None:
    """Threads and device of one process that trains or replays; call it before anything imports JAX.

    torch: ``torch.set_num_threads(threads)`` (SBX uses torch too, for the replay buffer).
    JAX (backend sbx): ``JAX_PLATFORMS`` = cpu or cuda (a CPU worker never initialises a GPU;
    with cuda ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` lets several workers share one),
    ``XLA_FLAGS`` gets ``--xla_cpu_multi_thread_eigen=false``, and the CPU client is
    initialised here with an intra-op pool of ``threads`` threads. No XLA flag sizes that pool
    on jaxlib 0.10 (measured: two busy threads under every flag); XLA sizes it from the CPU
    affinity at initialisation. So the calling thread is restricted to ``threads`` cores while
    JAX initialises, then every thread of the process gets its full affinity back: the pool
    keeps ``threads`` threads, and no core is pinned (two processes pinned to one core would
    share it while another idles). The pool size decides how XLA splits matrix products, so
    it decides the weights bit for bit: same seed and same ``threads`` give the same weights
    in process or in any pool; a different pool size gives different (equally valid) ones.
    """
    import torch

    torch.set_num_threads(threads)
    if backend != "sbx":
        return
    if device == "cuda":
        os.environ.setdefault("JAX_PLATFORMS", "cuda,cpu")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    else:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_ONE_THREAD}".strip()
    _init_jax(threads)


def _jax_initialised() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - a JAX without the helper
        return False


_JAX_POOL: dict[str, int | None] = {"threads": None}  # the pool size this module initialised JAX with


def _init_jax(threads: int) -> None:
    """Initialise JAX's backends with an intra-op pool of ``threads`` threads (see configure_worker)."""
    if _jax_initialised():
        have = _JAX_POOL["threads"]
        if have != threads:
            size = f"{have} threads" if have else "the size it got when something else initialised it"
            warnings.warn(
                f"JAX is already initialised, with a CPU thread pool of {size}, not {threads}: weights differ "
                "bit-wise from a run with that many threads; call algorithms.configure_worker before importing jax",
                RuntimeWarning,
                stacklevel=3,
            )
        return
    import jax

    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not allowed or threads >= len(allowed):
        jax.devices()
    else:
        os.sched_setaffinity(0, set(sorted(allowed)[:threads]))
        try:
            jax.devices()
        finally:
            for tid in os.listdir("/proc/self/task"):
                try:
                    os.sched_setaffinity(int(tid), allowed)
                except OSError:  # a thread that ended meanwhile
                    pass
    _JAX_POOL["threads"] = threads


def _check_jax_device(device: str) -> None:
    import jax

    platform = jax.default_backend()
    on_gpu = platform in ("gpu", "cuda", "rocm")
    if device == "cuda" and not on_gpu:
        raise TrainingError(
            f"training.device is 'cuda' but JAX runs on {platform}: install jax with CUDA "
            "(pip install 'jax[cuda12]'), or set training.device=cpu"
        )
    if device == "cpu" and on_gpu:
        raise TrainingError(
            f"training.device is 'cpu' but JAX was initialised on {platform}: call "
            "algorithms.configure_worker before importing jax, or set JAX_PLATFORMS=cpu"
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

    ``device`` is the resolved device (cpu | cuda); for sbx it must match the platform JAX was
    initialised on, and when JAX is not initialised yet this calls :func:`configure_worker`
    with ``training.torch_threads``. ``for_replay`` allocates a one-transition replay buffer:
    weights do not depend on it, memory does.
    """
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


# ------------------------------------------------------------------------------------------ weights


def _agent_entry(model: Any) -> bytes:
    algorithm, backend = identify(model)
    doc = {"format": WEIGHTS_FORMAT, "algorithm": algorithm, "backend": backend, "class": type(model).__name__}
    return json.dumps(doc, sort_keys=True).encode()


def save_weights(model: Any, path: str | Path | IO[bytes]) -> None:
    """Write model.zip: the library's own archive plus what :func:`load_weights` reads.

    sb3: SB3's zip (its .pth entries are what is loaded). sbx: SBX's zip plus
    ``jax_weights.msgpack``. Both get ``harness_agent.json`` naming algorithm and backend.
    """
    _, backend = identify(model)
    buf = io.BytesIO()
    model.save(buf)
    extra = {AGENT_ENTRY: _agent_entry(model)}
    if backend == "sbx":
        extra[JAX_WEIGHTS_ENTRY] = _jax_weights_bytes(model)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in extra.items():
            archive.writestr(name, data)
    if isinstance(path, str | Path):
        Path(path).write_bytes(buf.getvalue())
    else:
        path.write(buf.getvalue())


def load_weights(
    model: Any, path: str | Path | IO[bytes], device: str = "cpu", error: type[HarnessError] = EvaluationError
) -> None:
    """Load the weights of ``path`` into ``model`` (built by :func:`build_model`); nothing is unpickled.

    Raises ``error`` (EvaluationError for replay; pass TrainingError for warm start) naming the
    file, what is wrong and the fix: not a zip, another algorithm or backend, an entry that
    holds something other than tensors / numeric arrays, or weights of another shape.
    """
    name = str(path) if isinstance(path, str | Path) else "model.zip"
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise error(f"{name}: not a readable model.zip ({e}); retrain the window or restore the file") from e
    algorithm, backend = identify(model)
    with archive:
        entries = archive.namelist()
        if AGENT_ENTRY in entries:
            try:
                saved = json.loads(archive.read(AGENT_ENTRY))
                saved_pair = (saved["algorithm"], saved["backend"])
            except (ValueError, KeyError, TypeError) as e:
                raise error(f"{name}: {AGENT_ENTRY} is unreadable ({e}); the file was changed") from e
            if saved_pair != (algorithm, backend):
                raise error(
                    f"{name}: holds a {saved_pair[0]} agent on {saved_pair[1]}, but the config builds {algorithm} "
                    f"on {backend}; set agent.algorithm={saved_pair[0]} agent.backend={saved_pair[1]} "
                    "(config.resolved.json of the run that trained it)"
                )
        if backend == "sbx":
            if JAX_WEIGHTS_ENTRY not in entries:
                raise error(
                    f"{name}: has no {JAX_WEIGHTS_ENTRY}; it was not written by this harness's sbx backend "
                    "(SBX's own save pickles the weights, which the harness does not load); retrain the window"
                )
            _load_jax_weights(model, archive.read(JAX_WEIGHTS_ENTRY), name, error)
        else:
            _load_torch_weights(model, archive, name, device, error)


def _load_torch_weights(model: Any, archive: zipfile.ZipFile, name: str, device: str, error: type) -> None:
    """Each ``.pth`` entry with ``torch.load(weights_only=True)``; ``data`` is never read."""
    import pickle

    import torch

    params: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for entry in archive.namelist():
        if not entry.endswith(".pth"):
            continue
        try:
            obj = torch.load(io.BytesIO(archive.read(entry)), map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise error(
                f"{name}: refused to load {entry}: it holds something other than tensors (torch weights_only: "
                f"{first}). The file was not written by this harness or was tampered with; retrain the window"
            ) from e
        if entry in ("pytorch_variables.pth", "tensors.pth"):
            variables = obj or {}
        else:
            params[entry[: -len(".pth")]] = obj
    if not params:
        raise error(f"{name}: holds no weights (.pth entries); retrain the window or restore the file")
    try:
        model.set_parameters(params, exact_match=True, device=device)
        _set_torch_variables(model, variables)
    except (ValueError, RuntimeError, KeyError, TypeError, AttributeError) as e:
        algorithm, backend = identify(model)
        raise error(
            f"{name}: the weights do not fit a {algorithm} agent ({backend}) built from this config: "
            f"{str(e).splitlines()[0]}. Fix: replay with the config the model was trained with "
            "(config.resolved.json in the run folder), or retrain"
        ) from e


def _set_torch_variables(model: Any, variables: dict[str, Any]) -> None:
    """SB3's pytorch_variables (the entropy coefficient), which ``set_parameters`` leaves out."""
    import torch
    from stable_baselines3.common.save_util import recursive_getattr

    expected = set(model._get_torch_save_params()[1])
    if set(variables) != expected:
        raise ValueError(f"tensor variables {sorted(variables)} do not match the agent's {sorted(expected)}")
    for key in sorted(expected):
        target, value = recursive_getattr(model, key), variables[key]
        if not isinstance(value, torch.Tensor) or value.shape != target.shape:
            raise ValueError(f"variable {key} has shape {getattr(value, 'shape', None)}, expected {target.shape}")
        with torch.no_grad():
            target.copy_(value.to(target.device, target.dtype))


def _jax_states(model: Any) -> dict[str, Any]:
    """Every flax TrainState of an SBX model (actor, critics, entropy coefficient), by attribute path."""
    from flax.training.train_state import TrainState

    states = {}
    for prefix, owner in (("", model), ("policy.", model.policy)):
        for key, value in vars(owner).items():
            if isinstance(value, TrainState):
                states[prefix + key] = value
    return dict(sorted(states.items()))


def _jax_weights_bytes(model: Any) -> bytes:
    from flax import serialization

    algorithm, backend = identify(model)
    doc = {
        "format": WEIGHTS_FORMAT,
        "algorithm": algorithm,
        "backend": backend,
        "states": {key: serialization.to_state_dict(state) for key, state in _jax_states(model).items()},
    }
    return serialization.msgpack_serialize(doc)


_NUMERIC_KINDS = "biuf"


def _check_numeric(got: Any, where: str) -> None:
    if isinstance(got, np.ndarray | np.generic):
        if got.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{where}: dtype {got.dtype} is not numeric")
    elif not isinstance(got, bool | int | float):
        raise ValueError(f"{where}: {type(got).__name__} is not a number or numeric array")


def _conform(expected: Any, got: Any, where: str) -> Any:
    """``got`` shaped like ``expected`` (a flax state dict), leaf by leaf, or ValueError naming the path."""
    import jax.numpy as jnp

    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise ValueError(f"{where}: expected a mapping, found {type(got).__name__}")
        if set(got) != set(expected):
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            raise ValueError(f"{where}: keys differ (missing {missing}, unexpected {extra})")
        return {k: _conform(expected[k], got[k], f"{where}.{k}") for k in expected}
    if expected is None:
        if got is not None:
            raise ValueError(f"{where}: expected nothing, found {type(got).__name__}")
        return None
    _check_numeric(got, where)
    if np.shape(got) != np.shape(expected):
        raise ValueError(f"{where}: shape {np.shape(got)} differs from the agent's {np.shape(expected)}")
    exp_dtype = getattr(expected, "dtype", None)
    if exp_dtype is None:  # a Python scalar in the fresh state (e.g. an optimizer hyperparameter)
        return type(expected)(got)
    got_dtype = getattr(got, "dtype", None)
    if got_dtype is not None and got_dtype != exp_dtype:
        raise ValueError(f"{where}: dtype {got_dtype} differs from the agent's {exp_dtype}")
    return jnp.asarray(got, dtype=exp_dtype)


def _load_jax_weights(model: Any, raw: bytes, name: str, error: type) -> None:
    from flax import serialization

    try:
        doc = serialization.msgpack_restore(raw)
    except Exception as e:  # msgpack raises several unrelated types on malformed input
        raise error(
            f"{name}: {JAX_WEIGHTS_ENTRY} is not a msgpack weight file ({type(e).__name__}: {e}); "
            "the file was not written by this harness or was tampered with; retrain the window"
        ) from e
    algorithm, backend = identify(model)
    try:
        if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"unknown weight format {doc.get('format') if isinstance(doc, dict) else doc!r}")
        if (doc.get("algorithm"), doc.get("backend")) != (algorithm, backend):
            raise ValueError(f"holds {doc.get('algorithm')} on {doc.get('backend')}, not {algorithm} on {backend}")
        states = _jax_states(model)
        conformed = _conform(
            {k: serialization.to_state_dict(v) for k, v in states.items()}, doc.get("states"), "states"
        )
    except ValueError as e:
        raise error(
            f"{name}: the weights do not fit a {algorithm} agent ({backend}) built from this config: {e}. "
            "Fix: replay with the config the model was trained with (config.resolved.json), or retrain"
        ) from e
    for key, state in states.items():
        owner = model.policy if key.startswith("policy.") else model
        setattr(owner, key.rpartition(".")[2], serialization.from_state_dict(state, conformed[key]))


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


def library_versions(backend: str) -> dict[str, str | None]:
    """Versions of the packages an agent on ``backend`` depends on (None: not installed); imports nothing."""
    names = ["stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy"]
    if backend == "sbx":
        names += ["sbx-rl", "jax", "jaxlib", "flax", "optax"]
    out: dict[str, str | None] = {}
    for dist in names:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
