"""The command groups of benchmarks/run.py: what a user of `wf` waits for.

* ``wf``              one `wf ...` command: in a subprocess (start-up included: what a user waits for), or in this
                      process through the CLI's click group (the smoke: it shares this process's imports)
* ``bench_dry_run``   wall time of the dry-run command on tmp/mini_windows_multi.json (always a subprocess)
* ``bench_sweep``     `wf sweep` of equal members (one config × seeds) on 1 worker and on 2: the speedup
* ``bench_windows``   `wf run --workers 1` vs `--workers 2`: the 3-window mini run and four equal windows
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.backends import child_env
from benchmarks.common import MINI_CONFIG, MINI_WINDOW, MINI_WINDOWS, ROOT, backend_sets, learning_starts, median_of


def _wf_here(argv: list[str]) -> tuple[int, str]:
    """`wf ARGV` in this process: (exit code, its output)."""
    from backend.cli.app import cli

    out = io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main(args=argv, prog_name="wf", standalone_mode=False)
        except SystemExit as e:  # every wf command ends with sys.exit(code)
            code = e.code
    return (code if isinstance(code, int) else 1 if code else 0), out.getvalue()


def wf(argv: list[str], *, in_process: bool = False, check: bool = True) -> tuple[float, str]:
    """Run `wf ARGV`: (wall seconds, its output). ``check``: a non-zero exit raises, with the output's tail."""
    t0 = time.perf_counter()
    if in_process:
        code, output = _wf_here(argv)
    else:
        cmd = [sys.executable, "-m", "backend.cli", *argv]
        proc = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True)
        code, output = proc.returncode, proc.stdout + proc.stderr
    wall = time.perf_counter() - t0
    if check and code != 0:
        raise RuntimeError(f"wf {' '.join(argv)} exited {code}:\n{output[-3000:]}")
    return wall, output


def task_seconds(summary: dict) -> float:
    """Seconds the run's window tasks were busy: the harness's own count (``backend.run.summary.task_seconds``)."""
    from backend.run.summary import task_seconds as harness_task_seconds

    return harness_task_seconds(summary)


def bench_dry_run(repeats: int) -> float:
    cmd = [sys.executable, str(ROOT / "backend" / "scripts" / "run_walk_forward.py"), "--symbol", "SPY"]
    cmd += ["--source", "sample", "--windows", str(MINI_WINDOWS), "--dry-run"]

    def once() -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=child_env(), check=True, capture_output=True)
        return time.perf_counter() - t0

    if repeats > 1:
        once()  # warm the file cache (one repeat: the smoke, whose figure means nothing)
    return median_of(once, repeats)


def bench_sweep(
    timesteps: int,
    seeds: int = 4,
    backend: str | None = None,
    workers: tuple[int, int] = (1, 2),
    in_process: bool = False,
) -> dict[str, float]:
    """`wf sweep` of one config × ``seeds`` on the mini window, on ``workers[0]`` and ``workers[1]`` workers."""

    def sweep(n: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["sweep", "--configs", str(MINI_CONFIG), "--seeds", str(seeds), "--windows", str(MINI_WINDOW)]
            argv += ["--timesteps", str(timesteps), "--set", learning_starts(timesteps), "--workers", str(n)]
            for s in backend_sets(backend):
                argv += ["--set", s]
            argv += ["--output-dir", tmp, "--quiet", "--no-report"]
            return wf(argv, in_process=in_process)[0]

    one, two = sweep(workers[0]), sweep(workers[1])
    return {"sweep_1_worker_seconds": one, "sweep_2_workers_seconds": two, "sweep_speedup_2_workers": one / two}


def wf_run(windows: Path, workers: int, timesteps: int, backend: str | None, in_process: bool) -> dict[str, float]:
    """One `wf run` of the mini config: wall seconds and the busy seconds of its window tasks."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["run", "--config", str(MINI_CONFIG), "--windows", str(windows), "--timesteps", str(timesteps)]
        argv += ["--workers", str(workers), "--executor", "local", "--set", learning_starts(timesteps)]
        for s in backend_sets(backend):
            argv += ["--set", s]
        argv += ["--output-dir", str(Path(tmp) / "run"), "--quiet", "--no-report"]
        wall = wf(argv, in_process=in_process)[0]
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        return {"wall": wall, "busy": task_seconds(summary)}


def four_windows(folder: Path, count: int = 4) -> Path:
    """Four (or the first ``count``) equal mini windows (17 train sessions, 3 test sessions each) on the sample."""
    spans = [
        ("2019-04-01", "2019-04-23", "2019-04-24", "2019-04-26"),
        ("2019-04-29", "2019-05-21", "2019-05-22", "2019-05-24"),
        ("2019-05-28", "2019-06-19", "2019-06-20", "2019-06-24"),
        ("2019-06-25", "2019-07-18", "2019-07-19", "2019-07-23"),
    ]
    keys = ("train_start", "train_end", "test_start", "test_end")
    path = folder / "four_windows.json"
    path.write_text(json.dumps([dict(zip(keys, s, strict=True)) for s in spans[:count]]))
    return path


def bench_windows(
    timesteps: int,
    backend: str | None = None,
    three_windows: bool = True,
    workers: tuple[int, int] = (1, 2),
    in_process: bool = False,
    equal_windows: int = 4,
) -> dict[str, float | None]:
    """`wf run --workers 2` vs `--workers 1`: the 3-window mini run and four equal windows, side by side.

    Three equal windows on two workers cannot beat a speedup of 1.5 (two rounds of work); four can reach 2.
    ``three_windows=False`` (the smoke) runs only the four (the same code path; its 3-window figures are None);
    ``equal_windows`` < 4 (the smoke) runs fewer of them.
    """
    one3: dict[str, float | None] = {"wall": None}
    two3: dict[str, float | None] = {"wall": None}
    with tempfile.TemporaryDirectory() as tmp:
        four = four_windows(Path(tmp), equal_windows)
        if three_windows:
            one3 = dict(wf_run(MINI_WINDOWS, workers[0], timesteps, backend, in_process))
            two3 = dict(wf_run(MINI_WINDOWS, workers[1], timesteps, backend, in_process))
        one4 = wf_run(four, workers[0], timesteps, backend, in_process)
        two4 = wf_run(four, workers[1], timesteps, backend, in_process)
    w1, w2 = one3["wall"], two3["wall"]
    return {
        "window_run_3w_1_worker_seconds": w1,
        "window_run_3w_2_workers_seconds": w2,
        "window_parallel_speedup_2_workers": w1 / w2 if w1 and w2 else None,
        "window_parallel_time_ratio_2_workers": w2 / w1 if w1 and w2 else None,
        "window_parallel_speedup_bound_3_windows": 1.5,
        "window_parallel_speedup_2_workers_4_windows": one4["wall"] / two4["wall"],
        "window_parallel_idle_share_4_windows": 1.0 - two4["busy"] / (workers[1] * two4["wall"]),
    }
