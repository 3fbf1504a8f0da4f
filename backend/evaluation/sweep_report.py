"""A self-contained report.html for a sweep folder: which config to choose, and whether it is luck.

Read from the sweep folder's files only: sweep.json (its member rows and, when the sweep wrote
it, ``selection``: the output of :func:`backend.evaluation.selection.selection_statistics`) and
every member's summary.json and ``<window>/equity.csv``. Without ``selection`` the statistics are
computed here (seed 0). Plots are PNGs embedded as base64, like the run report.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.core.jsonio import load_json, write_text
from backend.core.stages import fmt_num, fmt_pct
from backend.core.status import Status
from backend.evaluation.documents import DocumentState
from backend.evaluation.selection import LUCK, SKILL, MemberReturns, config_name, load_member_returns
from backend.evaluation.selection import selection_from_rows as _selection

WIDTH = 12.5  # inches at 100 dpi: 1250 px, the page's full width at 1300 px

HOW_TO_READ = {
    "heatmap": "Each cell is a config's out-of-sample Sharpe in one test window, averaged over its seeds; "
    "a config worth choosing is warm in most columns, not in one.",
    "equity": "Every member's test spans stitched end to end (thin lines, one colour per config) against "
    "intraday buy-and-hold (black), compounding from 1; dotted lines separate the windows, and the gaps between "
    "test spans are left out.",
    "iqm": "The interquartile mean of window Sharpe ratios over seeds × windows ignores the best and worst "
    "quarter of runs; its bar is a 95 % stratified-bootstrap interval over seeds (windows are held fixed), so "
    "overlapping bars mean the seeds cannot tell the configs apart — it says nothing about beating the market.",
    "poi": "Each cell is the probability that a random seed of the row config beats a random seed of the column "
    "config in the same window (averaged over windows); 0.5 is a coin flip, and the interval says how sure.",
    "lambda": "λ is the logit of the out-of-sample rank of the config that was best in sample, over all "
    "C(S, S/2) splits of the test bars; mass left of 0 (PBO) is how often choosing the in-sample best gave a "
    "below-median config out of sample — 0.5 is what pure luck gives.",
    "degradation": "Each point is one split: the chosen config's in-sample Sharpe against its out-of-sample "
    "Sharpe (per bar); a falling line means in-sample excellence does not carry over — but the halves are "
    "complements, so a config chosen every time draws a slope near −1 by construction: read it with λ.",
    "ranks": "How often a config ranked i-th in sample ranks j-th out of sample (dot size); skill lines up on "
    "the rising diagonal, overfitting on the falling one.",
    "snooping": "Hansen's SPA asks whether the best of all members beats the baseline once every member tried is "
    "accounted for (small p = yes); the Reality Check p-value is its conservative upper bound, and StepM names "
    "the members that beat the baseline with a 5 % family-wise error.",
}


# ----------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _img(data: bytes | None, alt: str) -> str:
    if data is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _colors(configs: list[str]) -> dict[str, Any]:
    cmap = _plt().get_cmap("tab10" if len(configs) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(configs)}


def _heatmap(window_sharpes: pd.DataFrame, configs: dict[str, list[str]]) -> bytes | None:
    if window_sharpes.empty:
        return None
    grid = pd.DataFrame(
        {c: window_sharpes.reindex(columns=names).mean(axis=1) for c, names in configs.items()}
    ).T  # config × window
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + 0.45 * len(grid)))
    values = grid.to_numpy(dtype=np.float64)
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    im = ax.imshow(values, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=0 if grid.shape[1] <= 16 else 60)
    ax.set_yticks(range(len(grid)), list(grid.index))
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, "—" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="Sharpe (annualised)", pad=0.01)
    ax.set_title("Out-of-sample Sharpe per window (mean over seeds)")
    fig.tight_layout()
    return _png(fig)


def _equity(data: MemberReturns, member_config: dict[str, str], colors: dict[str, Any]) -> bytes | None:
    if data.returns.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH, 5.0))
    x = np.arange(len(data.returns))
    seen = set()
    for name in data.returns.columns:
        cfg = member_config.get(name, name)
        label = None if cfg in seen else cfg
        seen.add(cfg)
        ax.plot(x, np.cumprod(1 + data.returns[name].to_numpy()), color=colors.get(cfg), lw=1.0, alpha=0.8, label=label)
    ax.plot(x, np.cumprod(1 + data.buy_and_hold.to_numpy()), color="black", lw=2.0, label="buy & hold (intraday)")
    wins = data.window.to_numpy()
    starts = [0, *(np.flatnonzero(wins[1:] != wins[:-1]) + 1).tolist()]
    for k in starts[1:]:
        ax.axvline(k, color="#888", ls=":", lw=0.8)
    if len(starts) <= 30:
        for k in starts:
            ax.text(k, 0.01, f" {wins[k]}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8, color="#555")
    ticks = np.linspace(0, len(x) - 1, num=min(8, len(x))).astype(int)
    stamps = data.returns.index
    labels = [stamps[i].strftime("%Y-%m-%d") for i in ticks]
    if len(set(labels)) < len(labels):  # a short span: show the time of day too
        labels = [stamps[i].strftime("%m-%d %H:%M") for i in ticks]
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_xlim(0, max(len(x) - 1, 1))
    ax.set_ylabel("equity (start = 1)")
    ax.set_xlabel("test bars, stitched (UTC at the ticks)")
    ax.legend(loc="upper left", fontsize=8, ncol=min(3, len(seen) + 1), framealpha=0.8)
    ax.set_title("Stitched out-of-sample equity of every member")
    fig.tight_layout()
    return _png(fig)


def _pbo_plots(pbo: Mapping[str, Any]) -> bytes | None:
    if pbo.get("status") != DocumentState.OK:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH, 4.2))
    values, counts = np.asarray(pbo["logits"]["values"], float), np.asarray(pbo["logits"]["counts"], float)
    gap = np.diff(values).min() if len(values) > 1 else 1.0  # λ takes at most 2N − 1 distinct values
    axes[0].bar(values, counts / counts.sum(), width=0.8 * gap, color="#4c72b0")
    axes[0].axvline(0, color="#d62728", lw=1.5)
    axes[0].set_title(f"λ (logit of OOS rank); PBO = {pbo['pbo']:.2f}")
    axes[0].set_xlabel("λ")
    axes[0].set_ylabel("share of splits")
    deg = pbo["degradation"]
    x_is, y_oos = np.asarray(deg["in_sample"], float), np.asarray(deg["out_of_sample"], float)
    axes[1].scatter(x_is, y_oos, s=6, alpha=0.4, color="#4c72b0")
    if deg.get("slope") is not None and len(x_is):
        grid = np.linspace(x_is.min(), x_is.max(), 2)
        axes[1].plot(grid, deg["intercept"] + deg["slope"] * grid, color="#d62728", label=f"slope {deg['slope']:.2f}")
        axes[1].legend(fontsize=8)
    axes[1].axhline(0, color="#888", lw=0.8)
    axes[1].set_title("Chosen config: IS vs OOS Sharpe")
    axes[1].set_xlabel("in-sample Sharpe (per bar)")
    axes[1].set_ylabel("out-of-sample Sharpe (per bar)")
    ranks = np.asarray(pbo["rank_counts"], float)
    n = len(ranks)
    ii, jj = np.meshgrid(np.arange(1, n + 1), np.arange(1, n + 1), indexing="ij")
    axes[2].scatter(ii.ravel(), jj.ravel(), s=600 * ranks.ravel() / max(ranks.max(), 1), alpha=0.6, color="#55a868")
    axes[2].plot([1, n], [1, n], color="#888", lw=0.8, ls=":")
    axes[2].set_xticks(range(1, n + 1))
    axes[2].set_yticks(range(1, n + 1))
    axes[2].set_title(f"IS vs OOS rank ({n} = best)")
    axes[2].set_xlabel("in-sample rank")
    axes[2].set_ylabel("out-of-sample rank")
    fig.tight_layout()
    return _png(fig)


def _seed_plots(sel: Mapping[str, Any]) -> bytes | None:
    rows = [c for c in sel.get("configs", []) if (c.get("iqm") or {}).get("value") is not None]
    poi = sel.get("probability_of_improvement") or {}
    if not rows:
        return None
    plt = _plt()
    two = poi.get("status") == DocumentState.OK
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(WIDTH, 1.6 + 0.5 * max(len(rows), 3)), squeeze=False)
    ax = axes[0, 0]
    y = np.arange(len(rows))
    mid = np.array([c["iqm"]["value"] for c in rows], float)
    lo = np.array([c["iqm"]["ci_low"] if c["iqm"]["ci_low"] is not None else np.nan for c in rows], float)
    hi = np.array([c["iqm"]["ci_high"] if c["iqm"]["ci_high"] is not None else np.nan for c in rows], float)
    ax.barh(y, np.nan_to_num(hi - lo), left=np.nan_to_num(lo, nan=0.0), color="#4c72b0", alpha=0.35, height=0.6)
    ax.scatter(mid, y, color="#4c72b0", zorder=3)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_yticks(y, [c["name"] for c in rows])
    ax.invert_yaxis()
    ax.set_xlabel("IQM of window Sharpe (95 % stratified bootstrap CI)")
    ax.set_title("Interquartile mean over seeds × windows")
    if two:
        ax = axes[0, 1]
        p = np.asarray(poi["p"], float)
        im = ax.imshow(p, cmap="RdBu", vmin=0, vmax=1)
        names = poi["configs"]
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        if p.size <= 144:
            lo_m, hi_m = np.asarray(poi["ci_low"], float), np.asarray(poi["ci_high"], float)
            for (i, j), v in np.ndenumerate(p):
                if i != j and np.isfinite(v):
                    ax.text(
                        j, i, f"{v:.2f}\n[{lo_m[i, j]:.2f}, {hi_m[i, j]:.2f}]", ha="center", va="center", fontsize=7
                    )
        fig.colorbar(im, ax=ax, label="P(row > column)", pad=0.01)
        ax.set_title("Probability of improvement")
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------- tables and text


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _e(x: Any) -> str:
    return html.escape("—" if x is None else str(x))


def _p(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}"


def _members_table(rows: list[dict[str, Any]]) -> str:
    head = ["member", "config", "seed", "status", "OOS Sharpe", "95 % CI", "OOS return", "max DD", "trades"]
    head += ["PSR", "DSR (N)", "collapsed", "error"]
    return _table(
        head,
        [
            [
                _e(r.get("name")),
                _e(config_name(r)),
                _e(r.get("seed")),
                _e(r.get("status")),
                fmt_num(r.get("oos_sharpe")),
                "—"
                if r.get("sharpe_ci_low") is None
                else f"[{fmt_num(r['sharpe_ci_low'])}, {fmt_num(r['sharpe_ci_high'])}]",
                fmt_pct(r.get("oos_total_return")),
                fmt_pct(r.get("oos_max_drawdown")),
                _e(r.get("oos_n_trades")),
                fmt_num(r.get("psr")),
                f"{fmt_num(r.get('dsr'))} ({_e(r.get('dsr_n_trials'))})",
                _e(r.get("collapse_warnings")) if r.get("collapsed_windows") else "—",
                _e(r.get("error")),
            ]
            for r in rows
        ],
    )


def _verdict_html(sel: Mapping[str, Any]) -> str:
    if sel.get("status") != DocumentState.OK:
        return f'<p class="box undetermined">No selection statistics: {_e(sel.get("reason"))}</p>'
    cls = {LUCK: "luck", SKILL: "skill"}.get(sel["verdict"], "undetermined")
    why = "".join(f"<li>{html.escape(w)}</li>" for w in sel.get("verdict_reasons") or [])
    return (
        f'<div class="box {cls}"><b>Best config: {_e(sel["best_config"])}</b> (highest Sharpe of its seed-mean '
        f"out-of-sample returns) — <b>{_e(sel['verdict'])}</b>.<ul>{why}</ul>"
        "<small>Rule: the best config is not distinguishable from luck when PBO &gt; 0.5 or its SPA p-value "
        "&gt; 0.05 against buy-and-hold or flat; every config needs a majority of its seeds superior to "
        "both baselines under StepM.</small></div>"
    )


def _configs_table(sel: Mapping[str, Any], members: list[dict[str, Any]]) -> str:
    """One row per config: the member rows' per-config columns (sweep.json, studies.compare) and the selection's."""
    bases = list((sel.get("data_snooping") or {}).keys())
    first: dict[str, dict[str, Any]] = {}
    for r in members:
        first.setdefault(config_name(r), r)
    head = ["config (changes from base)", "seeds", "OOS Sharpe mean ± sd", "95 % CI of the mean"]
    head += ["IQM window Sharpe", "95 % CI"]
    head += [f"seeds > {b} (StepM)" for b in bases] + ["collapsed windows", "verdict"]
    rows = []
    for c in sel.get("configs", []):
        iqm = c.get("iqm") or {}
        ci = "—" if iqm.get("ci_low") is None else f"[{iqm['ci_low']:.2f}, {iqm['ci_high']:.2f}]"
        m = first.get(c["name"], {})
        sd = m.get("config_sharpe_sd")
        mean_sd = fmt_num(m.get("config_sharpe_mean")) + ("" if sd is None else f" ± {fmt_num(sd)}")
        lo, hi = m.get("config_sharpe_ci_low"), m.get("config_sharpe_ci_high")
        mean_ci = (
            "—" if lo is None else f"[{fmt_num(lo)}, {fmt_num(hi)}] <small>{_e(m.get('config_ci_method'))}</small>"
        )
        collapsed = m.get("config_collapsed_windows") or 0
        why = "".join(f"<li>{html.escape(w)}</li>" for w in c.get("verdict_reasons") or [])
        rows.append(
            [
                f"<b>{_e(c['name'])}</b><br><small>{_e(m.get('config_diff'))}</small>",
                str(len(c["members"])),
                mean_sd,
                mean_ci,
                fmt_num(iqm.get("value")),
                ci if iqm.get("reason") is None else f"{ci} <small>({_e(iqm['reason'])})</small>",
                *[f"{c['superior_seeds'].get(b, 0)}/{len(c['members'])}" for b in bases],
                f"<b>{collapsed}/{m.get('config_windows', 0)}</b>" if collapsed else f"0/{m.get('config_windows', 0)}",
                f"{_e(c['verdict'])}<ul><small>{why}</small></ul>" if why else _e(c["verdict"]),
            ]
        )
    return _table(head, rows)


def _snooping_table(sel: Mapping[str, Any]) -> str:
    head = ["baseline", "SPA p (consistent)", "SPA p (lower)", "Reality Check p", "StepM superior", "block", "reps"]
    rows = []
    for base, r in (sel.get("data_snooping") or {}).items():
        if r.get("status") != DocumentState.OK:
            rows.append([_e(base), f"refused: {_e(r.get('reason'))}", "", "", "", "", ""])
            continue
        rows.append(
            [
                _e(base),
                _p(r["spa_pvalue"]),
                _p(r["spa_pvalue_lower"]),
                _p(r["reality_check_pvalue"]),
                _e(", ".join(r["stepm_superior"]) or "none"),
                f"{r['block_size']:.0f} bars",
                str(r["reps"]),
            ]
        )
    return _table(head, rows)


def _pbo_text(pbo: Mapping[str, Any]) -> str:
    if pbo.get("status") != DocumentState.OK:
        return f"<p>PBO refused: {_e(pbo.get('reason'))}</p>"
    deg = pbo["degradation"]
    chosen = ", ".join(f"{html.escape(k)} {v}" for k, v in pbo["chosen_counts"].items())
    return (
        f"<p><b>PBO = {pbo['pbo']:.3f}</b> over N = {pbo['n_trials']} configs, S = {pbo['n_partitions']} blocks of "
        f"{pbo['bars_per_block']} bars ({pbo['n_combinations']:,} splits, {pbo['n_bars']:,} bars, "
        f"{pbo['n_bars_dropped']} left over at the end). Probability of loss (chosen config's out-of-sample "
        f"Sharpe &lt; 0): {pbo['probability_of_loss']:.3f}. Degradation slope {fmt_num(deg['slope'])}, "
        f"intercept {fmt_num(deg['intercept'], 4)}. Chosen in sample: {chosen}.</p>"
    )


def _how(key: str) -> str:
    return f'<p class="how">How to read: {html.escape(HOW_TO_READ[key])}</p>'


# ----------------------------------------------------------------------------- the page


def _member_folder(row: dict[str, Any], sweep_dir: Path) -> Path:
    """The row's path, or ``<sweep_dir>/<folder name>`` when the path was relative to another directory."""
    path = Path(str(row.get("path") or row.get("name")))
    return path if path.is_dir() or not (sweep_dir / path.name).is_dir() else sweep_dir / path.name


def _heatmap_input(
    rows: list[dict[str, Any]], data: MemberReturns, configs: dict[str, list[str]]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Window Sharpes and config → members for the heatmap; a sweep of universes: units SYMBOL/wid × members."""
    done = [r for r in rows if r.get("status") == Status.COMPLETED and r.get("universe_member")]
    if not done:
        return data.window_sharpes, configs
    grid: dict[str, dict[str, float]] = {}
    for r in done:
        path = Path(str(r["path"])) / "summary.json"
        summary = load_json(path, "summary") if path.exists() else {}
        for w in summary.get("windows", []):
            if w.get("status") == Status.COMPLETED:
                sharpe = (w.get("evaluation") or {}).get("sharpe")
                grid.setdefault(str(r["universe_member"]), {})[f"{r.get('symbol')}/{w['id']}"] = (
                    0.0 if sharpe is None else float(sharpe)
                )
    members: dict[str, list[str]] = {}
    for r in done:
        members.setdefault(config_name(r), [])
        if str(r["universe_member"]) not in members[config_name(r)]:
            members[config_name(r)].append(str(r["universe_member"]))
    return pd.DataFrame(grid), members


_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1300px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; display: block; overflow-x: auto; }
td, th { border: 1px solid #ccc; padding: 3px 7px; vertical-align: top; }
th { background: #f3f3f3; } img { width: 100%; height: auto; }
.how { color: #555; font-style: italic; margin-top: 0.2em; }
.box { padding: 0.6em 1em; border-radius: 6px; margin: 1em 0; }
.luck { background: #fdecea; border: 1px solid #e0a0a0; } .skill { background: #eaf6ea; border: 1px solid #9c9; }
.undetermined { background: #fff6e0; border: 1px solid #dc9; }
</style>"""


def build_sweep_report(sweep_dir: str | Path) -> Path:
    """Write ``<sweep_dir>/report.html`` (self-contained) and return its path.

    Needs ``sweep.json``; uses its ``selection`` when present, else computes it (seed 0). Members
    whose folders are gone are listed with their rows and left out of the plots.
    """
    sweep_dir = Path(sweep_dir)
    doc = load_json(sweep_dir / "sweep.json", "sweep")
    rows = [{**r, "path": str(_member_folder(r, sweep_dir))} for r in doc.get("members", [])]
    done = [r for r in rows if r.get("status") == Status.COMPLETED and r.get("path")]
    data = load_member_returns({str(r["name"]): Path(str(r["path"])) for r in done})
    sel = doc.get("selection") or _selection(rows)
    page = _page(sweep_dir.name, rows, data, sel)
    return write_text(sweep_dir / "report.html", page)


def _alignment(data: MemberReturns) -> str:
    if data.returns.empty:
        return "no member's returns could be read"
    return (
        f"{len(data.returns):,} test bars shared by {data.returns.shape[1]} members"
        f" ({data.dropped_bars:,} bars dropped by the alignment)"
    )


def _notes_html(sel: Mapping[str, Any], data: MemberReturns) -> str:
    """The selection's warnings (else the loader's), then every skipped member none of them names."""
    notes = list(sel.get("warnings") or data.warnings)
    notes += [f"{n}: {why}" for n, why in data.skipped.items() if all(n not in w for w in notes)]
    return "".join(f"<li>{html.escape(w)}</li>" for w in notes)


def _page(name: str, rows: list[dict[str, Any]], data: MemberReturns, sel: Mapping[str, Any]) -> str:
    member_config = {str(r["name"]): config_name(r) for r in rows}
    configs: dict[str, list[str]] = {}
    for member in data.returns.columns:
        configs.setdefault(member_config.get(member, member), []).append(member)
    colors = _colors(list(configs))
    pbo = sel.get("pbo") or {"status": DocumentState.REFUSED, "reason": sel.get("reason")}
    seeds = sorted({str(r.get("seed")) for r in rows})
    n_configs = len({config_name(r) for r in rows})
    notes_html = _notes_html(sel, data)
    ok = sel.get("status") == DocumentState.OK
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Sweep report — {html.escape(name)}</title>
{_STYLE}</head><body>
<h1>Sweep report — {html.escape(name)}</h1>
<p>{len(rows)} members: {n_configs} configs × seeds {html.escape(", ".join(seeds))};
{html.escape(_alignment(data))}. Statistics status: <b>{_e(sel.get("status"))}</b>.</p>
{_verdict_html(sel)}
<h2>Configs</h2>
{_configs_table(sel, rows) if ok else ""}
<h2>Window Sharpe</h2>
{_img(_heatmap(*_heatmap_input(rows, data, configs)), "window Sharpe heatmap")}
{_how("heatmap")}
<h2>Stitched out-of-sample equity</h2>
{_img(_equity(data, member_config, colors), "equity curves")}
{_how("equity")}
<h2>Seeds: interquartile mean and probability of improvement</h2>
{_img(_seed_plots(sel), "IQM and probability of improvement")}
{_how("iqm")}
{_how("poi")}
<h2>Probability of backtest overfitting (CSCV)</h2>
{_pbo_text(pbo)}
{_img(_pbo_plots(pbo), "PBO plots")}
{_how("lambda")}
{_how("degradation")}
{_how("ranks")}
<h2>Data snooping: every member against the baselines</h2>
{_snooping_table(sel) if ok else ""}
{_how("snooping")}
<h2>Members</h2>
{_members_table(rows)}
{f"<h2>Notes</h2><ul>{notes_html}</ul>" if notes_html else ""}
<p><small>Statistics: docs/integrity.md. Per-bar Sharpe = mean / std of bar returns (not annualised);
window Sharpe ratios are annualised as in each member's summary.json.</small></p>
</body></html>
"""
