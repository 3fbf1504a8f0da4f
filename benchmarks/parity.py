"""Learning parity of two settings: the same sweep (configs × windows, same seeds) run two ways.

    python benchmarks/parity.py SWEEP_SB3 SWEEP_SBX [--out parity.json]          # two backends
    python benchmarks/parity.py SWEEP_A SWEEP_B --labels tf1,tf4                 # any two settings

Prints, per config: out-of-sample Sharpe, return and trades on each backend, the mean training
episode reward over the first and the last fifth of training (read from the TensorBoard events:
``episode/reward``), and the training speed — so learning curves and results can be compared
side by side. One seed per config cannot tell small differences apart: the table also prints the
spread of the per-window Sharpe ratios, the noise any difference must exceed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def episode_rewards(tb_dir: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if "episode/reward" not in acc.Tags().get("scalars", []):
        return []
    return [(e.step, e.value) for e in acc.Scalars("episode/reward")]


def curve(member: Path) -> dict[str, float | None]:
    """Mean episode reward over the first and last fifth of training, averaged over windows."""
    first, last = [], []
    for tb in sorted((member / "tensorboard").glob("w*")):
        points = episode_rewards(tb)
        if len(points) < 10:
            continue
        k = max(1, len(points) // 5)
        first.append(statistics.mean(v for _, v in points[:k]))
        last.append(statistics.mean(v for _, v in points[-k:]))
    return {
        "reward_first_fifth": statistics.mean(first) if first else None,
        "reward_last_fifth": statistics.mean(last) if last else None,
    }


def member_figures(member: Path) -> dict[str, object]:
    s = json.loads((member / "summary.json").read_text())
    agg = s.get("aggregate") or {}
    wins = [w for w in s["windows"] if w.get("status") == "completed"]
    sharpes = [w["evaluation"]["sharpe"] for w in wins if w["evaluation"].get("sharpe") is not None]
    sps = [w["training"]["steps_per_second"] for w in wins]
    return {
        "oos_sharpe": agg.get("sharpe"),
        "oos_return": agg.get("total_return"),
        "oos_trades": agg.get("n_trades"),
        "window_sharpe_sd": statistics.stdev(sharpes) if len(sharpes) > 1 else None,
        "steps_per_second": statistics.mean(sps) if sps else None,
        "collapsed": any("collapsed" in w for w in s.get("warnings", [])),
        **curve(member),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, object]]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="sweep folder of the first setting (sb3 by default)")
    parser.add_argument("second", type=Path, help="sweep folder of the second setting (sbx by default)")
    parser.add_argument("--labels", default="sb3,sbx", help="names of the two settings in the table (default sb3,sbx)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    labels = args.labels.split(",")
    if len(labels) != 2 or not all(labels):
        parser.error(f"--labels: two comma-separated names, got {args.labels!r}")
    rows: dict[str, dict[str, dict[str, object]]] = {}
    for backend, folder in zip(labels, (args.first, args.second), strict=True):
        for member in sorted(p for p in folder.iterdir() if (p / "summary.json").exists()):
            rows.setdefault(member.name, {})[backend] = member_figures(member)

    def f(x: object, pct: bool = False) -> str:
        if x is None:
            return "n/a"
        return f"{x * 100:+.2f}%" if pct else f"{x:.2f}" if isinstance(x, float) else str(x)

    head = f"{'config':<34}{'setting':<8}{'OOS Sharpe':>11}{'OOS ret':>9}{'trades':>7}{'win Sh sd':>10}"
    head += f"{'reward 1st/5':>13}{'reward last/5':>14}{'steps/s':>9}"
    print(head)
    for name, by in rows.items():
        for backend, r in by.items():
            print(
                f"{name:<34}{backend:<8}{f(r['oos_sharpe']):>11}{f(r['oos_return'], True):>9}{f(r['oos_trades']):>7}"
                f"{f(r['window_sharpe_sd']):>10}{f(r['reward_first_fifth']):>13}{f(r['reward_last_fifth']):>14}"
                f"{f(r['steps_per_second']):>9}"
            )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
