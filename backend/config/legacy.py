"""The earlier harness's config format, mapped to this schema (every key mapped or reported, never dropped)."""

from __future__ import annotations

from typing import Any

from backend.core.errors import InputError

# ---------------------------------------------------------------------------------------
# The earlier harness's format

LEGACY_TOP = {"agent_type", "symbol", "training_settings", "sac_hyperparameters"}
_LEGACY_SETTINGS: dict[str, tuple[str, ...]] = {
    "start_date": ("data", "start"),
    "end_date": ("data", "end"),
    "interval": ("data", "interval"),
    "benchmark_symbol": ("data", "benchmark_symbol"),
    "total_timesteps": ("training", "total_timesteps"),
    "reward_mode": ("env", "reward"),
    "initial_capital": ("env", "initial_capital"),
    "max_position_size": ("env", "max_position"),
    "normalize_obs": ("training", "normalize_obs"),
    "forced_exit_minutes": ("env", "forced_exit_minutes"),
    "random_seed": ("training", "seed"),
    "lookback": ("env", "lookback"),
    "allow_short": ("env", "allow_short"),
}
_LEGACY_NESTED: dict[str, dict[str, tuple[str, ...]]] = {
    "commission": {
        "per_share": ("env", "costs", "commission_per_share"),
        "min_fee": ("env", "costs", "commission_min"),
        "max_pct": ("env", "costs", "commission_max_pct"),
        "bps": ("env", "costs", "commission_bps"),
    },
    "slippage": {"buy_bps": ("env", "costs", "slippage_buy_bps"), "sell_bps": ("env", "costs", "slippage_sell_bps")},
    "dsr_config": {
        "decay": ("env", "dsr", "decay"),
        "epsilon": ("env", "dsr", "epsilon"),
        "warmup_steps": ("env", "dsr", "warmup_steps"),
        "clip_value": ("env", "dsr", "clip_value"),
    },
    "walk_forward_gates": {
        "min_trades": ("evaluation", "gates", "min_trades"),
        "min_sharpe": ("evaluation", "gates", "min_sharpe"),
        "max_drawdown": ("evaluation", "gates", "max_drawdown"),
    },
}
_INTERVAL_ALIASES = {"60m": "1h", "1hr": "1h", "1min": "1m", "5min": "5m", "15min": "15m", "30min": "30m"}


def is_legacy(raw: Any) -> bool:
    return isinstance(raw, dict) and bool(LEGACY_TOP & raw.keys()) and not ({"data", "env", "sac"} & raw.keys())


def _put(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def from_legacy(  # noqa: C901 - one flat branch per legacy key: a table read top to bottom
    raw: dict[str, Any], source: str = "config", sac_keys: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """Map an earlier-harness config to this schema.

    Returns the new raw dict and the dotted names of keys that have no meaning here
    (reported in one warning and in the summary's ``warnings``, never dropped silently).
    """
    out: dict[str, Any] = {}
    unmapped: list[str] = []
    for key, value in raw.items():
        if key == "agent_type":
            if not (isinstance(value, str) and value.upper().startswith("SAC")):
                raise InputError(f"{source}: 'agent_type' = {value!r}: only SAC agents are supported")
        elif key == "symbol":
            _put(out, ("data", "symbol"), value)
        elif key == "training_settings":
            if not isinstance(value, dict):
                raise InputError(f"{source}: 'training_settings' must be an object")
            for skey, svalue in value.items():
                if skey in _LEGACY_SETTINGS:
                    if skey == "interval" and isinstance(svalue, str):
                        svalue = _INTERVAL_ALIASES.get(svalue, svalue)
                    _put(out, _LEGACY_SETTINGS[skey], svalue)
                elif skey in _LEGACY_NESTED and isinstance(svalue, dict):
                    for nkey, nvalue in svalue.items():
                        target = _LEGACY_NESTED[skey].get(nkey)
                        if target is None:
                            unmapped.append(f"training_settings.{skey}.{nkey}")
                            continue
                        if skey == "walk_forward_gates" and nkey == "max_drawdown" and isinstance(nvalue, int | float):
                            nvalue = nvalue / 100.0 if nvalue > 1 else nvalue  # legacy gates were in percent
                        _put(out, target, nvalue)
                else:
                    unmapped.append(f"training_settings.{skey}")
        elif key == "sac_hyperparameters":
            if not isinstance(value, dict):
                raise InputError(f"{source}: 'sac_hyperparameters' must be an object")
            for hkey, hvalue in value.items():
                if hkey in sac_keys:
                    _put(out, ("sac", hkey), hvalue)
                else:
                    unmapped.append(f"sac_hyperparameters.{hkey}")
        else:
            unmapped.append(key)
    return out, unmapped
