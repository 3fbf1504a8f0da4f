"""Statistics over a search's trials: the deflated Sharpe ratio of the chosen config's out-of-sample result
(N = the trials tried) and the PBO over the trials' validation returns.

Moved here from ``wf tune`` (issue 22): they are evaluation statistics, the search only records the trials'
per-bar validation returns (:func:`encode_returns`) and Sharpe ratios as trial attributes.
"""

from __future__ import annotations

import base64
import math
import zlib
from typing import Any

import numpy as np
import pandas as pd

from backend.evaluation.documents import DocumentState, PboDocument
from backend.evaluation.selection import pbo_document
from backend.evaluation.statistics import deflated_sharpe_ratio, expected_max_sharpe


def encode_returns(r: np.ndarray) -> str:
    """Per-bar returns as compact text for a trial attribute: base64 of zlib-compressed little-endian float64."""
    return base64.b64encode(zlib.compress(np.asarray(r, dtype="<f8").tobytes(), 6)).decode("ascii")


def decode_returns(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<f8")


def deflated_sharpe(final: dict[str, Any] | None, n_trials: int, complete: list[Any]) -> dict[str, Any]:
    """DSR of the final out-of-sample returns with N = trials tried and the trials' validation Sharpe variance.

    Per-bar Sharpe, skewness and kurtosis are those of the final run's stitched test returns
    (its summary's ``statistics``); the variance is the sample variance (ddof 1) of the completed
    trials' per-bar validation Sharpe ratios.
    """
    stats = (final or {}).get("statistics") or {}
    sharpes = [tr.user_attrs.get("validation_sharpe_per_bar") for tr in complete]
    sharpes = [x for x in sharpes if isinstance(x, int | float) and math.isfinite(x)]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else None
    sr, n_obs = stats.get("sharpe_per_bar"), stats.get("n_obs")
    skew, kurt = stats.get("skew"), stats.get("kurtosis")
    doc: dict[str, Any] = {
        "dsr": None,
        "reason": None,
        "n_trials": n_trials,
        "sharpe_per_bar": sr,
        "n_obs": n_obs,
        "skew": skew,
        "kurtosis": kurt,
        "sharpe_variance": variance,
        "n_variance_trials": len(sharpes),
        "expected_max_sharpe": None,
        "sharpe_source": "final run's stitched test returns (per bar)",
        "variance_source": "completed trials' per-bar validation Sharpe ratios",
    }
    if not stats:
        doc["reason"] = "the final run has no completed test window"
    elif sr is None or skew is None or kurt is None:
        doc["reason"] = "the final test returns have no Sharpe ratio (constant returns: the agent stayed flat)"
    elif n_obs is None:
        doc["reason"] = "the final run's statistics have no n_obs (number of test returns)"
    elif n_trials == 1:  # nothing was chosen among: the DSR is the PSR against 0
        doc["expected_max_sharpe"] = 0.0
        doc["dsr"] = deflated_sharpe_ratio(sr, int(n_obs), skew, kurt, 1, 0.0)
    elif variance is None:
        doc["reason"] = (
            f"the variance of the trials' Sharpe ratios needs at least 2 completed trials; {len(sharpes)} completed"
        )
    else:
        doc["expected_max_sharpe"] = expected_max_sharpe(n_trials, variance)
        doc["dsr"] = deflated_sharpe_ratio(sr, int(n_obs), skew, kurt, n_trials, variance)
    return doc


def trials_pbo(complete: list[Any]) -> PboDocument:
    """PBO (CSCV) over the completed trials' per-bar validation returns, as the sweep computes it."""
    cols = {
        f"trial {tr.number}": decode_returns(tr.user_attrs["validation_returns"])
        for tr in complete
        if "validation_returns" in tr.user_attrs
    }
    bars = {tr.user_attrs.get("validation_bars_hash") for tr in complete if "validation_returns" in tr.user_attrs}
    if len(cols) < 2:
        return {
            "status": DocumentState.REFUSED,
            "reason": f"PBO needs at least 2 completed trials to choose among; {len(cols)} completed",
            "trials": "trials",
        }
    if len(bars) > 1 or len({len(c) for c in cols.values()}) > 1:
        return {
            "status": DocumentState.REFUSED,
            "reason": "the completed trials were validated on different bars",
            "trials": "trials",
        }
    doc = pbo_document(pd.DataFrame(cols), 16)
    doc["trials"] = "completed trials (validation returns)"
    return doc
