"""Plots (PNG, headless matplotlib) and a self-contained report.html for a run folder.

Everything is read from the run folder's files (summary.json, w*/equity.csv,
config.resolved.json), so a report can be rebuilt for any finished run.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.jsonio import load_json, write_atomic, write_text
from backend.stages import fmt_num, fmt_pct


def _figure(frame: pd.DataFrame, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = pd.to_datetime(frame["timestamp"], utc=True)
    x = np.arange(len(frame))
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
    eq = frame["equity"].to_numpy()
    bh = frame["buy_and_hold_equity"].to_numpy()
    axes[0].plot(x, eq / eq[0] if len(eq) else eq, label="agent", color="#1f77b4")
    axes[0].plot(x, bh / bh[0] if len(bh) else bh, label="buy & hold (intraday)", color="#999999")
    if "benchmark_equity" in frame:
        be = frame["benchmark_equity"].to_numpy()
        axes[0].plot(x, be / be[0] if len(be) else be, label="benchmark buy & hold", color="#ff7f0e")
    axes[0].set_ylabel("equity (start = 1)")
    axes[0].legend(loc="best")
    axes[0].set_title(title)
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    axes[1].fill_between(x, (eq / peak - 1) * 100 if len(eq) else eq, 0, color="#d62728", alpha=0.5)
    axes[1].set_ylabel("drawdown %")
    axes[2].step(x, frame["position"].to_numpy(), where="post", color="#2ca02c")
    axes[2].set_ylabel("position")
    ticks = np.linspace(0, max(len(x) - 1, 0), num=min(6, max(len(x), 1))).astype(int)
    axes[2].set_xticks(ticks)
    axes[2].set_xticklabels(
        [times.iloc[i].tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M") for i in ticks],
        rotation=20,
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def _save_png(frame: pd.DataFrame, title: str, path: Path) -> bytes:
    import matplotlib.pyplot as plt

    fig = _figure(frame, title)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return path.read_bytes()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _row(w: dict[str, Any]) -> str:
    e = w.get("evaluation") or {}
    bh = (w.get("baselines") or {}).get("buy_and_hold") or {}
    beats = w.get("beats") or {}
    cells = [
        w["id"],
        f"{w['train_start'][:10]} → {w['train_end'][:10]}",
        f"{w['test_start'][:10]} → {w['test_end'][:10]}",
        w["status"],
        fmt_pct(e.get("total_return")),
        fmt_num(e.get("sharpe")),
        fmt_pct(e.get("max_drawdown")),
        str(e.get("n_trades", "")),
        fmt_pct(bh.get("total_return")),
        ", ".join(k for k, v in beats.items() if v) or "—",
        html.escape((w.get("error") or {}).get("message", "")),
    ]
    return "<tr>" + "".join(f"<td>{html.escape(c) if i < 10 else c}</td>" for i, c in enumerate(cells)) + "</tr>"


def build_report(run_dir: Path) -> Path:
    """Write w*/report.png, aggregate.png and report.html; return the HTML path."""
    summary = load_json(run_dir / "summary.json", "summary")
    config = load_json(run_dir / "config.resolved.json", "config")
    sections, frames = [], []
    for w in summary["windows"]:
        eq_path = run_dir / w["id"] / "equity.csv"
        if w["status"] != "completed" or not eq_path.exists():
            continue
        frame = pd.read_csv(eq_path)
        frames.append(frame)
        png = _save_png(
            frame,
            f"{summary['symbol']} {summary['interval']} — window {w['id']} (test span)",
            run_dir / w["id"] / "report.png",
        )
        sections.append(f"<h3>Window {html.escape(w['id'])}</h3>{_img(png, w['id'])}")
    agg_html = ""
    if frames:
        stitched = pd.concat(frames, ignore_index=True)
        stitched["equity"] = np.cumprod(1 + stitched["net_return"].to_numpy())
        stitched["buy_and_hold_equity"] = np.cumprod(1 + stitched["buy_and_hold_return"].to_numpy())
        if "benchmark_equity" in stitched:
            stitched = stitched.drop(columns=["benchmark_equity"])  # per-window curves do not stitch
        png = _save_png(
            stitched, f"{summary['symbol']} {summary['interval']} — stitched out-of-sample", run_dir / "aggregate.png"
        )
        agg_html = f"<h2>Stitched out-of-sample curve</h2>{_img(png, 'aggregate')}"
    agg = summary.get("aggregate") or {}
    head = ["window", "train", "test", "status", "return", "Sharpe", "max DD", "trades", "B&H return", "beats", "error"]
    synthetic = '<p class="warn">SYNTHETIC data — tests and sanity checks only.</p>' if summary.get("synthetic") else ""
    bh_total = (agg.get("buy_and_hold") or {}).get("total_return")
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Walk-forward report — {html.escape(summary["symbol"])} {html.escape(summary["interval"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }} pre {{ background: #f7f7f7; padding: 1em; overflow: auto; }}
.warn {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>Walk-forward report — {html.escape(summary["symbol"])} {html.escape(summary["interval"])}</h1>
{synthetic}
<p>Status <b>{html.escape(summary["status"])}</b>; source {html.escape(summary["source"])};
config {html.escape(summary["config_hash"])}; data {html.escape(summary["data_hash"])};
started {html.escape(str(summary.get("started_at")))}.</p>
<p>Out of sample (all test spans stitched): return {fmt_pct(agg.get("total_return"))},
Sharpe {fmt_num(agg.get("sharpe"))}, max drawdown {fmt_pct(agg.get("max_drawdown"))},
{agg.get("n_trades", 0)} trades; intraday buy &amp; hold {fmt_pct(bh_total)}.</p>
<h2>Windows</h2>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>
{"".join(_row(w) for w in summary["windows"])}
</table>
{agg_html}
<h2>Per window</h2>
{"".join(sections)}
<h2>Config</h2>
<pre>{html.escape(json.dumps(config, indent=2))}</pre>
</body></html>
"""
    return write_text(run_dir / "report.html", doc)
