"""``agent.backend: auto`` — the faster installed backend for this machine and config, measured once, cached.

The choice depends on the machine (CPU model and vector instruction sets: SB3's PyTorch matmuls vs XLA's),
the library versions, and every setting that changes the cost of a step (see :func:`choice_key`); that is
the cache key. On a miss, each
installed backend trains the config's algorithm for a few hundred steps on a null env of the real
spaces (random-action warm-up, then timed steps with one gradient step each, the backends alternating
A/B/A/B in this process, with the worker's thread settings), and the one with more steps per second is
chosen. The entry is written atomically under ``$WF_CACHE_DIR/backend_choice/`` (else the user's cache
dir); a lock file makes a second worker of the same run wait for the first worker's measurement instead
of measuring beside it. A link leaving the cache is refused (exit 2); a cache that cannot be written is
warned about and the choice measured in the process.

The cache entry is read as hostile input: bounded JSON (size, depth), and it is used only if it is an
object whose ``key`` equals this machine's key, whose ``chosen`` is an installed backend, and whose
``steps_per_second`` are finite positive numbers; anything else is measured again and overwritten.

What is recorded: :func:`choice` returns ``{"requested": "auto", "chosen", "steps_per_second",
"measured_at", "measure_seconds", "cached", "cache_entry"}``; the bundle's ``compatibility`` holds
``backend`` (the one that trained) and ``backend_choice`` (this record). Replay of such a bundle uses its
recorded backend (see :func:`backend.training.bundle.replay_config`), never a new measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from backend.config.algorithms import AUTO, installed_backends
from backend.core import fsguard
from backend.core.errors import FolderError, InputError
from backend.core.jsonio import read_text_bounded, write_json
from backend.core.machine import machine_id
from backend.training.algo_kwargs import model_kwargs
from backend.training.versions import library_versions

if TYPE_CHECKING:  # pragma: no cover
    from backend.config.models import Config

CACHE_SUBDIR = "backend_choice"
CACHE_FORMAT = 2  # 2: keyed on machine_id and every speed setting (1: the CPU model and five settings)
WARMUP_STEPS = 64  # gradient steps after learning_starts, untimed (JAX compiles here)
TIMED_STEPS = 150  # per backend and round
ROUNDS = 2  # A/B, then B/A
MAX_ENTRY_BYTES = 64 << 10

_CHOSEN: dict[str, dict[str, Any]] = {}  # key hash -> choice, per process (build_model and the bundle agree)


def cache_dir() -> Path:
    """``$WF_CACHE_DIR/backend_choice``, else the user's cache dir (e.g. ~/.cache/wf-harness/backend_choice)."""
    return Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness")) / CACHE_SUBDIR


def usable_backends(cfg: Config) -> tuple[str, ...]:
    """Installed backends that can train ``cfg`` (sbx has no gSDE and a TQC of exactly 2 critics)."""

    out = []
    for backend in installed_backends():
        try:
            model_kwargs(concrete(cfg, backend))
        except InputError:
            continue
        out.append(backend)
    return tuple(out)


# sac settings that leave the cost of a step unchanged (no re-measurement when a sweep varies them)
SPEED_NEUTRAL = frozenset({"learning_rate", "buffer_size", "learning_starts", "tau", "gamma", "target_entropy"})


def choice_key(cfg: Config, obs_dim: int, act_dim: int) -> dict[str, Any]:
    """What the faster backend depends on: the machine, the libraries, every setting that changes the cost of a step.

    The machine is its CPU model and vector instruction sets (two "AMD EPYC" VMs with and without AVX-512 run
    the backends at different ratios); the settings are the whole ``sac`` section but :data:`SPEED_NEUTRAL`
    (``ent_coef`` as auto or fixed: an auto coefficient is one more optimiser), the algorithm's own section
    (critics, quantiles, policy delay, batch norm), the device and the threads.
    """
    sac = cfg.sac.model_dump(mode="json", exclude=set(SPEED_NEUTRAL))
    sac["ent_coef"] = "auto" if str(cfg.sac.ent_coef).startswith("auto") else "fixed"
    own = getattr(cfg.agent, cfg.agent.algorithm, None)
    return {
        "format": CACHE_FORMAT,
        "machine": machine_id(),
        "cpu_count": os.cpu_count(),
        "libraries": library_versions(AUTO),
        "candidates": list(usable_backends(cfg)),
        "algorithm": cfg.agent.algorithm,
        "sac": sac,
        "algorithm_settings": own.model_dump(mode="json") if own is not None else None,
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "device": cfg.training.device,
        "threads": cfg.training.torch_threads,
    }


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _valid(entry: Any, key: dict[str, Any]) -> bool:
    """A cache entry this machine may use (see the module docstring); anything else is re-measured."""
    if not isinstance(entry, dict) or entry.get("key") != key:
        return False
    sps = entry.get("steps_per_second")
    if not isinstance(sps, dict) or set(sps) != set(key["candidates"]):
        return False
    numbers = [v for v in sps.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(sps) or not all(math.isfinite(v) and v > 0 for v in numbers):
        return False
    return entry.get("chosen") in key["candidates"] and entry["chosen"] == max(sps, key=sps.__getitem__)


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The valid entry at ``path``, else None (absent, a link, not a file, unreadable, invalid: measured again)."""
    if path.is_symlink() or not path.is_file():  # a link is never followed; the new entry replaces it
        return None
    try:
        text = read_text_bounded(path, "backend choice cache entry", MAX_ENTRY_BYTES)
        entry = json.loads(text)
    except (InputError, OSError, ValueError, RecursionError):
        return None
    return entry if _valid(entry, key) else None


@contextmanager
def _cache_slot(folder: Path, digest: str) -> Iterator[Path | None]:
    """The entry's path, under an exclusive lock on ``<digest>.lock``; None when the cache cannot be used.

    A link leaving the cache (the folder or the lock file) is refused (FolderError, exit 2), as everywhere in
    the cache. A cache that cannot be written (a file, a read-only or foreign folder) yields None with a
    warning: the choice is then measured in this process and not stored. Without POSIX locks (Windows) there
    is no lock (two workers may then both measure).
    """
    lock = folder / f"{digest}.lock"
    try:
        fsguard.make_dirs(folder.parent, folder, "the cache")
        fsguard.refuse_link(lock, "the backend choice lock file")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FolderError:
        raise
    except OSError as e:
        print(f"warning: backend choice cache {folder} not usable ({e}); measuring in this process", file=sys.stderr)
        yield None
        return
    try:
        import fcntl  # lazy: POSIX only (ImportError on Windows)
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder / f"{digest}.json"
    finally:
        os.close(fd)  # closing releases the lock


Measure = Callable[[Any, int, int, tuple[str, ...]], dict[str, float]]


def choice(
    cfg: Config, obs_dim: int, act_dim: int = 1, measure: Measure | None = None, build: Callable | None = None
) -> dict[str, Any]:
    """The backend choice record for ``cfg`` (cached in this process and on disk; measured on a miss).

    ``measure`` defaults to :func:`measure_backends` with ``build`` (``algorithms.build_model``, passed in by
    the caller so that this module does not import it back).
    """
    key = choice_key(cfg, obs_dim, act_dim)
    digest = _key_hash(key)
    if digest in _CHOSEN:
        return _CHOSEN[digest]
    candidates = tuple(key["candidates"])
    if len(candidates) == 1:  # nothing to choose from: no measurement
        record = {"requested": AUTO, "chosen": candidates[0], "steps_per_second": None, "cached": False}
        _CHOSEN[digest] = record
        return record
    run = measure or _measure_with(build)

    with _cache_slot(cache_dir(), digest) as path:
        entry = _read(path, key) if path is not None else None
        cached = entry is not None
        if entry is None:
            t0 = time.perf_counter()
            sps = run(cfg, obs_dim, act_dim, candidates)
            entry = _measured_entry(key, sps, time.perf_counter() - t0)
            if path is not None:
                _write(path, entry)
    record = {
        "requested": AUTO,
        "chosen": entry["chosen"],
        "steps_per_second": entry["steps_per_second"],
        "measured_at": entry.get("measured_at"),
        "measure_seconds": entry.get("measure_seconds"),
        "cached": cached,
        "cache_entry": str(path) if path is not None else None,
    }
    _CHOSEN[digest] = record
    return record


def _measure_with(build: Callable | None) -> Measure:
    """:func:`measure_backends` with ``build``; without one, a miss is an error (a hit needs none)."""

    def run(cfg: Any, obs_dim: int, act_dim: int, candidates: tuple[str, ...]) -> dict[str, float]:
        if build is None:
            raise RuntimeError("auto_backend.choice: nothing cached and no build function to measure with")
        return measure_backends(cfg, obs_dim, act_dim, candidates, build)

    return run


def _measured_entry(key: dict[str, Any], sps: dict[str, float], seconds: float) -> dict[str, Any]:
    return {
        "key": key,
        "chosen": max(sps, key=sps.__getitem__),
        "steps_per_second": {k: round(float(v), 2) for k, v in sps.items()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "measure_seconds": round(seconds, 1),
    }


def _write(path: Path, entry: dict[str, Any]) -> None:
    try:
        write_json(path, entry)  # a temporary file renamed into place: replaces a link, never writes through it
    except OSError:  # a read-only cache: the choice still holds for this process
        pass


def concrete(cfg: Config, backend: str) -> Config:
    """``cfg`` with ``agent.backend`` set to ``backend`` (validated)."""
    agent = cfg.agent.model_copy(update={"backend": backend})
    return cfg.model_copy(update={"agent": agent})


def resolve(cfg: Config, obs_dim: int, act_dim: int = 1, build: Callable | None = None) -> Config:
    """``cfg`` itself unless its backend is ``auto``; then ``cfg`` on the chosen backend."""
    if cfg.agent.backend != AUTO:
        return cfg
    return concrete(cfg, choice(cfg, obs_dim, act_dim, build=build)["chosen"])


# ------------------------------------------------------------------------------------------ measurement


def null_env(obs_dim: int, act_dim: int = 1, episode: int = 78):
    """A learner's null env: the given spaces, zero observations, reward 0, truncated every ``episode`` steps.

    No work at all, so a learner's steps/s on it is the learner alone (the measurement here, and the
    benchmarks in benchmarks/). Imports inside: a worker is configured before gymnasium is imported.
    """
    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces

    class NullEnv(gym.Env):
        observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(obs_dim, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.zeros(obs_dim, np.float32), 0.0, False, self.t >= episode, {}

    return NullEnv()


def measure_backends(
    cfg: Config, obs_dim: int, act_dim: int, candidates: tuple[str, ...], build_model: Callable
) -> dict[str, float]:
    """Steps per second of each candidate (median of ROUNDS alternating rounds) on a null env of the spaces.

    ``build_model`` is ``algorithms.build_model`` (passed in: that module imports this one).
    """
    start = max(cfg.sac.batch_size, 64)
    total = start + WARMUP_STEPS + ROUNDS * TIMED_STEPS
    models = {}
    for backend in candidates:
        probe = concrete(cfg, backend)
        sac = probe.sac.model_copy(update={"learning_starts": start, "buffer_size": total})
        probe = probe.model_copy(
            update={"sac": sac, "training": probe.training.model_copy(update={"total_timesteps": total})}
        )
        model = build_model(probe, null_env(obs_dim, act_dim), seed=0)
        model.learn(start + WARMUP_STEPS)
        models[backend] = model
    runs: dict[str, list[float]] = {b: [] for b in candidates}
    for r in range(ROUNDS):
        for backend in candidates if r % 2 == 0 else candidates[::-1]:
            t0 = time.perf_counter()
            models[backend].learn(TIMED_STEPS, reset_num_timesteps=False)
            runs[backend].append(TIMED_STEPS / (time.perf_counter() - t0))
    return {b: statistics.median(v) for b, v in runs.items()}
