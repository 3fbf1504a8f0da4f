"""Choosing among sweep configs honestly: PBO, SPA / Reality Check / StepM, IQM and P(A > B).

A sweep runs configs × seeds ("members") over the same walk-forward windows. The members'
out-of-sample per-bar returns, aligned on the bars they share, come from
:func:`backend.evaluation.member_returns.load_member_returns` (importable from here too); this
module computes in :func:`selection_statistics`:

* PBO by CSCV over the **configs** (each config's series = the mean of its seeds' per-bar
  returns: the equal-weight ensemble of its seeds), with S, N and the λ values;
* Hansen's SPA (consistent p-value), the Reality Check (upper p-value) and Romano–Wolf StepM of
  **every member** against intraday buy-and-hold and against flat;
* per config, the interquartile mean (IQM) of window Sharpe ratios over seeds × windows with a
  stratified bootstrap CI, and P(config A beats config B) with its CI;
* a verdict per config, and for the best config (highest full-span Sharpe of its series).

Nothing here raises on thin data: every statistic carries ``status`` (``ok`` / ``refused``) and a
``reason``; :func:`selection_from_rows`, the sweep driver's entry point, also turns an unexpected
error into ``status: failed`` so that the hours of training before it are never lost.
The output is JSON-ready (no NaN: ``null``). The formulas live in ``backend.evaluation.statistics``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.core.jsonio import sanitize
from backend.core.status import Status
from backend.evaluation import statistics as st
from backend.evaluation.documents import (
    Alignment,
    ConfigPart,
    ConfigRow,
    DocumentState,
    PboDocument,
    SelectionDocument,
)
from backend.evaluation.member_returns import MemberReturns, load_member_returns

SCHEMA_VERSION = 1
LUCK = "not distinguishable from luck"
SKILL = "distinguishable from luck"
UNDETERMINED = "undetermined"
PBO_LIMIT = 0.5
SPA_LEVEL = 0.05
MIN_PARTITIONS = 8
"""PBO in a sweep: S is the largest even number ≤ ``n_partitions`` (16) leaving ≥ MIN_BARS_PER_BLOCK
bars per block, but never below 8 (70 combinations); below that PBO is refused."""
MAX_PAIRS_SHOWN = 1000
"""The JSON keeps at most this many (in-sample, out-of-sample) Sharpe pairs, evenly spaced over the halves."""


# ----------------------------------------------------------------------------- statistics


def _state(reason: str | None) -> DocumentState:
    return DocumentState.REFUSED if reason else DocumentState.OK


def _status(reason: str | None = None, **values: Any) -> dict[str, Any]:
    return {"status": _state(reason), "reason": reason, **values}


def _sharpe(x: np.ndarray) -> float:
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return float(np.mean(x)) / sd if sd > 1e-15 else math.nan


def _partitions(n_bars: int, wanted: int) -> int:
    """The largest even S ≤ ``wanted`` (and ≥ MIN_PARTITIONS) leaving enough bars per block."""
    smallest = min(MIN_PARTITIONS, wanted)
    for s in range(wanted - wanted % 2, smallest - 1, -2):
        if n_bars // s >= st.MIN_BARS_PER_BLOCK:
            return s
    return smallest  # too few bars even for the smallest S: the refusal names that S and its bar count


def pbo_document(config_returns: pd.DataFrame, n_partitions: int) -> PboDocument:
    """PBO over the configs' seed-mean series: pbo, n_partitions, n_trials, n_bars, bars_per_block, n_combinations,
    logits {values, counts}, probability_of_loss, degradation {slope, intercept, n_pairs, in_sample,
    out_of_sample}, chosen_counts, rank_counts."""
    names = list(config_returns.columns)
    if len(names) < 2:
        reason = (
            f"PBO needs at least 2 configs to choose among; the sweep has {len(names)} "
            "(seeds of one config are replications, not choices)"
        )
        return PboDocument(status=_state(reason), reason=reason, trials="configs")
    s = _partitions(len(config_returns), n_partitions)
    try:
        r = st.probability_of_backtest_overfitting(config_returns.to_numpy(), s)
    except st.StatisticRefused as e:
        why = str(e)
        return PboDocument(
            status=_state(why), reason=why, trials="configs", n_trials=len(names), n_bars=len(config_returns)
        )
    values, counts = np.unique(np.round(r["logits"], 12), return_counts=True)
    deg = r["degradation"]
    shown = np.unique(np.linspace(0, r["n_combinations"] - 1, min(r["n_combinations"], MAX_PAIRS_SHOWN)).round())
    shown = shown.astype(int)
    return PboDocument(
        status=_state(None),
        reason=None,
        trials="configs",
        trial_names=names,
        pbo=r["pbo"],
        n_partitions=r["n_partitions"],
        n_trials=r["n_trials"],
        n_bars=r["n_bars"],
        n_bars_dropped=r["n_bars_dropped"],
        bars_per_block=r["bars_per_block"],
        n_combinations=r["n_combinations"],
        logits={"values": values.tolist(), "counts": counts.tolist()},
        probability_of_loss=r["probability_of_loss"],
        degradation={
            "slope": deg["slope"],
            "intercept": deg["intercept"],
            "n_pairs": r["n_combinations"],
            "in_sample": deg["in_sample"][shown].tolist(),
            "out_of_sample": deg["out_of_sample"][shown].tolist(),
        },
        chosen_counts=dict(zip(names, np.bincount(r["chosen"], minlength=len(names)).tolist(), strict=True)),
        rank_counts=r["rank_counts"].tolist(),
    )


def _snooping(returns: pd.DataFrame, benchmark: pd.Series, reps: int, seed: int) -> dict[str, Any]:
    """Every member against one baseline: spa_pvalue, spa_pvalue_lower, reality_check_pvalue, stepm_superior,
    stepm_size, block_size, reps, n_bars, n_models, members {name: {mean_excess_per_bar, t_stat}}."""
    names = list(returns.columns)
    b = benchmark.reindex(returns.index)
    if b.isna().any():
        return _status(f"the baseline lacks {int(b.isna().sum())} of the {len(b)} aligned bars")
    try:
        r = st.data_snooping_tests(returns.to_numpy(), b.to_numpy(), reps=reps, size=SPA_LEVEL, seed=seed)
    except st.StatisticRefused as e:
        return _status(str(e))
    return _status(
        None,
        spa_pvalue=r["spa_pvalue"],
        spa_pvalue_lower=r["spa_pvalue_lower"],
        reality_check_pvalue=r["reality_check_pvalue"],
        stepm_superior=[names[i] for i in r["stepm_superior"]],
        stepm_size=r["stepm_size"],
        block_size=r["block_size"],
        reps=r["reps"],
        n_bars=r["n_bars"],
        n_models=r["n_models"],
        members={
            n: {"mean_excess_per_bar": float(m), "t_stat": float(t)}
            for n, m, t in zip(names, r["mean_excess"], r["t_stat"], strict=True)
        },
    )


def _window_scores(window_sharpes: pd.DataFrame | None, names: list[str]) -> list[np.ndarray]:
    if window_sharpes is None or window_sharpes.empty:
        return []
    cols = [n for n in names if n in window_sharpes.columns]
    return [np.asarray(row, dtype=np.float64) for row in window_sharpes.reindex(columns=cols).to_numpy()]


def _iqm(scores: list[np.ndarray], n_boot: int, seed: int) -> dict[str, Any]:
    finite = [s[np.isfinite(s)] for s in scores]
    n_scores, n_windows = sum(len(s) for s in finite), sum(1 for s in finite if len(s))
    if not n_scores:
        return _status("no completed window Sharpe ratio", n_scores=0, n_windows=0)
    value, lo, hi = st.iqm_ci(scores, n_boot=n_boot, seed=seed)
    reason = None if math.isfinite(lo) else "one seed per window: the stratified bootstrap has nothing to resample"
    return {
        "status": DocumentState.OK,
        "reason": reason,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "n_scores": n_scores,
        "n_windows": n_windows,
    }


def _improvement(scores: dict[str, list[np.ndarray]], n_boot: int, seed: int) -> dict[str, Any]:
    names = [n for n, s in scores.items() if any(np.isfinite(x).any() for x in s)]
    if len(names) < 2:
        return _status("P(A > B) needs at least 2 configs with window Sharpe ratios", configs=names)
    r = st.probability_of_improvement_matrix({n: scores[n] for n in names}, n_boot=n_boot, seed=seed)
    return _status(None, configs=names, p=r["p"].tolist(), ci_low=r["ci_low"].tolist(), ci_high=r["ci_high"].tolist())


def _verdict(
    config: str, seeds: list[str], is_best: bool, n_configs: int, pbo: PboDocument, snooping: dict[str, Any]
) -> tuple[str, list[str]]:
    """LUCK if any test speaks against the config, UNDETERMINED if a needed test was refused, else SKILL.

    Every config needs a majority of its seeds in StepM's superior set against every baseline;
    the best config also needs PBO ≤ 0.5 (with ≥ 2 configs) and SPA p ≤ 0.05 against every baseline.
    """
    against, missing = [], []
    if is_best and n_configs >= 2:
        if pbo["status"] != DocumentState.OK:
            missing.append(f"PBO refused: {pbo['reason']}")
        elif pbo["pbo"] > PBO_LIMIT:
            against.append(
                f"PBO {pbo['pbo']:.2f} > {PBO_LIMIT}: the config that is best in sample is, more often than not, "
                "below the median out of sample"
            )
    for base, res in snooping.items():
        if res["status"] != DocumentState.OK:
            missing.append(f"tests against {base} refused: {res['reason']}")
            continue
        if is_best and res["spa_pvalue"] > SPA_LEVEL:
            against.append(f"SPA p = {res['spa_pvalue']:.3f} > {SPA_LEVEL} against {base}")
            continue
        wins = sum(1 for s in seeds if s in res["stepm_superior"])
        if 2 * wins <= len(seeds):
            against.append(
                f"{wins} of {len(seeds)} seeds beat {base} under StepM (FWER {SPA_LEVEL:.0%}); a majority is needed"
            )
    if against:
        return LUCK, against
    return (UNDETERMINED, missing) if missing else (SKILL, [])


def selection_statistics(
    members: list[dict[str, Any]],
    returns: pd.DataFrame,
    baselines: Mapping[str, pd.Series],
    window_sharpes: pd.DataFrame | None = None,
    seed: int = 0,
    n_partitions: int = 16,
    reps: int = 1000,
    n_boot: int = 2000,
) -> SelectionDocument:
    """Everything a sweep needs to choose a config honestly, as a JSON-ready dict.

    Inputs:

    * ``members``: ``[{"name": str, "config": str, "seed": int | None}, ...]``, one per member;
    * ``returns``: per-bar out-of-sample **net** returns, one column per member name, rows = the
      test bars every member shares (as :func:`load_member_returns` aligns them);
    * ``baselines``: ``{"buy_and_hold": Series}`` on the same index (more may be given); ``flat``
      (zeros) is added unless given;
    * ``window_sharpes``: windows × member names, each window's out-of-sample Sharpe (NaN where the
      window did not complete); without it the IQM and P(A > B) are refused;
    * ``seed`` seeds every bootstrap; ``reps`` the SPA/StepM replicates; ``n_boot`` the IQM and
      P(A > B) replicates; ``n_partitions`` the wanted S of CSCV (lowered, never below 8, when the
      bars are too few for ≥ 20 per block).

    Output keys: ``schema_version``, ``status`` (``ok`` / ``refused``), ``reason``, ``seed``, ``n_bars``,
    ``members`` (name, config, seed, ``sharpe_per_bar``), ``configs``, ``best_config``, ``verdict``,
    ``verdict_reasons`` (see :func:`_config_part`), ``pbo`` (see :func:`pbo_document`), ``data_snooping``
    {baseline: see :func:`_snooping`}, ``probability_of_improvement`` {configs, p, ci_low, ci_high}
    (P(row > column)), ``confidence``, ``n_boot``, ``warnings``. Every statistic has ``status`` and ``reason``.
    """
    warns = [f"{m['name']}: no aligned returns; left out" for m in members if m["name"] not in returns.columns]
    known = [m for m in members if m["name"] in returns.columns]
    if not known or returns.empty:
        return _refused_document(seed, warns)
    returns = _finite_rows(returns[[m["name"] for m in known]], warns)
    configs = _configs_of(known)
    config_returns = pd.DataFrame({c: returns[names].mean(axis=1) for c, names in configs.items()})
    pbo = pbo_document(config_returns, n_partitions)
    snooping = _snooping_all(returns, baselines, reps, seed)
    scores = {c: _window_scores(window_sharpes, names) for c, names in configs.items()}
    iqm = {c: _config_iqm(s, n_boot, seed) for c, s in scores.items()}
    doc: SelectionDocument = {
        "schema_version": SCHEMA_VERSION,
        "status": DocumentState.OK,
        "reason": None,
        "seed": seed,
        "n_bars": len(returns),
        "members": _member_rows(known, returns),
        **_config_part(config_returns, configs, pbo, snooping, iqm),
        "pbo": pbo,
        "data_snooping": snooping,
        "probability_of_improvement": _improvement(scores, n_boot, seed),
        "confidence": 0.95,
        "n_boot": n_boot,
        "warnings": warns,
    }
    return sanitize(doc)


def _refused_document(seed: int, warns: list[str]) -> SelectionDocument:
    reason = "no member with out-of-sample returns"
    doc: SelectionDocument = {
        "schema_version": SCHEMA_VERSION,
        "status": DocumentState.REFUSED,
        "seed": seed,
        "warnings": warns,
        "reason": reason,
    }
    return sanitize(doc)


def _configs_of(known: list[dict[str, Any]]) -> dict[str, list[str]]:
    """config -> its members' names, in the members' order."""
    configs: dict[str, list[str]] = {}
    for m in known:
        configs.setdefault(str(m["config"]), []).append(m["name"])
    return configs


def _member_rows(known: list[dict[str, Any]], returns: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {**{k: m.get(k) for k in ("name", "config", "seed")}, "sharpe_per_bar": _sharpe(returns[m["name"]].to_numpy())}
        for m in known
    ]


def _config_iqm(scores: list[np.ndarray], n_boot: int, seed: int) -> dict[str, Any]:
    return _iqm(scores, n_boot, seed) if scores else _status("no window Sharpe ratios were given")


def _config_part(
    config_returns: pd.DataFrame,
    configs: dict[str, list[str]],
    pbo: PboDocument,
    snooping: dict[str, dict[str, Any]],
    iqm: dict[str, dict[str, Any]],
) -> ConfigPart:
    """``configs`` (a row each: name, members, ``sharpe_per_bar`` of the seed-mean series, ``iqm`` {status, reason,
    value, ci_low, ci_high, n_scores, n_windows}, ``superior_seeds`` {baseline: count}, ``verdict``,
    ``verdict_reasons``), ``best_config`` (highest full-span Sharpe), and its ``verdict`` and ``verdict_reasons``."""
    config_sharpe = {c: _sharpe(config_returns[c].to_numpy()) for c in configs}
    best = max(configs, key=lambda c: -math.inf if math.isnan(config_sharpe[c]) else config_sharpe[c])
    rows: list[ConfigRow] = []
    for c, names in configs.items():
        verdict, why = _verdict(c, names, c == best, len(configs), pbo, snooping)
        superior = {b: sum(1 for n in names if n in r.get("stepm_superior", [])) for b, r in snooping.items()}
        rows.append(
            {
                "name": c,
                "members": names,
                "sharpe_per_bar": config_sharpe[c],
                "iqm": iqm[c],
                "superior_seeds": superior,
                "verdict": verdict,
                "verdict_reasons": why,
            }
        )
    best_row = next(r for r in rows if r["name"] == best)
    return {
        "configs": rows,
        "best_config": best,
        "verdict": best_row["verdict"],
        "verdict_reasons": best_row["verdict_reasons"],
    }


def _finite_rows(returns: pd.DataFrame, warns: list[str]) -> pd.DataFrame:
    """The bars where every member's return is finite (a warning names the members that had others)."""
    if np.isfinite(returns.to_numpy()).all():
        return returns
    bad = returns.columns[~np.isfinite(returns.to_numpy()).all(axis=0)].tolist()
    warns.append(f"non-finite returns in {bad}: those bars were dropped")
    return returns[np.isfinite(returns.to_numpy()).all(axis=1)]


def _snooping_all(
    returns: pd.DataFrame, baselines: Mapping[str, pd.Series], reps: int, seed: int
) -> dict[str, dict[str, Any]]:
    """SPA / Reality Check / StepM against each baseline (buy-and-hold first, flat added unless given)."""
    bases: dict[str, pd.Series | None] = {"buy_and_hold": None, **dict(baselines)}
    bases.setdefault("flat", pd.Series(0.0, index=returns.index))
    snooping = {}
    for i, (name, series) in enumerate(bases.items()):
        if series is None:
            snooping[name] = _status("no buy-and-hold returns were given")
        else:
            snooping[name] = _snooping(returns, series, reps, seed + i)
    return snooping


# ----------------------------------------------------------------------------- the sweep's entry point


def config_name(row: Mapping[str, Any]) -> str:
    """A member's config: its config file's stem, else its name without the ``_s<seed>`` suffix."""
    if row.get("config_path"):
        return Path(str(row["config_path"])).stem
    return re.sub(r"_s\d+$", "", str(row["name"]))


def statistics_of_members(
    members: list[dict[str, Any]], data: MemberReturns, seed: int = 0, **kwargs: Any
) -> SelectionDocument:
    """:func:`selection_statistics` of aligned member returns, against their buy-and-hold when there is one."""
    baselines = {"buy_and_hold": data.buy_and_hold} if len(data.buy_and_hold) else {}
    return selection_statistics(members, data.returns, baselines, data.window_sharpes, seed=seed, **kwargs)


def selection_from_rows(rows: Sequence[Mapping[str, Any]], seed: int = 0, **kwargs: Any) -> SelectionDocument:
    """:func:`selection_statistics` for sweep rows (``name``, ``path``, ``seed``, ``config_path``, ``status``).

    Members whose status is not ``completed`` are left out (named in ``warnings``); the alignment
    (bars used, dropped, members skipped) is under ``alignment``. Never raises: an unexpected error
    becomes ``{"status": "failed", "reason": "<type>: <message>"}`` and a Python warning.
    """
    try:
        done = [r for r in rows if r.get("status") == Status.COMPLETED and r.get("path")]
        loaded = load_member_returns({str(r["name"]): Path(str(r["path"])) for r in done})
        members = [
            {"name": str(r["name"]), "config": config_name(r), "seed": r.get("seed")}
            for r in done
            if str(r["name"]) not in loaded.skipped
        ]
        doc = statistics_of_members(members, loaded, seed=seed, **kwargs)
        doc["warnings"] = [
            *[f"{r.get('name')}: status {r.get('status')}; left out" for r in rows if r not in done],
            *[f"{n}: not loaded: {why}" for n, why in loaded.skipped.items()],
            *loaded.warnings,
            *doc.get("warnings", []),
        ]
        alignment: Alignment = {
            "n_bars": len(loaded.returns),
            "dropped_bars": loaded.dropped_bars,
            "bars_per_member": loaded.bars,
            "skipped": loaded.skipped,
        }
        doc["alignment"] = alignment
        return doc
    except Exception as e:  # the sweep's boundary: its members' results must still be written
        warnings.warn(f"selection statistics failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
        return {"schema_version": SCHEMA_VERSION, "status": DocumentState.FAILED, "reason": f"{type(e).__name__}: {e}"}
