"""The algorithm × backend table: names, library classes, install hints (imports no library).

The config layer builds its ``agent.algorithm`` / ``agent.backend`` Literals from it and the
training layer (:mod:`backend.training.algorithms`) builds models from it — one list for both.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from backend.core.errors import InputError

BACKENDS = ("sb3", "sbx")
AUTO = "auto"
BACKEND_CHOICES = (*BACKENDS, AUTO)
"""``agent.backend`` values: a backend, or ``auto`` (the faster installed one for this machine and config,
measured once and cached: :mod:`backend.training.auto_backend`)."""
BACKEND_PACKAGES = {"sb3": ("stable_baselines3", "sb3_contrib"), "sbx": ("sbx", "jax", "flax")}
BACKEND_INSTALL = {"sb3": "pip install stable-baselines3 sb3-contrib", "sbx": "pip install '.[jax]' (sbx-rl)"}


@dataclass(frozen=True)
class Algorithm:
    """One algorithm of the list: its classes per backend and how the config reaches them."""

    name: str
    title: str
    classes: dict[str, str]
    """backend -> "module:Class", imported only when used."""
    unused_shared: dict[str, str] = field(default_factory=dict)
    """Shared ``sac`` keys this algorithm has no use for -> why (shown in the warning)."""
    section: str | None = None
    """The ``agent.<section>`` holding this algorithm's own settings."""


SPECS: dict[str, Algorithm] = {
    "sac": Algorithm("sac", "SAC", {"sb3": "stable_baselines3:SAC", "sbx": "sbx:SAC"}),
    "tqc": Algorithm("tqc", "TQC", {"sb3": "sb3_contrib:TQC", "sbx": "sbx:TQC"}, section="tqc"),
    "crossq": Algorithm(
        "crossq",
        "CrossQ",
        {"sb3": "sb3_contrib:CrossQ", "sbx": "sbx:CrossQ"},
        {"tau": "CrossQ has no target networks"},
        section="crossq",
    ),
    "td3": Algorithm(
        "td3",
        "TD3",
        {"sb3": "stable_baselines3:TD3", "sbx": "sbx:TD3"},
        {
            "ent_coef": "TD3's actor is deterministic, no entropy term",
            "target_entropy": "TD3's actor is deterministic, no entropy term",
            "use_sde": "TD3 explores with agent.td3.action_noise_std, not gSDE",
        },
        section="td3",
    ),
}
ALGORITHMS = tuple(SPECS)


def installed_backends() -> tuple[str, ...]:
    """The backends whose packages are all importable (imports nothing)."""
    return tuple(b for b in BACKENDS if all(importlib.util.find_spec(n) is not None for n in BACKEND_PACKAGES[b]))


def check_backend(backend: str) -> None:
    """InputError naming the install command when ``backend``'s packages are missing (imports nothing).

    ``auto`` needs the sb3 packages (it falls back to sb3 when sbx is not installed).
    """
    if backend == AUTO:
        backend = "sb3"
    if backend not in BACKENDS:
        raise InputError(f"agent.backend {backend!r} is not one of {', '.join(BACKEND_CHOICES)}; set agent.backend=sb3")
    missing = [name for name in BACKEND_PACKAGES[backend] if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"agent.backend={backend} needs {', '.join(missing)}, which is not installed: {BACKEND_INSTALL[backend]}"
            + (", or set agent.backend=sb3" if backend != "sb3" else "")
        )
