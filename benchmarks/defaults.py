"""Measure training speed and out-of-sample results for a few network sizes and train_freq settings.

    python benchmarks/defaults.py --workers 2 --out-dir /tmp/defaults [--timesteps 20000]
    python benchmarks/defaults.py --out-dir /tmp/d --settings net64x64 --windows tmp/mini_window.json \\
        --timesteps 48 --workers 1 --set agent.backend=sb3                              # a smoke: seconds

Each setting is the mini v1 config with one change; all run as one `wf sweep` on
tmp/mini_windows_multi.json (one torch thread per member). Prints a Markdown table: steps/s
(mean over windows, from the members' summary.json), time for 25k steps, and the stitched
out-of-sample return, Sharpe and max drawdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "net256x256": {"sac": {"net_arch": [256, 256]}},  # SB3's default SAC networks
    "net128x128": {"sac": {"net_arch": [128, 128]}},  # the mini configs' default
    "net64x64": {"sac": {"net_arch": [64, 64]}},
    "net64x64_tf2": {"sac": {"net_arch": [64, 64], "train_freq": 2}},  # half the gradient steps
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timesteps", type=int, default=20_000)
    ap.add_argument("--windows", type=Path, default=ROOT / "tmp" / "mini_windows_multi.json")
    ap.add_argument("--settings", type=str, default=",".join(SETTINGS), help="comma-separated subset of SETTINGS")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY.PATH=VALUE", help="to every member")
    args = ap.parse_args(argv)
    unknown = set(args.settings.split(",")) - set(SETTINGS)
    if unknown:
        ap.error(f"--settings: unknown {sorted(unknown)}; choose from {','.join(SETTINGS)}")
    return args


def write_configs(folder: Path, names: list[str]) -> None:
    """One config per setting: the mini v1 config with the setting's change."""
    folder.mkdir(parents=True, exist_ok=True)
    base = json.loads((ROOT / "tmp" / "mini_config_v1_default.json").read_text())
    for name in names:
        cfg = json.loads(json.dumps(base))
        for section, values in SETTINGS[name].items():
            cfg[section].update(values)
        (folder / f"{name}.json").write_text(json.dumps(cfg, indent=2))


def run_sweep(args: argparse.Namespace, configs: list[Path], out: Path) -> None:
    cmd = [sys.executable, "-m", "backend.cli", "sweep", "--configs", *map(str, configs)]
    cmd += ["--windows", str(args.windows), "--timesteps", str(args.timesteps), "--workers", str(args.workers)]
    cmd += ["--set", f"sac.learning_starts={min(1000, args.timesteps // 3)}"]  # tiny smoke sizes must still learn
    for s in args.sets:
        cmd += ["--set", s]
    cmd += ["--output-dir", str(out), "--quiet", "--no-report", "--resume"]
    subprocess.run(cmd, cwd=ROOT, check=False)


def setting_row(member: Path) -> dict[str, float]:
    """Mean steps/s over the member's windows and its stitched out-of-sample figures."""
    summary = json.loads((member / "summary.json").read_text())
    sps = [w["training"]["steps_per_second"] for w in summary["windows"] if w.get("training")]
    agg = summary["aggregate"] or {}
    return {
        "steps_per_second": sum(sps) / len(sps),
        "total_return": agg.get("total_return", 0.0),
        "sharpe": agg.get("sharpe") if agg.get("sharpe") is not None else float("nan"),
        "max_drawdown": agg.get("max_drawdown", 0.0),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = _parse(argv)
    names = args.settings.split(",")
    out = Path(args.out_dir)
    write_configs(out / "configs", names)
    run_sweep(args, [out / "configs" / f"{name}.json" for name in names], out / "sweep")
    rows = {name: setting_row(out / "sweep" / f"{name}_s0") for name in names}
    print("| setting | steps/s | 25k steps | OOS return | OOS Sharpe | OOS max DD |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        rate = r["steps_per_second"]
        print(
            f"| {name} | {rate:.0f} | {25_000 / rate / 60:.1f} min | {r['total_return'] * 100:+.2f}% | "
            f"{r['sharpe']:.2f} | {r['max_drawdown'] * 100:.2f}% |"
        )
    return rows


if __name__ == "__main__":
    main()
