"""TA-Lib indicators as features: ``talib:FUNC(k=v,...)[.output][/close]`` through TA-Lib's abstract API.

Parameters are checked against the function's own parameter list, the output against its output names (a
multi-output function needs one). ``/close`` expresses a price-level output relative to the bar's close
(``value / close - 1``), which makes moving averages and bands scale-free.

**Memory rule** (history-start independence, also for EMA-style indicators with infinite memory): the values of
one session are computed from exactly :func:`memory_bars` bars before that session's first bar plus the session's
own bars, one TA-Lib call per session. A value at bar t therefore depends on a fixed, declared span of bars (never
on where the loaded history starts), and a session without that much history before it is warm-up (NaN -> 0).
The declared warm-up is ``session`` with ``memory_bars`` bars before the session.

``talib`` is imported inside the functions that need it (an extra: ``pip install 'wf[talib]'``).
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from backend.core.errors import InputError

MEMORY_FACTOR = 4
MEMORY_MIN_EXTRA = 50


def _talib() -> Any:
    try:
        import talib
        from talib import abstract
    except ImportError:
        raise InputError(
            "env.features uses talib:... but the ta-lib package is not installed; install it with "
            "`pip install ta-lib` (or the extra: pip install -e '.[talib]')"
        ) from None
    return talib, abstract


def version() -> str:
    return str(_talib()[0].__version__)


def function_names() -> list[str]:
    return sorted(_talib()[0].get_functions())


def info(name: str) -> dict[str, Any]:
    """The abstract API's description of ``name`` (a did-you-mean hint when unknown)."""
    talib, abstract = _talib()
    known = talib.get_functions()
    if name.upper() not in known:
        close = difflib.get_close_matches(name.upper(), known, n=1)
        hint = f"; did you mean 'talib:{close[0]}'?" if close else "; `wf features` lists the TA-Lib functions"
        raise InputError(f"env.features: unknown TA-Lib function '{name}'{hint}")
    return dict(abstract.Function(name.upper()).info)


def check(name: str, params: dict[str, Any], output: str | None, text: str) -> dict[str, Any]:
    """Validated parameters (typed as TA-Lib's defaults) and the output name; InputError naming the spec."""
    fi = info(name)
    defaults = dict(fi["parameters"])
    typed: dict[str, Any] = {}
    for key, value in params.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"env.features: '{text}': {fi['name']} has no parameter '{key}' (its parameters: "
                f"{', '.join(defaults) or 'none'}){hint}"
            )
        try:
            typed[key] = type(defaults[key])(value) if not isinstance(defaults[key], int) else int(str(value))
        except ValueError:
            raise InputError(
                f"env.features: '{text}': parameter {key}={value!r} is not a {type(defaults[key]).__name__}"
            ) from None
    outputs = list(fi["output_names"])
    if output is None and len(outputs) > 1:
        raise InputError(
            f"env.features: '{text}': {fi['name']} has several outputs ({', '.join(outputs)}); pick one, e.g. "
            f"'{text}.{outputs[-1]}'"
        )
    if output is not None and output not in outputs:
        close = difflib.get_close_matches(output, outputs, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(
            f"env.features: '{text}': {fi['name']} has no output '{output}' (outputs: {', '.join(outputs)}){hint}"
        )
    return typed


def lookback(name: str, params: dict[str, Any]) -> int:
    """TA-Lib's own lookback: bars before the first defined value."""
    fn = _talib()[1].Function(name.upper())
    fn.set_parameters(**params)
    return int(fn.lookback)


def memory_bars(name: str, params: dict[str, Any]) -> int:
    """Bars before each session that the session's values are computed from (the memory rule)."""
    lb = lookback(name, params)
    return max(MEMORY_FACTOR * lb, lb + MEMORY_MIN_EXTRA)


def _call(name: str, params: dict[str, Any], output: str | None, inputs: dict[str, np.ndarray]) -> np.ndarray:
    fn = _talib()[1].Function(name.upper())
    fn.set_parameters(**params)
    res = fn(inputs)
    if isinstance(res, list):
        names = list(fn.info["output_names"])
        res = res[names.index(output)] if output else res[0]
    return np.asarray(res, dtype=np.float64)


def compute(market: Any, name: str, params: dict[str, Any], output: str | None, rel: bool) -> np.ndarray:
    """One value per bar by the memory rule (module docstring); NaN where a session lacks its history."""
    n = len(market)
    out = np.full(n, np.nan)
    memory = memory_bars(name, params)
    inputs = {k: np.ascontiguousarray(getattr(market, k), dtype=np.float64) for k in ("open", "high", "low", "close")}
    inputs["volume"] = np.ascontiguousarray(market.volume, dtype=np.float64)
    starts, ends = market.session_bounds()
    for a, b in zip(starts, ends, strict=True):
        lo = a - memory
        if lo < 0:
            continue
        part = {k: v[lo:b] for k, v in inputs.items()}
        out[a:b] = _call(name, params, output, part)[memory:]
    if rel:
        out = out / market.close - 1.0
    return out
