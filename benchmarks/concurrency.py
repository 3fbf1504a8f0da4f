"""One learner alone, then N at once: how much two learners on the machine's cores slow each other (issue 25).

Each learner is a fresh process configured as a harness worker (one thread), training a config's algorithm
through ``algorithms.build_model`` on the null env of its spaces (``auto_backend.null_env``: no env cost),
so the figure is the learner's own. The mini sweep's distance from its floor starts here: the learner alone,
then beside another one (docs/performance.md, "where it goes").

    python benchmarks/concurrency.py --config tmp/mini_config_v1_default.json --backend sbx   # ~1 minute
    python benchmarks/concurrency.py --backend sb3 --steps 40 --warmup 20 --net 8 --out /tmp/c.json   # a smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.floor import one_thread_blas  # noqa: E402 - light (stdlib); before numpy: a one-thread BLAS

one_thread_blas()

OBS = 16 * 10 + 3  # the mini configs' observation: lookback 10 × 16 features + 3 state values


def learner(config: str, backend: str, steps: int, warmup: int, net: list[int] | None) -> float:
    """Steps per second of one learner in this process (configured as a one-thread harness worker)."""
    from backend.training.threads import configure_worker

    configure_worker(backend, threads=1, device="cpu")
    from backend.config.models import Config
    from backend.training import algorithms
    from backend.training.auto_backend import concrete, null_env

    cfg = concrete(Config.model_validate(json.loads(Path(config).read_text())), backend)
    sac = {"learning_starts": warmup, "buffer_size": warmup + steps + cfg.sac.batch_size}
    if net:
        sac["net_arch"] = net
    sac["batch_size"] = min(cfg.sac.batch_size, warmup)
    cfg = cfg.model_copy(update={"sac": cfg.sac.model_copy(update=sac)})
    model = algorithms.build_model(cfg, null_env(OBS, 1), seed=0)
    model.learn(warmup + cfg.sac.train_freq * 2)  # past learning_starts: the first update compiles (JAX)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def at_once(n: int, args: argparse.Namespace) -> list[float]:
    """Steps/s of ``n`` learner processes started together."""
    cmd = [sys.executable, __file__, "--child", "--config", args.config, "--backend", args.backend]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.net:
        cmd += ["--net", args.net]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a learner process failed: {cmd}")
    return [float(o.strip().splitlines()[-1]) for o in outs]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "tmp" / "mini_config_v1_default.json"))
    ap.add_argument("--backend", choices=["sb3", "sbx"], default="sbx")
    ap.add_argument("--steps", type=int, default=6000, help="timed env steps per learner")
    ap.add_argument("--warmup", type=int, default=1000, help="learning_starts (random steps, untimed)")
    ap.add_argument("--net", help="override net_arch, e.g. 8 or 128,128")
    ap.add_argument("--workers", type=int, default=2, help="learners at once in the second measurement")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    net = [int(x) for x in args.net.split(",")] if args.net else None
    if args.child:
        print(learner(args.config, args.backend, args.steps, args.warmup, net))
        return {}
    alone = at_once(1, args)[0]
    together = at_once(args.workers, args)
    doc = {
        "backend": args.backend,
        "config": args.config,
        "steps": args.steps,
        "alone_steps_per_second": round(alone, 1),
        "together_steps_per_second": [round(x, 1) for x in together],
        "together_vs_alone": round(sum(together) / len(together) / alone, 3),
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
