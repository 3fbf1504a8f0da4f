"""The library class of an (algorithm, backend) pair and back; the bundle entry names (imports no backend)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from backend.config.algorithms import (
    ALGORITHMS,
    SPECS,
    check_backend,
)
from backend.core.errors import InputError

POLICY = "MlpPolicy"
AGENT_ENTRY = "harness_agent.json"  # {"format", "algorithm", "backend", "class"}: read with json, never unpickled
JAX_WEIGHTS_ENTRY = "jax_weights.msgpack"
WEIGHTS_FORMAT = 1
# (algorithm, backend) -> a subclass with the same math and a leaner update, used in place of the library class
# (bit-identical updates: tests/test_fast_learner.py; measured: docs/performance.md)
FAST_CLASSES = {
    ("sac", "sb3"): "backend.training.fast_sac:FastSAC",
    ("sac", "sbx"): "backend.training.fast_sbx:FastSBXSAC",
}


def model_class(algorithm: str, backend: str, *, library: bool = False) -> type:
    """The class that trains ``algorithm`` on ``backend`` (imports that backend).

    That is the :data:`FAST_CLASSES` subclass where one exists, unless ``library`` asks for the library's own.
    """
    spec = SPECS.get(algorithm)
    if spec is None:
        raise InputError(f"agent.algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}; set one of them")
    if backend not in spec.classes:
        raise InputError(
            f"agent.algorithm={algorithm} has no {backend!r} backend; set agent.backend to one of "
            f"{', '.join(spec.classes)}"
        )
    check_backend(backend)
    path = spec.classes[backend] if library else FAST_CLASSES.get((algorithm, backend), spec.classes[backend])
    module, _, name = path.partition(":")
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
