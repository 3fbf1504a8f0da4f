"""The machine's compute floor for one SAC gradient step (issue 25).

    floor = FLOPs of one SAC gradient step / best single-thread float32 matmul GFLOP/s of its shapes

* ``machine()``          CPU model, cores, library versions (the figures' provenance)
* ``sac_step_flops()``   FLOPs of one SAC step: actor forward/backward, twin critics forward/backward
                         (current and next observation), target critics forward on the next observation
* ``matmul_gflops()``    single-thread float32 GFLOP/s of the network's shapes (batch × in @ in × out),
                         in numpy, torch and JAX (the last two only when importable)
* ``floor_report()``     all of the above and the floor in seconds and steps per second

A dense layer of ``n_in -> n_out`` on a batch of ``b`` costs ``2·b·n_in·n_out`` FLOPs forward and twice that
backward (input and weight gradients). The figures are machine-dependent: record them with ``machine()``.

    python benchmarks/floor.py                                  # [64,64], [128,128], [256,256]; batch 256
    python benchmarks/floor.py --arch 8,8 --batch 8 --repeats 1 --inner 1 --out /tmp/f.json   # a smoke: seconds
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from backend.core.machine import cpu_model, vector_isa  # noqa: E402 - the one reader (also the caches' machine key)

ONE_THREAD_BLAS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_blas() -> None:
    """A one-thread BLAS in this process (the floor is single-thread by definition), whatever the shell exported.

    Call it before anything imports numpy or torch: BLAS reads these once, when it loads.
    """
    for name in ONE_THREAD_BLAS:
        os.environ[name] = "1"


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("numpy", "torch", "jax", "jaxlib", "stable-baselines3", "sbx-rl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "vector_isa": vector_isa(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in load] if load else None,
        "libraries": library_versions(),
    }


def layer_shapes(obs_dim: int, act_dim: int, net_arch: Sequence[int]) -> dict[str, list[tuple[int, int]]]:
    """(n_in, n_out) of each dense layer: the actor (mean and log-std heads) and one critic (obs+act -> 1)."""
    hidden = list(net_arch)
    actor = [*zip([obs_dim, *hidden[:-1]], hidden, strict=True), (hidden[-1], 2 * act_dim)]
    critic = [*zip([obs_dim + act_dim, *hidden[:-1]], hidden, strict=True), (hidden[-1], 1)]
    return {"actor": actor, "critic": critic}


def _forward(batch: int, layers: Sequence[tuple[int, int]]) -> float:
    return float(sum(2 * batch * n_in * n_out for n_in, n_out in layers))


def sac_step_flops(*, obs_dim: int, act_dim: int, net_arch: Sequence[int], batch: int, n_critics: int = 2) -> float:
    """FLOPs of one SAC gradient step (matmuls only; activations and the optimiser are lower order)."""
    shapes = layer_shapes(obs_dim, act_dim, net_arch)
    actor_f, critic_f = _forward(batch, shapes["actor"]), _forward(batch, shapes["critic"])
    target = actor_f + n_critics * critic_f  # next action + target critics on the next observation
    critic_update = n_critics * 3 * critic_f  # forward + backward (2×) of each critic
    actor_update = 3 * actor_f + n_critics * 3 * critic_f  # actor through the (frozen) critics, fwd + bwd
    return target + critic_update + actor_update


def _time_best(fn: Callable[[], object], *, repeats: int, inner: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def _numpy_kernel(batch: int, n_in: int, n_out: int) -> Callable[[], object]:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, n_in), dtype=np.float32)
    b = rng.standard_normal((n_in, n_out), dtype=np.float32)
    return lambda: a @ b


def _torch_kernel(batch: int, n_in: int, n_out: int) -> Callable[[], object] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    a, b = torch.randn(batch, n_in), torch.randn(n_in, n_out)
    return lambda: torch.mm(a, b)


def _jax_kernel(batch: int, n_in: int, n_out: int) -> Callable[[], object] | None:
    """A one-thread JAX matmul: JAX is initialised as a harness worker's (one-thread pool, XLA flags).

    Initialised otherwise, it would keep a pool of every core for this process, and a harness training
    in the same process later (benchmarks/run.py's replay and projection groups) would run on it.
    """
    if importlib.util.find_spec("jax") is None:
        return None
    from backend.training.threads import configure_worker

    configure_worker("sbx", threads=1, device="cpu")  # a no-op when this process is configured so already
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (batch, n_in), dtype=jnp.float32)
    b = jax.random.normal(key, (n_in, n_out), dtype=jnp.float32)
    mm = jax.jit(jnp.matmul)
    return lambda: mm(a, b).block_until_ready()


KERNELS = {"numpy": _numpy_kernel, "torch": _torch_kernel, "jax": _jax_kernel}


def matmul_gflops(
    batch: int,
    shapes: Sequence[tuple[int, int]],
    *,
    repeats: int = 3,
    inner: int = 50,
    libraries: Sequence[str] = tuple(KERNELS),
) -> dict:
    """{library: GFLOP/s} over the given (n_in, n_out) shapes (total FLOPs / total best time), None if absent.

    ``libraries``: a subset of KERNELS (the smoke of benchmarks/run.py leaves JAX's start-up out).
    """
    flops = _forward(batch, shapes)
    out: dict[str, float | None] = {}
    for name in libraries:
        make = KERNELS[name]
        kernels = [make(batch, n_in, n_out) for n_in, n_out in shapes]
        if any(k is None for k in kernels):
            out[name] = None
            continue
        seconds = sum(_time_best(k, repeats=repeats, inner=inner) for k in kernels)
        out[name] = round(flops / seconds / 1e9, 2)
    return out


def floor_report(
    *,
    obs_dim: int,
    act_dim: int,
    net_arch: Sequence[int],
    batch: int,
    repeats: int = 3,
    inner: int = 50,
    libraries: Sequence[str] = tuple(KERNELS),
) -> dict[str, object]:
    """The floor of one SAC step on this machine: best library's matmul speed on the network's shapes."""
    shapes = layer_shapes(obs_dim, act_dim, net_arch)
    gflops = matmul_gflops(batch, shapes["actor"] + shapes["critic"], repeats=repeats, inner=inner, libraries=libraries)
    best = max(v for v in gflops.values() if v is not None)
    flops = sac_step_flops(obs_dim=obs_dim, act_dim=act_dim, net_arch=net_arch, batch=batch)
    seconds = flops / (best * 1e9)
    return {
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "net_arch": list(net_arch),
        "batch": batch,
        "matmul_gflops": gflops,
        "step_gflop": round(flops / 1e9, 4),
        "floor_step_seconds": seconds,
        "floor_steps_per_second": round(1.0 / seconds, 2),
        "blas_threads": os.environ.get("OMP_NUM_THREADS"),  # "1" unless the caller skipped one_thread_blas()
    }


def fraction_of_floor(steps_per_second: float, floor_steps_per_second: float) -> float:
    """A learner's steps/s as a share of the floor (1.0 = at the floor)."""
    if floor_steps_per_second <= 0:
        raise ValueError(f"floor_steps_per_second must be positive, got {floor_steps_per_second!r}")
    return round(steps_per_second / floor_steps_per_second, 3)


def sweep_vs_floor(*, wall_seconds: float, tasks: int, steps: int, floor_step_seconds: float, workers: int) -> float:
    """A sweep's wall time as a multiple of ``tasks × steps × step-floor / workers``."""
    ideal = tasks * steps * floor_step_seconds / workers
    if ideal <= 0:
        raise ValueError("tasks, steps, floor_step_seconds and workers must be positive")
    return round(wall_seconds / ideal, 3)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Print the floor of each network (and the machine); ``--out``: also as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", help="a network, e.g. 128,128 (repeatable; default: three)")
    ap.add_argument("--obs", type=int, default=16 * 10 + 3, help="observation size (the mini configs': 163)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    archs = [tuple(int(a) for a in text.split(",")) for text in args.arch or ("64,64", "128,128", "256,256")]
    floors: dict[str, object] = {}
    for arch in archs:
        rep = floor_report(
            obs_dim=args.obs, act_dim=1, net_arch=arch, batch=args.batch, repeats=args.repeats, inner=args.inner
        )
        floors["x".join(map(str, arch))] = rep
        print(
            f"floor {list(arch)} batch {args.batch}: {rep['step_gflop']} GFLOP/step, "
            f"matmul GFLOP/s {rep['matmul_gflops']}, floor {rep['floor_steps_per_second']:,.1f} steps/s"
        )
    doc: dict[str, object] = {"machine": machine(), "floor": floors}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    one_thread_blas()
    main()
