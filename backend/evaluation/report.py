"""Plots (PNG, headless matplotlib) and a self-contained report.html for a run folder.

Everything is read from the run folder's files (summary.json, w*/equity.csv, config.resolved.json),
so a report can be rebuilt for any finished run. The page stands alone: its title names the symbol,
interval, config and seed; it holds the stitched out-of-sample curve with the window boundaries,
the probabilistic Sharpe ratio and the Sharpe CI, every baseline with "beats", the cost sensitivity,
the diagnostics (collapsed policies) and the gates, the annualisation used, and the config.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.core.jsonio import load_json, write_atomic, write_text
from backend.core.stages import fmt_num, fmt_pct
from backend.core.status import Status

WIDTH_IN, DPI = 12.4, 100  # 1240 px: the page's width in a 1300-px browser window
BASELINES = ("buy_and_hold", "flat", "random", "momentum")
BASELINE_LABEL = {
    "buy_and_hold": "buy & hold (intraday)",
    "flat": "flat",
    "random": "random (agent's turnover)",
    "momentum": "momentum (intraday)",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2em auto; padding: 0 1.5em;
       max-width: 1250px; color: #222; font-size: 15px; line-height: 1.4; }
h1 { font-size: 1.7em; margin-bottom: 0.1em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 14px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { width: 100%; height: auto; display: block; }
pre { background: #f7f7f7; padding: 1em; overflow: auto; font-size: 13px; }
.flex { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
.box { padding: 0.5em 1em; border-radius: 6px; margin: 0.8em 0; }
.bad { background: #fdecea; border: 1px solid #e0a0a0; } .note { background: #fff6e0; border: 1px solid #dc9; }
.yes { color: #1a7f37; font-weight: bold; } .no { color: #b00; }
.how { color: #555; font-style: italic; font-size: 14px; }
"""


# ----------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(frame: pd.DataFrame, title: str, tz: str, bounds: list[tuple[int, str]] | None = None):
    """Equity (agent vs intraday buy-and-hold, start = 1), drawdown and position over the test bars.

    ``bounds``: (first bar, window id) of each window on a stitched curve: dashed lines, labelled.
    """
    plt = _plt()
    times = pd.to_datetime(frame["timestamp"], utc=True)
    x = np.arange(len(frame))
    fig, axes = plt.subplots(3, 1, figsize=(WIDTH_IN, 7.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]})
    eq = frame["equity"].to_numpy(dtype=np.float64)
    bh = frame["buy_and_hold_equity"].to_numpy(dtype=np.float64)
    axes[0].plot(x, eq / eq[0] if len(eq) else eq, label="agent", color="#1f77b4", lw=1.4)
    axes[0].plot(x, bh / bh[0] if len(bh) else bh, label="buy & hold (intraday)", color="#999999", lw=1.2)
    if "benchmark_equity" in frame:
        be = frame["benchmark_equity"].to_numpy(dtype=np.float64)
        axes[0].plot(x, be / be[0] if len(be) else be, label="benchmark buy & hold", color="#ff7f0e", lw=1.0)
    axes[0].set_ylabel("equity (start = 1)")
    axes[0].legend(loc="upper left", fontsize=9)
    axes[0].set_title(title, fontsize=12, pad=16 if bounds else 6)
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    axes[1].fill_between(x, (eq / peak - 1) * 100 if len(eq) else eq, 0, color="#d62728", alpha=0.5, step="post")
    axes[1].set_ylabel("drawdown %")
    axes[2].step(x, frame["position"].to_numpy(), where="post", color="#2ca02c", lw=1.0)
    axes[2].axhline(0, color="#888", lw=0.6)
    axes[2].set_ylabel("position")
    for k, wid in bounds or []:
        for ax in axes:
            if k > 0:
                ax.axvline(k - 0.5, color="#555", ls="--", lw=0.9)
        axes[0].text(k, 1.01, wid, transform=axes[0].get_xaxis_transform(), va="bottom", fontsize=9, color="#333")
    ticks = np.linspace(0, max(len(x) - 1, 0), num=min(8, max(len(x), 1))).astype(int)
    local = times.dt.tz_convert(tz)
    labels = [local.iloc[i].strftime("%Y-%m-%d %H:%M") for i in ticks]
    axes[2].set_xticks(ticks, labels, fontsize=8)
    axes[2].set_xlim(-0.5, max(len(x) - 0.5, 0.5))
    axes[2].set_xlabel(f"test bars ({tz}; the gaps between sessions and windows are left out)", fontsize=9)
    fig.tight_layout()
    return fig


def _save_png(fig: Any, path: Path) -> bytes:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    _plt().close(fig)
    return path.read_bytes()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


# ----------------------------------------------------------------------------- tables


def _e(x: Any) -> str:
    return html.escape("—" if x is None else str(x))


def _table(head: list[str], rows: list[list[str]], left: int = 1, left_last: bool = False) -> str:
    """HTML table; cells are HTML already; the first ``left`` columns (and the last) are left-aligned."""

    def cls(i: int) -> str:
        return ' class="l"' if i < left or (left_last and i == len(head) - 1) else ""

    th = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _yes(flag: Any) -> str:
    if flag is None:
        return "—"
    return '<span class="yes">✓ beaten</span>' if flag else '<span class="no">✗</span>'


def _day(stamp: Any) -> str:
    return html.escape(str(stamp or "")[:10])


def _trades(n: Any) -> str:
    return "—" if n is None else f"{n:,}" if isinstance(n, int) else f"{n:.1f}"


def _headline_table(agg: dict[str, Any]) -> str:
    bh = agg.get("buy_and_hold") or {}
    rows = [
        ("total return", fmt_pct(agg.get("total_return")), fmt_pct(bh.get("total_return"))),
        ("Sharpe (annualised)", fmt_num(agg.get("sharpe")), fmt_num(bh.get("sharpe"))),
        ("Sortino (annualised)", fmt_num(agg.get("sortino")), fmt_num(bh.get("sortino"))),
        ("max drawdown", fmt_pct(agg.get("max_drawdown")), fmt_pct(bh.get("max_drawdown"))),
        ("volatility (annualised)", fmt_pct(agg.get("volatility"), False), fmt_pct(bh.get("volatility"), False)),
        ("trades (round trips)", _trades(agg.get("n_trades")), _trades(bh.get("n_trades"))),
        ("win rate", fmt_pct(agg.get("win_rate"), False), fmt_pct(bh.get("win_rate"), False)),
        ("exposure", fmt_pct(agg.get("exposure"), False), fmt_pct(bh.get("exposure"), False)),
        ("turnover per session", fmt_num(agg.get("turnover")), fmt_num(bh.get("turnover"))),
        ("costs paid", fmt_pct(agg.get("costs_paid"), False), fmt_pct(bh.get("costs_paid"), False)),
        ("bars / sessions", f"{agg.get('n_bars', 0):,} / {agg.get('n_sessions', 0):,}", ""),
    ]
    return _table(["stitched out of sample", "agent", "buy & hold"], [list(r) for r in rows])


def _statistics_table(st: dict[str, Any] | None) -> str:
    if not st:
        return "<p>No statistics (no completed window).</p>"
    conf = st.get("sharpe_ci_confidence") or 0.95
    ci = (
        f"[{fmt_num(st.get('sharpe_ci_low'))}, {fmt_num(st.get('sharpe_ci_high'))}]"
        if st.get("sharpe_ci_low") is not None
        else "—"
    )
    mintrl = st.get("min_track_record_bars")
    rows = [
        ["PSR", fmt_num(st.get("psr")), "P(true Sharpe > 0), skew and kurtosis included"],
        [
            f"Sharpe {conf:.0%} CI",
            ci,
            f"annualised; stationary bootstrap, mean block {fmt_num(st.get('sharpe_ci_mean_block'), 1)} bars",
        ],
        ["Sharpe per bar", fmt_num(st.get("sharpe_per_bar"), 4), "not annualised"],
        ["skew / kurtosis", f"{fmt_num(st.get('skew'))} / {fmt_num(st.get('kurtosis'))}", "of bar returns"],
        ["bars", _trades(st.get("n_obs")), "stitched test bars"],
        [
            "min. track record",
            "—" if mintrl is None else f"{mintrl:,.0f} bars",
            "for PSR ≥ 95 % at this Sharpe (— if ≤ 0)",
        ],
    ]
    return _table(["statistic", "value", "what it is"], rows, left=1, left_last=True)


def _annualisation(a: dict[str, Any] | None) -> str:
    if not a:
        return ""
    return (
        f"<p class=how>Annualisation: {a.get('bars_per_year', 0):,} bars a year = "
        f"{a.get('sessions_per_year')} sessions × {a.get('bars_per_session')} bars of {_e(a.get('interval'))} "
        f"({_e(a.get('calendar'))}; {_e(a.get('basis'))}).</p>"
    )


def _windows_table(windows: list[dict[str, Any]]) -> str:
    head = ["window", "train", "test", "status", "return", "Sharpe", "max DD", "trades", "exposure", "steps", "note"]
    rows = []
    for w in windows:
        e, t = w.get("evaluation") or {}, w.get("training") or {}
        notes = []
        if (w.get("diagnostics") or {}).get("warnings"):
            notes.append('<span class="no">policy collapsed</span>')
        if (w.get("gates") or {}).get("passed") is False:
            notes.append('<span class="no">gates failed</span>')
        if t.get("warm_start_from"):
            notes.append(f"warm start from {_e(t['warm_start_from'])}")
        if w.get("error"):
            notes.append(_e(f"{w['error'].get('type')}: {w['error'].get('message')}"))
        rows.append(
            [
                _e(w["id"]),
                f"{_day(w['train_start'])} → {_day(w['train_end'])} ({w.get('train_bars', 0):,} bars)",
                f"{_day(w['test_start'])} → {_day(w['test_end'])} ({w.get('test_bars', 0):,} bars)",
                _e(w["status"]),
                fmt_pct(e.get("total_return")),
                fmt_num(e.get("sharpe")),
                fmt_pct(e.get("max_drawdown")),
                _trades(e.get("n_trades")),
                fmt_pct(e.get("exposure"), False),
                _trades(t.get("timesteps")),
                "; ".join(notes),
            ]
        )
    return _table(head, rows, left=4, left_last=True)


def _baselines_table(windows: list[dict[str, Any]]) -> str:
    names = [b for b in BASELINES if any(b in (w.get("baselines") or {}) for w in windows)]
    names += sorted({b for w in windows for b in (w.get("baselines") or {}) if b not in names})
    head = ["window", "agent"] + [BASELINE_LABEL.get(b, b) for b in names]
    rows = []
    for w in windows:
        if w.get("status") != Status.COMPLETED:
            continue
        e, base, beats = w.get("evaluation") or {}, w.get("baselines") or {}, w.get("beats") or {}
        cells = [_e(w["id"]), f"{fmt_pct(e.get('total_return'))}<br><small>Sharpe {fmt_num(e.get('sharpe'))}</small>"]
        for b in names:
            m = base.get(b) or {}
            cells.append(
                f"{fmt_pct(m.get('total_return'))} {_yes(beats.get(b))}<br><small>Sharpe {fmt_num(m.get('sharpe'))}"
                "</small>"
            )
        rows.append(cells)
    count = {b: sum(1 for w in windows if (w.get("beats") or {}).get(b)) for b in names}
    done = sum(1 for w in windows if w.get("status") == Status.COMPLETED)
    rows.append(["<b>beaten in</b>", ""] + [f"<b>{count[b]}/{done} windows</b>" for b in names])
    return _table(head, rows)


def _benchmark_table(windows: list[dict[str, Any]]) -> str:
    """The agent against the benchmark symbol (``--benchmark``), per window; empty without one."""
    rows = []
    for w in windows:
        b = w.get("benchmark") or {}
        if not b:
            continue
        rel, bh = b.get("relative") or {}, b.get("buy_and_hold") or {}
        rows.append(
            [
                _e(w["id"]),
                fmt_pct(bh.get("total_return")),
                fmt_pct(rel.get("excess_total_return")),
                fmt_pct(rel.get("tracking_error"), False),
                fmt_num(rel.get("information_ratio")),
                fmt_num(rel.get("beta")),
            ]
        )
    if not rows:
        return ""
    symbol = next((w["benchmark"].get("symbol") for w in windows if w.get("benchmark")), "")
    head = ["window", f"{symbol} buy & hold", "excess return", "tracking error", "information ratio", "beta"]
    return f"<h3>Against the benchmark {_e(symbol)}</h3>" + _table(head, rows)


def _costs_table(windows: list[dict[str, Any]]) -> str:
    scales = list(dict.fromkeys(s for w in windows for s in (w.get("cost_sensitivity") or {})))
    if not scales:
        return "<p>No cost sensitivity recorded.</p>"
    head = ["window"] + [f"{s} costs: return" for s in scales] + [f"{s}: Sharpe" for s in scales]
    rows = []
    for w in windows:
        cs = w.get("cost_sensitivity") or {}
        if not cs:
            continue
        rows.append(
            [_e(w["id"])]
            + [fmt_pct((cs.get(s) or {}).get("total_return")) for s in scales]
            + [fmt_num((cs.get(s) or {}).get("sharpe")) for s in scales]
        )
    return _table(head, rows)


def _diagnostics_table(windows: list[dict[str, Any]]) -> str:
    head = ["window", "action std", "at position limit", "gates", "warnings"]
    rows = []
    for w in windows:
        d, g = w.get("diagnostics") or {}, w.get("gates")
        if w.get("status") != Status.COMPLETED:
            continue
        if g:
            checks = ", ".join(
                f"{html.escape(k)} {'✓' if v else ('?' if v is None else '✗')}" for k, v in g["checks"].items()
            )
            gates = f"{'<span class=yes>passed</span>' if g['passed'] else '<span class=no>failed</span>'}: {checks}"
        else:
            gates = "none set"
        warns = "<br>".join(f'<span class="no">{html.escape(x)}</span>' for x in d.get("warnings") or []) or "—"
        rows.append(
            [
                _e(w["id"]),
                fmt_num(d.get("action_std"), 3),
                fmt_pct(d.get("at_limit_fraction"), False),
                gates,
                warns,
            ]
        )
    return _table(head, rows, left=1, left_last=True)


# ----------------------------------------------------------------------------- the page


def _title(summary: dict[str, Any], config: dict[str, Any]) -> str:
    name = Path(str(summary["config_path"])).stem if summary.get("config_path") else "config"
    seed = summary.get("seed", (config.get("training") or {}).get("seed"))
    return f"{summary['symbol']} {summary['interval']} — {name}, seed {seed}"


def _read_equity(path: Path) -> pd.DataFrame:
    """equity.csv, losslessly: pandas 3 parses floats round-trip by default (and warns on the argument)."""
    if int(pd.__version__.split(".")[0]) < 3:
        return pd.read_csv(path, float_precision="round_trip")
    return pd.read_csv(path)


def _banners(summary: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    out = []
    if summary.get("synthetic"):
        out.append('<div class="box bad"><b>SYNTHETIC data</b> — tests and sanity checks only.</div>')
    collapsed = [w for w in windows if (w.get("diagnostics") or {}).get("warnings")]
    if collapsed:
        items = "".join(
            f"<li>{_e(w['id'])}: {html.escape('; '.join(w['diagnostics']['warnings']))}</li>" for w in collapsed
        )
        out.append(
            f'<div class="box bad"><b>Policy collapsed in {len(collapsed)} of {len(windows)} windows</b> — '
            f"the agent's result there is not a trading policy's (see Diagnostics).<ul>{items}</ul></div>"
        )
    gates = summary.get("gates")
    if gates and gates.get("windows_passed", 0) < gates.get("windows_checked", 0):
        out.append(
            f'<div class="box bad"><b>Gates</b>: {gates["windows_passed"]} of {gates["windows_checked"]} windows '
            "passed (see Diagnostics and gates).</div>"
        )
    others = [w for w in summary.get("warnings") or [] if "policy collapsed" not in w]
    if others:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in others)
        out.append(f'<div class="box note"><b>Warnings</b><ul>{items}</ul></div>')
    failed = [w for w in windows if w.get("status") not in (Status.COMPLETED, Status.PENDING)]
    if failed:
        out.append(
            f'<div class="box note">{len(failed)} window(s) did not complete: '
            f"{', '.join(_e(w['id']) for w in failed)} — they are left out of the curve and the statistics.</div>"
        )
    return "".join(out)


def _plots(run_dir: Path, summary: dict[str, Any], tz: str) -> tuple[str, str]:
    """(stitched curve HTML, per-window plots HTML); one completed window gives one plot, not two."""
    done = [
        w for w in summary["windows"] if w["status"] == Status.COMPLETED and (run_dir / w["id"] / "equity.csv").exists()
    ]
    done.sort(key=lambda w: str(w["test_start"]))
    frames = {w["id"]: _read_equity(run_dir / w["id"] / "equity.csv") for w in done}
    label = f"{summary['symbol']} {summary['interval']}"
    per_window = []
    pngs: dict[str, bytes] = {}
    for w in done:
        fig = _figure(frames[w["id"]], f"{label} — window {w['id']} (test span)", tz)
        pngs[w["id"]] = _save_png(fig, run_dir / w["id"] / "report.png")
        per_window.append(f"<h3>Window {_e(w['id'])}</h3>{_img(pngs[w['id']], w['id'])}")
    if not done:
        return "<p>No completed window: nothing to plot.</p>", ""
    if len(done) == 1:  # the window's own plot is the whole curve: shown once (aggregate.png is the same file)
        only = done[0]["id"]
        write_atomic(run_dir / "aggregate.png", lambda tmp: tmp.write_bytes(pngs[only]))
        return _img(pngs[only], f"out-of-sample curve of window {only}"), ""
    parts, bounds, start = [], [], 0
    for w in done:
        parts.append(frames[w["id"]])
        bounds.append((start, w["id"]))
        start += len(frames[w["id"]])
    stitched = pd.concat(parts, ignore_index=True)
    stitched["equity"] = np.cumprod(1 + stitched["net_return"].to_numpy())
    stitched["buy_and_hold_equity"] = np.cumprod(1 + stitched["buy_and_hold_return"].to_numpy())
    if "benchmark_equity" in stitched:
        stitched = stitched.drop(columns=["benchmark_equity"])  # per-window curves do not stitch
    title = f"{label} — stitched out-of-sample curve of {len(done)} windows (dashed: window boundaries)"
    png = _save_png(_figure(stitched, title, tz, bounds), run_dir / "aggregate.png")
    how = (
        "<p class=how>Every completed window's test bars in time order, compounding from 1; the dashed lines "
        "mark where each window's test span begins (labelled with its id).</p>"
    )
    return _img(png, "stitched out-of-sample curve") + how, "<h2>Per window</h2>" + "".join(per_window)


def build_report(run_dir: Path) -> Path:
    """Write w*/report.png, aggregate.png and report.html; return the HTML path."""
    run_dir = Path(run_dir)
    summary = load_json(run_dir / "summary.json", "summary")
    config = load_json(run_dir / "config.resolved.json", "config")
    windows = summary["windows"]
    tz = (summary.get("data") or {}).get("timezone") or (config.get("data") or {}).get("timezone") or "UTC"
    curve, per_window = _plots(run_dir, summary, tz)
    agg = summary.get("aggregate") or {}
    title = _title(summary, config)
    done = sum(1 for w in windows if w["status"] == Status.COMPLETED)
    meta = [
        f"status <b>{_e(summary['status'])}</b>",
        f"{done} of {len(windows)} windows completed",
        f"data {_e(summary['source'])} ({_e(summary.get('data_hash'))})",
        f"config {_e(summary.get('config_path'))} ({_e(summary.get('config_hash'))})",
        f"windows hash {_e(summary.get('windows_hash'))}",
        f"algorithm {_e(summary.get('algorithm'))} ({_e(summary.get('backend'))})",
        f"{'deterministic' if (config.get('evaluation') or {}).get('deterministic', True) else 'stochastic'} policy",
        f"started {_e(summary.get('started_at'))}, {fmt_num(summary.get('seconds'), 1)} s",
    ]
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — walk-forward report</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">Walk-forward report · {" · ".join(meta)}</p>
{_banners(summary, windows)}
<h2>Out of sample: all test spans stitched</h2>
{curve}
<div class="flex"><div>{_headline_table(agg)}</div><div><h3 style="margin-top:0.4em">Is the Sharpe real?</h3>
{_statistics_table(summary.get("statistics"))}</div></div>
{_annualisation(summary.get("annualisation"))}
<h2>Windows</h2>
{_windows_table(windows)}
<h2>Baselines (same test bars, same costs)</h2>
{_baselines_table(windows)}
{_benchmark_table(windows)}
<p class=how>✓ beaten: the agent's total return, net of costs, is higher than the baseline's over the same
test bars (summary <code>beats</code>). Random trades at the agent's turnover; momentum follows the session's
move so far; flat never trades.</p>
<h2>Cost sensitivity</h2>
{_costs_table(windows)}
<p class=how>The agent's replay repeated with the configured costs scaled by 0, 1 and 2: an edge that
disappears at 2× costs is thin.</p>
<h2>Diagnostics and gates</h2>
{_diagnostics_table(windows)}
{per_window}
<h2>Config</h2>
<details><summary>config.resolved.json</summary><pre>{html.escape(json.dumps(config, indent=2))}</pre></details>
</body></html>
"""
    return write_text(run_dir / "report.html", doc)
