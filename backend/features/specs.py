"""Feature specs of ``env.features``: parsing (with did-you-mean hints), warm-up, identity and computation.

Grammar (docs/features.md):

- ``NAME`` — a built-in or a function registered with ``backend.features.register_feature`` (also from
  ``env.feature_modules``);
- ``talib:FUNC(k=v,...)[.output][/close]`` — a TA-Lib indicator (:mod:`backend.features.talib`);
- ``column:NAME`` — an extra numeric column of the bar file listed in ``data.columns``; known at its bar's close;
- ``SYMBOL:feature`` — any of the above computed on the ``data.context`` series SYMBOL and aligned so that a
  bar sees only context bars that ended at or before its own end (:mod:`backend.features.context`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.core.errors import InputError
from backend.features import builtin, user
from backend.features import context as context_series
from backend.features import talib as ta

_TALIB = re.compile(
    r"^talib:(?P<fn>[A-Za-z0-9_]+)(?:\((?P<args>[^()]*)\))?(?:\.(?P<out>[A-Za-z_]\w*))?(?P<rel>/close)?$"
)
_COLUMN = re.compile(r"^column:(?P<name>[A-Za-z_][\w.-]*)$")
_CONTEXT = re.compile(r"^(?P<sym>[A-Za-z^][A-Za-z0-9.^=-]*):(?P<inner>.+)$")


@dataclass(frozen=True)
class FeatureSpec:
    text: str
    kind: str  # builtin | talib | column | context
    name: str  # feature / TA-Lib function / column / context symbol
    params: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    rel: bool = False
    inner: FeatureSpec | None = None  # context: the feature of the context series


def _hint(word: str, known: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean '{prefix}{close[0]}'?" if close else (f"; known: {', '.join(known)}" if known else "")


def _args(text: str, args: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (a.strip() for a in (args or "").split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise InputError(f"env.features: '{text}': parameters are written k=v, e.g. talib:RSI(timeperiod=14)")
        out[key.strip()] = value.strip()
    return out


def parse(text: str, *, columns: list[str] | None = None, context: list[str] | None = None) -> FeatureSpec:
    """One spec, validated: unknown names, parameters, outputs, columns and symbols raise InputError with a hint.

    ``columns`` / ``context`` (the data config's lists) are checked when given (None: not checked here).
    """
    text = text.strip()
    if text.startswith("talib:"):
        m = _TALIB.match(text)
        if not m:
            raise InputError(f"env.features: '{text}' is not talib:FUNC(k=v,...)[.output][/close]")
        fn = ta.info(m["fn"])["name"]
        params = ta.check(fn, _args(text, m["args"]), m["out"], text)
        return FeatureSpec(text, "talib", fn, params, m["out"], bool(m["rel"]))
    if text.startswith("column:"):
        m = _COLUMN.match(text)
        if not m:
            raise InputError(f"env.features: '{text}' is not column:NAME")
        known = list(columns or [])
        if columns is not None and m["name"] not in known:
            raise InputError(
                f"env.features: '{text}': column '{m['name']}' is not in data.columns (add it with its resampling "
                f'rule, e.g. "columns": {{"{m["name"]}": "last"}}){_hint(m["name"], known, "column:")}'
            )
        return FeatureSpec(text, "column", m["name"])
    m = _CONTEXT.match(text)
    if m:
        known = list(context or [])
        if context is not None and m["sym"] not in known:
            raise InputError(
                f"env.features: '{text}': '{m['sym']}' is not a data.context symbol (list it in data.context)"
                f"{_hint(m['sym'], known)}"
            )
        return FeatureSpec(text, "context", m["sym"], inner=parse(m["inner"], columns=[]))
    if text not in builtin.FEATURES:
        raise InputError(f"env.features: unknown feature '{text}'{_hint(text, list(builtin.FEATURES))}")
    return FeatureSpec(text, "builtin", text)


def parse_all(
    names: list[str], *, columns: list[str] | None = None, context: list[str] | None = None
) -> list[FeatureSpec]:
    return [parse(n, columns=columns, context=context) for n in names]


def warmup(spec: FeatureSpec) -> tuple[int | str, int]:
    """(warm-up, bars before the session) as register_feature declares them."""
    if spec.kind == "builtin":
        return builtin.FEATURE_WARMUP.get(spec.name, 0), builtin.SESSION_PREV_BARS.get(spec.name, 0)
    if spec.kind == "talib":
        return builtin.SESSION, ta.memory_bars(spec.name, spec.params)
    if spec.kind == "column":
        return 0, 0
    assert spec.inner is not None
    return warmup(spec.inner)  # in the context series' own bars


def warmup_bars(names: list[str], session_bars: int, **kw: Any) -> int:
    """The most bars before a bar t any spec reads (context specs count in their own bars)."""
    most = 0
    for spec in parse_all(names, **kw):
        w, prev = warmup(spec)
        most = max(most, session_bars - 1 + prev if w == builtin.SESSION else int(w))
    return most


def identity(spec: FeatureSpec) -> dict[str, Any]:
    """What a feature's values depend on beyond the data: spec, parameters, code hash, library version."""
    out: dict[str, Any] = {"spec": spec.text, "kind": spec.kind}
    if spec.kind == "talib":
        out.update(params=spec.params, output=spec.output, rel_close=spec.rel, ta_lib=ta.version())
    elif spec.kind == "builtin":
        src = user.source_hash_of(spec.name)
        if src:
            out["module_source_sha256"] = src
    elif spec.kind == "context" and spec.inner is not None:
        out["inner"] = identity(spec.inner)
    return out


def nonbuiltin_identity(names: list[str]) -> dict[str, dict[str, Any]]:
    """Identities of the specs that are not plain package built-ins (empty for a built-in-only config)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in parse_all(names):
        if spec.kind != "builtin" or user.source_hash_of(spec.name):
            out[spec.text] = identity(spec)
    return out


def compute_one(market: builtin.MarketArrays, spec: FeatureSpec) -> np.ndarray:
    """One feature's values, one per bar (NaN allowed in warm-up)."""
    if spec.kind == "builtin":
        return np.asarray(builtin.FEATURES[spec.name](market), dtype=np.float64)
    if spec.kind == "talib":
        return ta.compute(market, spec.name, spec.params, spec.output, spec.rel)
    if spec.kind == "column":
        if spec.name not in market.columns:
            raise InputError(f"env.features: '{spec.text}': the bars carry no column '{spec.name}' (data.columns)")
        return read_column(market, spec.name)
    return context_series.aligned(market, spec, compute_one)


def read_column(market: builtin.MarketArrays, name: str) -> np.ndarray:
    """The column's value at bar t is the one of bar t (known at its close)."""
    return np.asarray(market.columns[name], dtype=np.float64)
