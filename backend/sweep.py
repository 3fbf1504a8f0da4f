"""Config × seed sweeps: members run as worker processes (or Ray tasks), resumable, compared in one table.

Each member is one `wf run` into <output-dir>/<config stem>_s<seed>/ with its own summary.json;
its stage markers carry its name. The sweep writes sweep.json / sweep.csv (one row per member)
and prints the table sorted by out-of-sample Sharpe.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend import stages
from backend.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, InputError
from backend.jsonio import load_json, write_atomic, write_json
from backend.windows import check_id

ROOT = Path(__file__).resolve().parents[1]
LOCK_NAME = ".sweep.lock"


@dataclass
class Member:
    name: str
    config: str
    seed: int
    output_dir: Path
    status: str = "pending"
    exit_code: int | None = None
    error: str | None = None
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def expand_configs(patterns: list[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not hits:
            raise InputError(f"--configs {pattern!r}: no file matches")
        paths.extend(h for h in hits if h not in paths)
    return paths


def plan(configs: list[str], seeds: list[int], out: Path) -> list[Member]:
    members = []
    for cfg in configs:
        for seed in seeds:
            name = f"{Path(cfg).stem}_s{seed}"
            check_id(name, f"sweep member from --configs {cfg}")
            members.append(Member(name, cfg, seed, out / name))
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"sweep members {dupes} would share a folder (same config file name); rename the configs")
    return members


class SweepLock:
    """A lock file in the sweep folder: a second sweep on the same folder is refused."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_NAME

    def __enter__(self) -> SweepLock:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = self._owner()
                if pid is not None and _alive(pid):
                    raise InputError(
                        f"{self.path.parent}: another sweep (pid {pid}) is running on this folder; wait for it "
                        f"or choose another --output-dir (remove {self.path} if that process is gone)"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale lock of a dead process
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise InputError(f"{self.path}: cannot take the sweep lock")

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def member_command(m: Member, run_args: list[str], resume: bool) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "backend.cli",
        "run",
        "--config",
        m.config,
        "--seed",
        str(m.seed),
        "--output-dir",
        str(m.output_dir),
        "--quiet",
        "--member-name",
        m.name,
        *run_args,
    ]
    cmd.append("--resume" if resume else "--overwrite")
    return cmd


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def run_member_process(cmd: list[str], on_line: Callable[[str], None] | None = None) -> tuple[int, list[str]]:
    """Run one member as a child process (one torch thread); stream its stdout lines."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        cmd, cwd=os.getcwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)
        return proc.wait(), lines
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def interrupt_members(timeout: float = 60.0) -> None:
    """Ctrl-C / SIGTERM on the sweep: ask every running member to stop cleanly (SIGINT), then wait."""
    import signal

    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.time() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _already_done(m: Member, hashes: dict[str, str] | None) -> bool:
    path = m.output_dir / "summary.json"
    if hashes is None or not path.exists():
        return False
    try:
        s = load_json(path, "summary")
    except InputError:
        return False
    return (
        s.get("status") == "completed"
        and s.get("config_hash") == hashes["config_hash"]
        and s.get("data_hash") == hashes["data_hash"]
        and s.get("windows_hash") == hashes["windows_hash"]
    )


def member_hashes(m: Member, run_kwargs: dict[str, Any]) -> dict[str, str] | None:
    """What the member would run now (config, data, windows); None if it cannot be set up."""
    from backend import pipeline
    from backend.config import config_hash

    try:
        s = pipeline.setup(pipeline.RunOptions(config=m.config, seed=m.seed, **run_kwargs))
    except Exception:
        return None
    return {
        "config_hash": config_hash(s.cfg),
        "data_hash": s.bars.data_hash(),
        "windows_hash": pipeline.windows_hash(s),
    }


def _last_failure(lines: list[str]) -> str | None:
    fails = [ln for ln in lines if "[STAGE ❌]" in ln or "[STAGE FAIL]" in ln]
    return fails[-1].split("] ", 2)[-1] if fails else (lines[-1] if lines else None)


def execute(
    members: list[Member],
    run_args: list[str],
    run_kwargs: dict[str, Any],
    workers: int,
    resume: bool,
    quiet: bool,
    executor: str = "local",
    ray_address: str | None = None,
) -> int:
    """Run every member; returns 0 if all completed, else 1."""
    lock = threading.Lock()

    def echo(line: str) -> None:
        if line.startswith("[") and ("STAGE" in line):
            with lock:
                print(line, flush=True)

    todo = []
    for m in members:
        if resume and _already_done(m, member_hashes(m, run_kwargs)):
            m.status, m.exit_code = "skipped", 0
            stages.emit(True, "Sweep member", "completed earlier, not rerun (--resume)", m.name)
        else:
            todo.append(m)
    bar = None
    if not quiet and sys.stdout.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="sweep members", unit="member", leave=False)
    from backend.pipeline import sigterm_as_interrupt

    interrupted = False
    with sigterm_as_interrupt():
        if executor == "ray":
            _run_ray(todo, run_args, resume, workers, ray_address, echo, bar)
        else:
            pool = ThreadPoolExecutor(max_workers=max(1, workers))
            futures = {pool.submit(_timed, m, member_command(m, run_args, resume), echo): m for m in todo}
            try:
                for fut in as_completed(futures):
                    fut.result()
                    if bar is not None:
                        bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
                for fut in futures:
                    fut.cancel()  # members not started yet stay pending
                interrupt_members()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    if bar is not None:
        bar.close()
    if interrupted:
        for m in members:
            if m.status == "pending":
                m.status, m.error = "interrupted", "not run: the sweep was interrupted"
        return EXIT_INTERRUPTED
    return EXIT_OK if all(m.status in ("completed", "skipped") for m in members) else EXIT_PARTIAL


def _timed(m: Member, cmd: list[str], echo: Callable[[str], None]) -> None:
    t0 = time.perf_counter()
    code, lines = run_member_process(cmd, echo)
    _finish(m, code, lines, time.perf_counter() - t0)


def _finish(m: Member, code: int, lines: list[str], seconds: float) -> None:
    m.exit_code, m.lines, m.seconds = code, lines, seconds
    m.status = "completed" if code == 0 else ("interrupted" if code == 130 else "failed")
    m.error = None if code == 0 else _last_failure(lines)


def _run_ray(
    todo: list[Member],
    run_args: list[str],
    resume: bool,
    workers: int,
    address: str | None,
    echo: Callable[[str], None],
    bar: Any,
) -> None:
    try:
        import ray
    except ImportError as e:
        raise InputError("--executor ray needs Ray: pip install '.[ray]' (or pip install ray)") from e
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = max(1, workers)
        ray.init(**kwargs)
    gpus = 0.0
    try:
        import torch

        gpus = 1.0 if torch.cuda.is_available() else 0.0
    except ImportError:
        pass
    task = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_member)
    refs = {task.remote(member_command(m, run_args, resume), os.getcwd()): m for m in todo}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            m = refs[ref]
            code, lines, seconds = ray.get(ref)
            for line in lines:
                echo(line)
            _finish(m, code, lines, seconds)
            if bar is not None:
                bar.update(1)


def _ray_member(cmd: list[str], cwd: str) -> tuple[int, list[str], float]:
    os.chdir(cwd)  # shared storage: the same folder layout on every node
    t0 = time.perf_counter()
    code, lines = run_member_process(cmd)
    return code, lines, time.perf_counter() - t0


# ------------------------------------------------------------------------------------ comparison


def _window_sharpe(w: dict[str, Any]) -> float | None:
    if w.get("evaluation"):
        return w["evaluation"].get("sharpe")
    return ((w.get("seed_spread") or {}).get("sharpe") or {}).get("mean")


def member_row(summary_path: Path, name: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """One comparison row from a run's summary.json."""
    import numpy as np

    s = load_json(summary_path, "summary")
    agg = s.get("aggregate") or {}
    if s.get("kind") == "multi_seed":  # no single curve: compare the mean over seeds
        agg = {k: v["mean"] for k, v in (s.get("aggregate_spread") or {}).items()}
    wins = [w for w in s.get("windows", []) if w.get("status") == "completed"]
    sharpes = [x for x in (_window_sharpe(w) for w in wins) if x is not None]
    beat = sum(1 for w in wins if (w.get("beats") or {}).get("buy_and_hold"))
    cfg = (
        load_json(summary_path.parent / "config.resolved.json", "config")
        if (summary_path.parent / "config.resolved.json").exists()
        else {}
    )
    return {
        "name": name or summary_path.parent.name,
        "path": str(summary_path.parent),
        "status": s.get("status"),
        "config_hash": s.get("config_hash"),
        "seed": seed if seed is not None else (cfg.get("training") or {}).get("seed"),
        "oos_total_return": agg.get("total_return"),
        "oos_sharpe": agg.get("sharpe"),
        "oos_sortino": agg.get("sortino"),
        "oos_max_drawdown": agg.get("max_drawdown"),
        "oos_n_trades": agg.get("n_trades"),
        "oos_n_bars": agg.get("n_bars"),
        "mean_window_sharpe": float(np.mean(sharpes)) if sharpes else None,
        "median_window_sharpe": float(np.median(sharpes)) if sharpes else None,
        "windows_completed": len(wins),
        "windows": len(s.get("windows", [])),
        "windows_beating_buy_and_hold": beat,
        "psr": (s.get("statistics") or {}).get("psr"),
        "sharpe_ci_low": (s.get("statistics") or {}).get("sharpe_ci_low"),
        "sharpe_ci_high": (s.get("statistics") or {}).get("sharpe_ci_high"),
        "_stats": s.get("statistics"),
    }


SORT_KEYS = (
    "oos_sharpe",
    "oos_total_return",
    "oos_max_drawdown",
    "mean_window_sharpe",
    "median_window_sharpe",
    "oos_sortino",
    "name",
)


def sort_rows(rows: list[dict[str, Any]], key: str = "oos_sharpe") -> list[dict[str, Any]]:
    if key not in SORT_KEYS:
        raise InputError(f"--sort {key!r}: use one of {', '.join(SORT_KEYS)}")
    if key == "name":
        return sorted(rows, key=lambda r: r["name"])
    return sorted(rows, key=lambda r: (r.get(key) is None, -(r.get(key) or 0.0)))


def format_table(rows: list[dict[str, Any]]) -> str:
    from backend.stages import fmt_num, fmt_pct

    trials = next((r["dsr_n_trials"] for r in rows if r.get("dsr_n_trials")), None)
    dsr_head = f"DSR(N={trials})" if trials else "DSR"
    head = (
        f"{'member':<28}{'status':<12}{'OOS Sharpe':>11}{'OOS return':>12}{'max DD':>9}{'trades':>8}"
        f"{'mean Sh':>9}{'med Sh':>9}{'beat B&H':>10}{'PSR':>7}{dsr_head:>11}"
    )
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r['name'][:27]:<28}{(r.get('status') or '-'):<12}{fmt_num(r.get('oos_sharpe')):>11}"
            f"{fmt_pct(r.get('oos_total_return')):>12}{fmt_pct(r.get('oos_max_drawdown')):>9}"
            f"{(r.get('oos_n_trades') if r.get('oos_n_trades') is not None else '-')!s:>8}"
            f"{fmt_num(r.get('mean_window_sharpe')):>9}{fmt_num(r.get('median_window_sharpe')):>9}"
            f"{str(r.get('windows_beating_buy_and_hold', 0)) + '/' + str(r.get('windows', 0)):>10}"
            f"{fmt_num(r.get('psr')):>7}{fmt_num(r.get('dsr')):>11}"
        )
    return "\n".join(out)


def rows_for(members: list[Member]) -> list[dict[str, Any]]:
    rows = []
    for m in members:
        path = m.output_dir / "summary.json"
        if path.exists() and m.exit_code != 2:
            row = member_row(path, m.name, m.seed)
        else:
            row = {"name": m.name, "path": str(m.output_dir), "status": "failed", "config_hash": None, "seed": m.seed}
        row["status"] = row["status"] if m.status in ("completed", "skipped") else m.status
        row.update(
            config_path=m.config,
            exit_code=m.exit_code,
            error=m.error,
            seconds=round(m.seconds, 2),
            skipped=m.status == "skipped",
        )
        rows.append(row)
    return rows


def write_results(out: Path, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    import csv
    import io

    write_json(out / "sweep.json", {"schema_version": 1, **extra, "members": rows})
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    write_atomic(out / "sweep.csv", lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def collect(paths: list[str]) -> list[dict[str, Any]]:
    """Rows for `wf compare`: run folders (summary.json) and sweep folders (sweep.json)."""
    rows = []
    for p in paths:
        folder = Path(p)
        if (folder / "sweep.json").exists():
            doc = load_json(folder / "sweep.json", "sweep")
            members = []
            for r in doc.get("members", []):
                summary = Path(r["path"]) / "summary.json"
                members.append({**r, **member_row(summary, r["name"], r.get("seed"))} if summary.exists() else r)
            sweep_statistics(members)
            rows.extend(members)
        elif (folder / "summary.json").exists():
            row = member_row(folder / "summary.json")
            row.pop("_stats", None)
            rows.append(row)
        else:
            raise InputError(f"{folder}: neither a run folder (summary.json) nor a sweep folder (sweep.json)")
    return rows


def sweep_statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Deflated Sharpe ratio of every member, with the number of trials taken from the sweep itself.

    Trials are the members that produced an out-of-sample Sharpe; the variance of the trials'
    per-bar Sharpe ratios sets the expected maximum Sharpe of unskilled trials.
    """
    import numpy as np

    from backend.evaluation.statistics import deflated_sharpe_ratio, expected_max_sharpe

    with_sr = [r for r in rows if r.get("_stats") and r["_stats"].get("sharpe_per_bar") is not None]
    n_trials = len(with_sr)
    srs = np.array([r["_stats"]["sharpe_per_bar"] for r in with_sr])
    variance = float(srs.var(ddof=1)) if n_trials > 1 else 0.0
    counted = {id(r) for r in with_sr}
    for r in rows:
        st = r.pop("_stats", None) or {}
        r["dsr"] = None
        if id(r) in counted:
            r["dsr"] = deflated_sharpe_ratio(
                st["sharpe_per_bar"], st["n_obs"], st["skew"], st["kurtosis"], n_trials, variance
            )
        r["dsr_n_trials"] = n_trials
    return {
        "n_trials": n_trials,
        "n_members": len(rows),
        "sharpe_per_bar_variance": variance,
        "expected_max_sharpe_per_bar": expected_max_sharpe(n_trials, variance) if n_trials else None,
    }
