"""`wf sanity`: can the harness find an edge that is there, and only then?

Two walk-forward runs on synthetic 1-minute bars, through the normal pipeline:

* **edge** — the next bar's return leans towards the sign of this bar's return
  (``data.synthetic_edge``); the agent sees that bar's ``body`` feature. A short SAC run must
  beat flat and buy-and-hold out of sample, with PSR ≥ 0.95.
* **random walk** — no edge; the agent must not show a significant one (PSR < 0.95).

Policy-collapse warnings (near-constant action, zero trades, always at the limit) are printed
for both runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from backend.core import fsguard, stages
from backend.core.errors import EXIT_OK, EXIT_PARTIAL
from backend.core.jsonio import load_json, write_json
from backend.core.status import Status
from backend.run import driver
from backend.run.options import DriverOptions, SetupOptions

PSR_LEVEL = 0.95
EDGE = 0.3
WINDOWS = [
    {
        "id": "w01",
        "train_start": "2019-01-02",
        "train_end": "2019-01-15",
        "test_start": "2019-01-16",
        "test_end": "2019-01-18",
    }
]
CONFIG: dict[str, Any] = {
    "data": {"source": "synthetic", "symbol": "SYN", "interval": "1m", "synthetic_edge": EDGE, "synthetic_seed": 11},
    "env": {
        "lookback": 1,
        "features": ["body"],
        "rebalance_threshold": 0.05,
        "costs": {"commission_bps": 0.0, "slippage_buy_bps": 0.2, "slippage_sell_bps": 0.2},
    },
    "sac": {"net_arch": [32, 32], "learning_starts": 500, "batch_size": 128, "gamma": 0.9, "learning_rate": 0.001},
    "training": {"total_timesteps": 5000},
}


def run_sanity(
    out: Path, *, timesteps: int, seed: int, quiet: bool, backend: str = "sb3", algorithm: str = "sac"
) -> int:
    for name in ("edge", "random_walk"):  # both runs overwrite their folder: never one reached through a link
        fsguard.check_no_escape(out, out / name, "the sanity folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "windows.json", WINDOWS)
    results = {}
    for name, edge in (("edge", EDGE), ("random_walk", 0.0)):
        cfg = copy.deepcopy(CONFIG)
        cfg["data"]["synthetic_edge"] = edge
        cfg["training"]["total_timesteps"] = timesteps
        cfg["training"]["seed"] = seed
        cfg["agent"] = {"backend": backend, "algorithm": algorithm}
        write_json(out / f"{name}.config.json", cfg)
        s = driver.setup(SetupOptions(config=str(out / f"{name}.config.json"), windows=str(out / "windows.json")))
        stages.emit(True, "Window Setup", driver.window_setup_detail(s), name)
        opts = DriverOptions(output_dir=str(out / name), quiet=True, overwrite=True, no_report=True, prefix=name)
        code = driver.execute(opts, s)
        results[name] = (code, load_json(out / name / "summary.json", "summary"))

    ok = _judge("Sanity (edge)", *results["edge"], _edge_found)
    ok &= _judge("Sanity (random walk)", *results["random_walk"], _no_edge)
    for name, (_, summ) in results.items():
        for warning in summ.get("warnings", []):
            print(f"warning: {name}: {warning}")
    return EXIT_OK if ok else EXIT_PARTIAL  # a check failed: exit 1


def _edge_found(summ: dict[str, Any]) -> tuple[bool, str]:
    w = summ["windows"][0]
    ev, base, psr = w["evaluation"], w["baselines"], summ["statistics"]["psr"]
    beats_both = ev["total_return"] > max(base["flat"]["total_return"], base["buy_and_hold"]["total_return"])
    passed = beats_both and psr is not None and psr >= PSR_LEVEL
    return passed, (
        f"agent {stages.fmt_pct(ev['total_return'])} vs flat {stages.fmt_pct(base['flat']['total_return'])}, "
        f"buy & hold {stages.fmt_pct(base['buy_and_hold']['total_return'])}; PSR {stages.fmt_num(psr)} "
        f"({'≥' if passed else 'needs ≥'} {PSR_LEVEL})"
    )


def _no_edge(summ: dict[str, Any]) -> tuple[bool, str]:
    psr = summ["statistics"]["psr"]
    passed = psr is None or psr < PSR_LEVEL
    return passed, (
        f"agent {stages.fmt_pct(summ['windows'][0]['evaluation']['total_return'])}; PSR {stages.fmt_num(psr)} "
        f"({'<' if passed else 'should be <'} {PSR_LEVEL}: {'no' if passed else 'a spurious'} edge)"
    )


def _judge(stage: str, code: int, summ: dict[str, Any], check) -> bool:
    """Emit the half's marker: a run that did not complete fails; else the check decides."""
    if code != EXIT_OK or summ["windows"][0]["status"] != Status.COMPLETED:
        stages.emit(False, stage, f"the run did not complete (exit {code})")
        return False
    passed, detail = check(summ)
    stages.emit(passed, stage, detail)
    return passed
