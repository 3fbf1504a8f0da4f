"""Measure training speed and out-of-sample results for a few network sizes and train_freq settings.

    python benchmarks/defaults.py --workers 2 --out-dir /tmp/defaults [--timesteps 20000]

Each setting is the mini v1 config with one change; all run as one `wf sweep` on
tmp/mini_windows_multi.json (one torch thread per member). Prints a Markdown table: steps/s
(mean over windows, from training_progress.json), time for 25k steps, and the stitched
out-of-sample return, Sharpe and max drawdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    "net256x256": {"sac": {"net_arch": [256, 256]}},  # SB3's default SAC networks
    "net128x128": {"sac": {"net_arch": [128, 128]}},  # the mini configs' default
    "net64x64": {"sac": {"net_arch": [64, 64]}},
    "net64x64_tf2": {"sac": {"net_arch": [64, 64], "train_freq": 2}},  # half the gradient steps
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timesteps", type=int, default=20_000)
    args = ap.parse_args()
    out = Path(args.out_dir)
    cfg_dir = out / "configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    base = json.loads((ROOT / "tmp" / "mini_config_v1_default.json").read_text())
    for name, change in SETTINGS.items():
        cfg = json.loads(json.dumps(base))
        for section, values in change.items():
            cfg[section].update(values)
        (cfg_dir / f"{name}.json").write_text(json.dumps(cfg, indent=2))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "sweep",
            "--configs",
            str(cfg_dir / "*.json"),
            "--windows",
            str(ROOT / "tmp" / "mini_windows_multi.json"),
            "--timesteps",
            str(args.timesteps),
            "--workers",
            str(args.workers),
            "--output-dir",
            str(out / "sweep"),
            "--quiet",
            "--no-report",
            "--resume",
        ],
        cwd=ROOT,
        check=False,
    )
    print("| setting | steps/s | 25k steps | OOS return | OOS Sharpe | OOS max DD |")
    print("|---|---|---|---|---|---|")
    for name in SETTINGS:
        member = out / "sweep" / f"{name}_s0"
        summary = json.loads((member / "summary.json").read_text())
        sps = [w["training"]["steps_per_second"] for w in summary["windows"] if w.get("training")]
        rate = sum(sps) / len(sps)
        agg = summary["aggregate"] or {}
        print(
            f"| {name} | {rate:.0f} | {25_000 / rate / 60:.1f} min | {agg.get('total_return', 0) * 100:+.2f}% | "
            f"{agg.get('sharpe') or float('nan'):.2f} | {agg.get('max_drawdown', 0) * 100:.2f}% |"
        )


if __name__ == "__main__":
    main()
