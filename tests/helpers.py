"""Helpers shared by CLI tests."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from click.testing import CliRunner

from backend.cli.app import cli


def wf(*args: str):
    """Run `wf ARGS` in-process; returns click's Result (exit_code, output)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def strict_json(path: Path):
    return json.loads(Path(path).read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def no_temp_files(folder: Path) -> bool:
    return not [p for p in Path(folder).rglob("*") if p.name.startswith(".tmp-")]


@contextlib.contextmanager
def hold_lock(folder: Path, what: str = "run"):
    """A real second process holding the run-folder lock of ``folder``; killed with SIGKILL on exit."""
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time; from pathlib import Path; from backend.run.folder import FolderLock\n"
        f"with FolderLock(Path({str(folder)!r}), {what!r}):\n"
        "    print('locked', flush=True); time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)


def fake_history(calls: list):
    """A stand-in for backend.data.yahoo.fetch_history: 5m bars of regular sessions, no network."""
    import numpy as np
    import pandas as pd

    def fetch(symbol, start, end, interval, cache_dir):
        calls.append((symbol, start, end, interval))
        idx = pd.date_range(f"{start} 09:30", f"{end} 15:55", freq="5min", tz="America/New_York")
        idx = idx[(idx.time >= pd.Timestamp("09:30").time()) & (idx.time < pd.Timestamp("16:00").time())]
        idx = idx[idx.day_of_week < 5]
        px = 50 + np.arange(len(idx)) * 0.01
        return pd.DataFrame(
            {"Open": px, "High": px + 0.05, "Low": px - 0.05, "Close": px + 0.01, "Volume": 1000},
            index=idx.rename("Datetime"),
        )

    return fetch
