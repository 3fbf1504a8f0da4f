"""Threads and device of a worker: torch threads, XLA flags, JAX platform (before JAX initialises)."""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path

import platformdirs

from backend.config.algorithms import installed_backends
from backend.core import fsguard
from backend.core.errors import FolderError, TrainingError
from backend.core.machine import machine_id

# ------------------------------------------------------------------------------------------ threads, device

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def configure_worker(backend: str, threads: int = 1, device: str = "cpu") -> None:
    """Threads and device of one process that trains or replays; call it before anything imports JAX.

    torch: ``torch.set_num_threads(threads)`` (SBX uses torch too, for the replay buffer).
    JAX (backend sbx): ``JAX_PLATFORMS`` = cpu or cuda (a CPU worker never initialises a GPU;
    with cuda ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` lets several workers share one),
    ``XLA_FLAGS`` gets ``--xla_cpu_multi_thread_eigen=false``, and the CPU client is
    initialised here with an intra-op pool of ``threads`` threads. Backend ``auto`` prepares JAX too
    when sbx is installed (the choice is made later, when the agent is built). JAX's persistent
    compilation cache is switched on (:func:`enable_compilation_cache`). No XLA flag sizes that pool
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
    if backend == "auto":  # either may train (auto_backend measures both): prepare JAX when it is installed
        backend = "sbx" if "sbx" in installed_backends() else "sb3"
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
    enable_compilation_cache()


def jax_cache_dir() -> Path | None:
    """``$WF_CACHE_DIR/jax/<machine>``, else the user's cache dir; None when ``WF_JAX_CACHE=off``.

    One folder per machine (CPU model and vector instruction sets: ``core.machine.machine_id``), jaxlib version
    and XLA_FLAGS: a folder shared between different machines (a network home) never hands one machine's
    compiled code to another.
    """
    if os.environ.get("WF_JAX_CACHE", "").lower() in ("off", "0", "false", "no"):
        return None
    try:
        jaxlib = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - sbx without jaxlib cannot run
        jaxlib = "?"
    machine = f"{machine_id()}|{jaxlib}|{os.environ.get('XLA_FLAGS', '')}|{os.environ.get('JAX_PLATFORMS', '')}"
    root = Path(os.environ.get("WF_CACHE_DIR") or platformdirs.user_cache_dir("wf-harness"))
    return root / "jax" / hashlib.sha256(machine.encode()).hexdigest()[:16]


def enable_compilation_cache() -> Path | None:
    """JAX's persistent compilation cache in :func:`jax_cache_dir`, for every compile (min time 0).

    A worker's second task, and every other worker of the machine, load the compiled update instead of
    compiling it again. The cached executable is the one XLA compiled, so results are the same bit for bit.
    """
    folder = jax_cache_dir()
    if folder is None:
        return None
    import jax

    try:
        fsguard.make_dirs(folder.parent.parent, folder, "the cache")
    except FolderError as e:  # a link leaving the cache: never written through; compile every time
        print(f"warning: JAX compilation cache not used: {e}", file=sys.stderr)
        return None
    except OSError:  # a read-only cache: compile every time
        return None
    if getattr(jax.config, "jax_compilation_cache_dir", None) != str(folder):
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        try:  # JAX opens its cache once; a changed folder (another WF_CACHE_DIR) needs a fresh one
            from jax._src import compilation_cache

            compilation_cache.reset_cache()
        except (ImportError, AttributeError):  # pragma: no cover - a JAX without the helper
            pass
    return folder


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
