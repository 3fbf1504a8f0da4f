"""Faster-learner candidates side by side (issue 25): SAC steps/s of each, alternating, one core.

    python benchmarks/learner_candidates.py --steps 800 --repeats 3 --out tmp/learner_candidates.json
    python benchmarks/learner_candidates.py --arch 16,16 --steps 8 --warmup 4 --repeats 1 --concurrent  # smoke

Candidates (each in a fresh process configured as a harness worker, SAC, batch 256, the null env of
benchmarks/backends.py):

* ``sb3``            stable_baselines3.SAC as it is (the library class, not the harness's FastSAC)
* ``sb3_fast``       backend.training.fast_sac.FastSAC (same math, lean update, foreach Adam)
* ``sb3_fast_fused`` FastSAC with torch's fused CPU Adam kernel instead of foreach
* ``sbx_lib``        sbx.SAC as it is (the library class, not the harness's FastSBXSAC)
* ``sbx``            backend.training.fast_sbx.FastSBXSAC, the harness's sbx SAC (same jitted update, less
                     host-side work), with the harness's XLA flags (one-thread Eigen)
* ``sbx_tf4``        the same with ``train_freq = gradient_steps = 4`` (the mini configs' setting: the same
                     gradient steps, four per compiled call)
* ``sbx_xnnpack``    FastSBXSAC with ``--xla_cpu_use_xnnpack=true`` added

The candidates alternate (the order rotates every repeat), so load from other jobs on the machine
hits all of them; compare the ratios of one run, not figures across runs. Printed per candidate:
steps per wall second of ``learn`` (env + collection + update), steps per CPU second, and the
update alone (``train(gradient_steps=n)`` on a filled buffer), each beside the floor of floor.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.floor import one_thread_blas  # noqa: E402 - light (stdlib); before numpy: a one-thread BLAS

one_thread_blas()
CANDIDATES = ("sb3", "sb3_fast", "sb3_fast_fused", "sbx_lib", "sbx", "sbx_tf4", "sbx_xnnpack")


def _model(candidate: str, arch: list[int], total: int):
    sys.path.insert(0, str(ROOT))
    from backend.training import algorithms
    from benchmarks.backends import BATCH, LEARNING_STARTS, null_env

    backend = "sbx" if candidate.startswith("sbx") else "sb3"
    if candidate == "sbx_xnnpack":
        os.environ["XLA_FLAGS"] = "--xla_cpu_use_xnnpack=true"
    algorithms.configure_worker(backend, threads=1, device="cpu")
    from backend.config.models import Config

    every = 4 if candidate.endswith("_tf4") else 1
    sac = {"net_arch": list(arch), "batch_size": BATCH, "learning_starts": LEARNING_STARTS}
    cfg = Config.model_validate(
        {
            "agent": {"algorithm": "sac", "backend": backend},
            "sac": sac | {"train_freq": every, "gradient_steps": every},
            "training": {"total_timesteps": total, "device": "cpu"},
        }
    )
    if candidate.startswith("sb3_fast"):
        from backend.training.fast_sac import FastSAC

        kwargs, _ = algorithms.model_kwargs(cfg)
        model = FastSAC("MlpPolicy", null_env(), seed=0, device="cpu", verbose=0, **kwargs)
        if candidate == "sb3_fast_fused":
            for opt in model._optimizers():
                for group in opt.param_groups:
                    group["fused"], group["foreach"] = True, False
        return model
    if candidate in ("sb3", "sbx_lib"):  # the library's own SAC (build_model would give FastSAC / FastSBXSAC)
        kwargs, _ = algorithms.model_kwargs(cfg)
        cls = algorithms.model_class("sac", backend, library=True)
        return cls("MlpPolicy", null_env(), seed=0, device="cpu", verbose=0, **kwargs)
    return algorithms.build_model(cfg, null_env(), seed=0)


def _child(candidate: str, arch: list[int], steps: int, warmup: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.backends import BATCH, LEARNING_STARTS

    model = _model(candidate, arch, LEARNING_STARTS + warmup + steps)
    model.learn(LEARNING_STARTS + warmup)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    updates = max(steps // 2, 1)
    model.train(gradient_steps=updates, batch_size=BATCH)  # SBX compiles one function per gradient_steps
    t0 = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=BATCH)
    update = time.perf_counter() - t0
    return {
        "steps_per_second": steps / wall,
        "steps_per_cpu_second": steps / cpu,
        "updates_per_second": updates / update,
    }


def measure(
    candidates: tuple[str, ...], arch: tuple[int, ...], steps: int, warmup: int, repeats: int, concurrent: bool = False
) -> dict[str, dict[str, float]]:
    """{candidate: median figures}; the order rotates by one every repeat (``concurrent``: a smoke, all at once)."""
    from benchmarks.backends import run_children

    runs: dict[str, list[dict[str, float]]] = {c: [] for c in candidates}
    for r in range(repeats):
        order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
        jobs = [(__file__, [c, ",".join(map(str, arch)), str(steps), str(warmup)]) for c in order]
        for c, m in zip(order, run_children(jobs, concurrent), strict=True):
            runs[c].append(m)
    return {
        c: {k: round(statistics.median(m[k] for m in ms), 2) for k in ms[0]} | {"runs": len(ms)}
        for c, ms in runs.items()
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", type=str, default="128,128")
    ap.add_argument("--candidates", type=str, default=",".join(CANDIDATES))
    ap.add_argument("--concurrent", action="store_true", help="children at once: a smoke only (figures meaningless)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    unknown = set(args.candidates.split(",")) - set(CANDIDATES)
    if unknown:
        ap.error(f"--candidates: unknown {sorted(unknown)}; choose from {','.join(CANDIDATES)}")
    return args


def _print_rows(rows: dict[str, dict[str, float]], floor_steps_per_second: float) -> None:
    from benchmarks.floor import fraction_of_floor

    print("| candidate | learn steps/s | per CPU s | fraction of floor | update alone /s | update fraction |")
    print("|---|---|---|---|---|---|")
    for c, row in rows.items():
        row["learner_fraction_of_floor"] = fraction_of_floor(row["steps_per_second"], floor_steps_per_second)
        row["update_fraction_of_floor"] = fraction_of_floor(row["updates_per_second"], floor_steps_per_second)
        print(
            f"| {c} | {row['steps_per_second']:.1f} | {row['steps_per_cpu_second']:.1f} | "
            f"{row['learner_fraction_of_floor']:.2f} | {row['updates_per_second']:.1f} | "
            f"{row['update_fraction_of_floor']:.2f} |"
        )


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        c, net, steps, warmup = argv[1], argv[2], int(argv[3]), int(argv[4])
        print(json.dumps(_child(c, [int(a) for a in net.split(",")], steps, warmup)))
        return None
    sys.path.insert(0, str(ROOT))
    from benchmarks.backends import BATCH, OBS_SIZE
    from benchmarks.floor import floor_report, machine

    args = _parse(argv)
    arch = tuple(int(a) for a in args.arch.split(","))
    host = machine()
    floor = floor_report(obs_dim=OBS_SIZE, act_dim=1, net_arch=arch, batch=BATCH)
    started = time.perf_counter()
    rows = measure(tuple(args.candidates.split(",")), arch, args.steps, args.warmup, args.repeats, args.concurrent)
    fl = float(floor["floor_steps_per_second"])  # type: ignore[arg-type]
    print(f"floor {arch} b{BATCH}: {fl} steps/s (matmul GFLOP/s {floor['matmul_gflops']}); {host['cpu_model']}")
    _print_rows(rows, fl)
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"({time.perf_counter() - started:.0f} s; load before {host['load_average']}, after {load})")
    settings = dict(vars(args), out=str(args.out) if args.out else None)
    doc = {"machine": host, "floor": floor, "candidates": rows, "load_after": load, "args": settings}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
