"""`wf tune`'s search space file: config key paths mapped to distributions, validated like configs."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backend.config.models import Config, validate
from backend.core.errors import InputError
from backend.core.jsonio import load_json
from backend.features.builtin import check_feature_names

SPACE_TYPES: dict[str, tuple[str, ...]] = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
SPACE_EXAMPLE = '{"sac.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": true}}'


# ------------------------------------------------------------------------------------------ the search space


@dataclass(frozen=True)
class Param:
    """One searched config key and its distribution."""

    key: str  # dotted config path, e.g. sac.learning_rate
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        """Choices Optuna cannot store (lists, objects) travel as JSON text."""
        return self.kind == "categorical" and not all(_scalar(c) for c in self.choices)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        if self.encoded:
            return json.loads(trial.suggest_categorical(self.key, [json.dumps(c) for c in self.choices]))
        return trial.suggest_categorical(self.key, list(self.choices))

    def decode(self, stored: Any) -> Any:
        """A value as Optuna stored it (trial.params) → the config value."""
        return json.loads(stored) if self.encoded else stored

    def extremes(self) -> list[tuple[str, Any]]:
        """The values whose acceptance by the config stands for the whole distribution."""
        if self.kind == "categorical":
            return [("choice", c) for c in self.choices]
        return [("low", self.low), ("high", self.high)]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


@dataclass(frozen=True)
class Space:
    path: str
    params: tuple[Param, ...]
    digest: str  # hash of the file's content (canonical JSON)

    def config(self, base: dict[str, Any], values: dict[str, Any]) -> Config:
        """The base config (a raw dict) with ``values`` set, validated strictly."""
        raw = copy.deepcopy(base)
        for key, value in values.items():
            _set(raw, key, value)
        cfg = validate(raw, "trial config")
        check_feature_names(cfg.env.features)  # what Window Setup checks beyond the schema
        return cfg

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        by_key = {p.key: p for p in self.params}
        return {k: by_key[k].decode(v) if k in by_key else v for k, v in params.items()}

    def document(self) -> dict[str, Any]:
        return {"path": self.path, "hash": self.digest, "params": {p.key: _describe(p) for p in self.params}}


def _describe(p: Param) -> dict[str, Any]:
    if p.kind == "categorical":
        return {"type": p.kind, "choices": list(p.choices)}
    out: dict[str, Any] = {"type": p.kind, "low": p.low, "high": p.high, "log": p.log}
    if p.step is not None:
        out["step"] = p.step
    return out


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(value)


def _config_keys(model: Any = Config, prefix: str = "") -> tuple[dict[str, Any], set[str]]:
    """Every settable key path of the Config model (leaves) and every section path."""
    leaves: dict[str, Any] = {}
    sections: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections.add(path)
            sub_leaves, sub_sections = _config_keys(ann, path + ".")
            leaves.update(sub_leaves)
            sections |= sub_sections
        else:
            leaves[path] = info
    return leaves, sections


def _check_key(origin: str, key: str) -> None:
    leaves, sections = _config_keys()
    if key in sections:
        inside = sorted(k for k in leaves if k.startswith(key + "."))[:4]
        raise InputError(
            f"{origin}: '{key}' is a config section, not a setting; search its keys instead, e.g. "
            + ", ".join(f"'{k}'" for k in inside)
        )
    if key not in leaves:
        close = difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else "; keys are config paths like 'sac.learning_rate'"
        raise InputError(f"{origin}: unknown config key '{key}'{hint} (see docs/config.md)")
    if key.startswith("data."):
        raise InputError(
            f"{origin}: '{key}': data settings cannot be searched (every trial trains on the same bars, loaded "
            "once); set them in the config or with --set"
        )


def _number(origin: str, key: str, spec: dict[str, Any], name: str, integer: bool) -> float | int:
    value = spec.get(name)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if value is None or isinstance(value, bool) or not ok or not math.isfinite(value):
        want = "an integer" if integer else "a finite number"
        raise InputError(f"{origin}: '{key}': '{name}' must be {want}, got {json.dumps(value)}")
    return value


def _parse_range(origin: str, key: str, kind: str, spec: dict[str, Any]) -> Param:
    integer = kind == "int"
    low = _number(origin, key, spec, "low", integer)
    high = _number(origin, key, spec, "high", integer)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise InputError(f"{origin}: '{key}': 'log' must be true or false, got {json.dumps(log)}")
    if low >= high:
        raise InputError(f"{origin}: '{key}': low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise InputError(f"{origin}: '{key}': a log scale needs low > 0, got low = {low}")
    step = spec.get("step")
    if step is not None:
        step = _number(origin, key, spec, "step", integer)
        if step <= 0:
            raise InputError(f"{origin}: '{key}': 'step' must be positive, got {step}")
        if log and (not integer or step != 1):
            raise InputError(f"{origin}: '{key}': 'step' and 'log' exclude each other; drop one")
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
            raise InputError(
                f"{origin}: '{key}': step {step} does not divide high - low ({high} - {low}); "
                f"choose high = {low + math.floor(n) * step:g} or another step"
            )
    if not integer:  # a float distribution samples floats: its bounds are checked as floats
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Param(key, kind, low, high, log, step)


def _parse_param(origin: str, key: str, spec: Any) -> Param:
    _check_key(origin, key)
    if not isinstance(spec, dict) or "type" not in spec:
        raise InputError(
            f"{origin}: '{key}': expected an object with a 'type' (float, int or categorical), e.g. {SPACE_EXAMPLE}"
        )
    kind = spec["type"]
    if kind not in SPACE_TYPES:
        close = difflib.get_close_matches(str(kind), list(SPACE_TYPES), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"{origin}: '{key}': unknown type {json.dumps(kind)}{hint}; use float, int or categorical")
    extra = sorted(set(spec) - set(SPACE_TYPES[kind]))
    if extra:
        close = difflib.get_close_matches(extra[0], SPACE_TYPES[kind], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(
            f"{origin}: '{key}': unknown field(s) {extra} for type {kind}{hint}; allowed: "
            + ", ".join(SPACE_TYPES[kind])
        )
    if kind != "categorical":
        return _parse_range(origin, key, kind, spec)
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise InputError(f"{origin}: '{key}': 'choices' must be a non-empty list, got {json.dumps(choices)}")
    texts = [json.dumps(c, sort_keys=True) for c in choices]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        raise InputError(f"{origin}: '{key}': choices {', '.join(dupes)} appear more than once")
    return Param(key, kind, choices=tuple(choices))


def load_space(path: str | Path) -> Space:
    """Read and check a search space file (structure only; :func:`check_space` checks it against a config)."""
    origin = str(path)
    raw = load_json(path, "search space file")
    if not isinstance(raw, dict) or not raw:
        raise InputError(
            f"{origin}: expected a non-empty JSON object mapping config keys to distributions, e.g. {SPACE_EXAMPLE}"
        )
    params = tuple(_parse_param(origin, key, spec) for key, spec in raw.items())
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]
    return Space(origin, params, digest)


def check_space(space: Space, base: dict[str, Any]) -> None:
    """Every bound and every choice, set alone in the base config, must be a config the harness accepts."""
    for p in space.params:
        for what, value in p.extremes():
            try:
                space.config(base, {p.key: value})
            except InputError as e:
                reason = str(e).removeprefix("trial config: ")
                if p.kind == "float" and "valid integer" in reason:
                    reason += "; this setting takes integers: use type int"
                raise InputError(
                    f"{space.path}: '{p.key}': {what} {json.dumps(value)} is rejected by the config: {reason}"
                ) from e
