"""Library versions an agent on a backend depends on (recorded in the bundle and summary)."""

from __future__ import annotations

from importlib import metadata


def library_versions(backend: str) -> dict[str, str | None]:
    """Versions of the packages an agent on ``backend`` depends on (None: not installed); imports nothing."""
    names = ["stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy"]
    if backend in ("sbx", "auto"):  # auto may train on either
        names += ["sbx-rl", "jax", "jaxlib", "flax", "optax"]
    out: dict[str, str | None] = {}
    for dist in names:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
