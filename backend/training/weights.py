"""Torch and JAX weights in a bundle: save, load with checks of shapes and kinds, the agent entry."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from backend.core.errors import EvaluationError, HarnessError
from backend.training.model_classes import AGENT_ENTRY, JAX_WEIGHTS_ENTRY, WEIGHTS_FORMAT, identify

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
