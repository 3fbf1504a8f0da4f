"""Run configuration: strict pydantic models, overrides, legacy format, hashing.

Every field is documented in docs/config.md. Validation is strict: an unknown key or a
wrong type (a boolean where a number belongs included) is an :class:`InputError` naming
the key path, with a "did you mean" hint for unknown keys.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from backend.config.agent import AgentConfig
from backend.config.base import (  # noqa: F401 - re-exported: the config's public names
    DATA_SOURCES,
    DEFAULT_FEATURES,
    LooseDate,
    NonNegFloat,
    PosFloat,
    Strict,
)
from backend.config.env_config import CostConfig, DSRConfig, EnvConfig  # noqa: F401 - re-exported
from backend.config.legacy import LEGACY_TOP, is_legacy  # noqa: F401 - re-exported
from backend.config.legacy import from_legacy as _from_legacy
from backend.core.errors import InputError
from backend.core.intervals import INTERVALS
from backend.core.jsonio import MAX_CONFIG_BYTES, MAX_KEYS, load_json

PACKAGE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "sac_intraday.json"
DEFAULT_CONFIG = PACKAGE_CONFIG  # kept for scripts; runs use default_config_path()


def default_config_path() -> Path:
    """configs/sac_intraday.json of the working tree when there is one, else the installed package's."""
    local = Path.cwd() / "configs" / "sac_intraday.json"
    return local if local.exists() else PACKAGE_CONFIG


class ContextSeriesConfig(Strict):
    """One context series of ``data.context`` (its features are used as ``SYMBOL:feature``)."""

    symbol: str
    """Ticker of the context series (e.g. QQQ, ^VIX); the name used in ``SYMBOL:feature`` specs."""
    source: Literal[("auto", *DATA_SOURCES)] = "auto"  # type: ignore[valid-type]
    """Where its bars come from (same sources as the traded symbol); the calendar and time zone are data's."""
    path: str | None = None
    """CSV/Parquet file for the `file` source."""
    interval: Literal[(*INTERVALS, "1d")] = "1d"  # type: ignore[valid-type]
    """Its bar size; 1d = one bar per session built from its intraday bars at data.interval, ending at the close.
    A bar of the traded symbol sees only context bars that ended at or before its own end."""


class DataConfig(Strict):
    """Where bars come from and how they are shaped."""

    symbol: str | None = None
    """Ticker; the sample source holds SPY only."""
    symbols: list[str] = Field(default_factory=list)
    """A universe: run this config once per symbol (a run folder per symbol, all windows on one pool; see
    docs/universes.md); `data.path` may hold `{symbol}`. With `symbols`, `symbol` is left out (or one of them)."""
    source: Literal[("auto", *DATA_SOURCES)] = "auto"  # type: ignore[valid-type]
    """sample, file, import, yfinance or synthetic; auto = file if `path` is set, the bundled sample for SPY (or no
    symbol), an import of the symbol if the cache holds one, else yfinance. Never falls back from one to another."""
    path: str | None = None
    """CSV/Parquet file for the `file` source; `{symbol}` in it is replaced by the symbol (bars/{symbol}_5m.csv)."""
    interval: Literal[INTERVALS] = "5m"  # type: ignore[valid-type]
    """Bar size the env trades on; 1-minute input is resampled within sessions."""
    start: LooseDate | None = None
    """First date to load (and of automatic windows)."""
    end: LooseDate | None = None
    """Last date to load, inclusive."""
    calendar: str = "XNYS"
    """exchange_calendars name (regular sessions, holidays, half days), or 24/7 (crypto) or 24/5 (FX)."""
    session_cut: str | None = None
    """For 24/7 and 24/5: the wall-clock time (HH:MM in data.timezone) where one session ends and the next
    begins, i.e. where the position is flattened; null = 00:00 UTC."""
    timezone: str = "America/New_York"
    """Exchange time zone; naive timestamps in files are read in this zone."""
    cache_dir: str | None = None
    """yfinance and import cache folder (default: $WF_CACHE_DIR/bars or the user's cache dir)."""
    benchmark_symbol: str | None = None
    """Second series for the benchmark buy-and-hold line and relative metrics (a symbol, or a CSV/Parquet path)."""
    max_jump: float | None = Field(0.25, gt=0)
    """Largest close-to-close move accepted (fraction); bigger ones look like unadjusted splits."""
    synthetic_seed: int = 0
    """Seed of the synthetic source."""
    synthetic_edge: float = Field(0.0, ge=0, lt=1)
    """Planted edge of the synthetic source (0 = random walk; see wf sanity)."""
    columns: dict[str, Literal["last", "sum", "mean", "max", "min"]] = Field(default_factory=dict)
    """Extra numeric columns of the bar file to keep, each with its resampling rule (last, sum, mean, max, min),
    e.g. {"imb": "mean"}; used as features `column:NAME`. A column's value is known at its bar's close."""
    context: list[ContextSeriesConfig] = Field(default_factory=list)
    """Context series whose features are used as `SYMBOL:feature`: entries {"symbol", "source" (as data.source),
    "path" (file source), "interval" (data's intervals or 1d, default 1d)}; calendar and time zone are data's. A bar
    sees only context bars that ended at or before its own end; earlier bars get 0 (no back-fill, count reported)."""

    @model_validator(mode="after")
    def _range(self) -> DataConfig:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"data.end ({self.end}) is before data.start ({self.start}); swap them")
        from backend.core.calendars import check_calendar  # lazy: keeps wf --help free of pandas

        check_calendar(self.calendar, self.session_cut)
        _check_universe(self.symbol, self.symbols, self.path)
        return self


SYMBOL_PLACEHOLDER = "{symbol}"
_SAFE_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,39}$")  # a ticker that is also a safe folder name


def _check_universe(symbol: str | None, symbols: list[str], path: str | None) -> None:
    """data.symbols: distinct tickers usable as folder names; data.symbol one of them (or left out); the only
    placeholder of data.path is {symbol}."""
    for s in symbols:
        if not _SAFE_SYMBOL.match(s):
            raise ValueError(
                f"data.symbols: {s!r} cannot name a run folder (letters, digits, '.', '-', '_', '=', at most 40, "
                "starting with a letter or digit); index tickers like ^VIX belong in data.context"
            )
    seen: dict[str, str] = {}
    for s in symbols:
        if s.upper() in seen:
            raise ValueError(f"data.symbols lists {seen[s.upper()]!r} twice ({s!r}); give each symbol once")
        seen[s.upper()] = s
    if symbols and symbol is not None and symbol.upper() not in seen:
        raise ValueError(
            f"data.symbol {symbol!r} is not one of data.symbols {symbols}: a universe runs every symbol of "
            "data.symbols; drop data.symbol (or pass --symbol to run one symbol alone)"
        )
    for name in re.findall(r"\{([^{}]*)\}", path or ""):
        if "{" + name + "}" != SYMBOL_PLACEHOLDER:
            raise ValueError(f"data.path {path!r}: unknown placeholder {{{name}}}; the only one is {{symbol}}")


def expand_symbol_path(path: str | None, symbol: str | None) -> str | None:
    """data.path with `{symbol}` replaced (None and placeholder-free paths unchanged)."""
    if path is None or SYMBOL_PLACEHOLDER not in path:
        return path
    if not symbol:
        raise InputError(
            f"data.path {path!r} holds {SYMBOL_PLACEHOLDER} but no symbol was given; pass --symbol, --symbols or "
            "set data.symbol / data.symbols"
        )
    return path.replace(SYMBOL_PLACEHOLDER, symbol)


class SACConfig(Strict):
    """Hyperparameters the SAC family shares, passed to the algorithm's constructor as named."""

    learning_rate: PosFloat = 3e-4
    """Adam learning rate of actor, critics and entropy coefficient."""
    buffer_size: int = Field(1_000_000, ge=1)
    """Replay buffer size (capped at training.total_timesteps: the buffer never needs more)."""
    learning_starts: int = Field(1000, ge=0)
    """Random-action steps before the first gradient step."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    tau: float = Field(0.005, gt=0, le=1)
    """Soft update coefficient of the target networks (unused by CrossQ)."""
    gamma: float = Field(0.99, gt=0, le=1)
    """Discount factor."""
    train_freq: int = Field(1, ge=1)
    """Env steps between updates."""
    gradient_steps: int = Field(1, ge=-1)
    """Gradient steps per update (-1: as many as env steps collected)."""
    ent_coef: str | PosFloat = "auto"
    """Entropy coefficient: 'auto', 'auto_<init>' or a positive number (unused by TD3)."""
    target_entropy: str | float = "auto"
    """Target entropy of the automatic coefficient: 'auto' (−action dim) or a number (unused by TD3)."""
    net_arch: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [256, 256])
    """Hidden layer sizes of actor and critics."""
    use_sde: bool = False
    """Generalised state-dependent exploration (SAC and TQC on sb3 only)."""

    @field_validator("ent_coef")
    @classmethod
    def _ent(cls, value: str | float) -> str | float:
        if isinstance(value, str):
            if value == "auto":
                return value
            if value.startswith("auto_"):
                try:
                    init = float(value[5:])
                except ValueError:
                    init = -1.0
                if init > 0 and math.isfinite(init):
                    return value
            raise ValueError(f"sac.ent_coef {value!r} must be 'auto', 'auto_<positive number>' or a positive number")
        return value

    @field_validator("target_entropy")
    @classmethod
    def _target(cls, value: str | float) -> str | float:
        if isinstance(value, str) and value != "auto":
            raise ValueError(f"sac.target_entropy {value!r} must be 'auto' or a number")
        return value


class TrainingConfig(Strict):
    """How each window's agent is trained."""

    total_timesteps: int = Field(100_000, ge=1)
    """Env steps per window."""
    seed: int = Field(0, ge=0)
    """Seed of SAC, torch, NumPy and the env."""
    normalize_obs: bool = True
    """Normalise observations with statistics fitted on the train span only (frozen)."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Torch device; auto uses CUDA only when available and networks are large (docs/config.md)."""
    torch_threads: int = Field(1, ge=1, le=256)
    """torch.set_num_threads for training (1 per sweep worker)."""
    progress_every: int = Field(1000, ge=1)
    """Steps between writes of training_progress.json."""
    tensorboard: bool = True
    """Write TensorBoard events under <output-dir>/tensorboard/<window>."""
    warm_start: bool = False
    """Continue each window from the previous window's weights (normalisation refitted)."""


class GatesConfig(Strict):
    """Acceptance gates checked per window on the out-of-sample evaluation."""

    min_trades: int | None = Field(None, ge=0)
    """Fewest out-of-sample trades a window must make."""
    min_sharpe: float | None = None
    """Lowest acceptable out-of-sample Sharpe ratio of a window."""
    max_drawdown: float | None = Field(None, gt=0, le=1)
    """Largest acceptable drawdown as a positive fraction (0.15 = 15 %)."""
    beat_buy_and_hold: bool = False
    """The window must return more than intraday buy-and-hold."""


class EvaluationConfig(Strict):
    """Out-of-sample replay."""

    deterministic: bool = True
    """Deterministic policy (the mean action); --stochastic samples instead."""
    seed: int = Field(0, ge=0)
    """Seed of stochastic replay and of the random baseline."""
    gates: GatesConfig = Field(default_factory=GatesConfig)
    """Acceptance gates checked per window."""


class Config(Strict):
    """A walk-forward run's configuration (JSON, validated strictly)."""

    data: DataConfig = Field(default_factory=DataConfig)
    """Where bars come from and how they are shaped."""
    agent: AgentConfig = Field(default_factory=AgentConfig)
    """Algorithm and backend."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    """The intraday trading env."""
    sac: SACConfig = Field(default_factory=SACConfig)
    """Hyperparameters the SAC family shares (SAC, TQC, CrossQ, TD3)."""
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    """How each window's agent is trained."""
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    """Out-of-sample replay."""

    @model_validator(mode="after")
    def _cross(self) -> Config:
        if self.sac.batch_size > self.sac.buffer_size:
            raise ValueError(
                f"sac.batch_size ({self.sac.batch_size}) exceeds sac.buffer_size ({self.sac.buffer_size}); "
                "lower batch_size or raise buffer_size"
            )
        if self.sac.learning_starts >= self.training.total_timesteps:
            raise ValueError(
                f"sac.learning_starts ({self.sac.learning_starts}) >= training.total_timesteps "
                f"({self.training.total_timesteps}): the agent would never learn; lower learning_starts"
            )
        return self


# ---------------------------------------------------------------------------------------
# Errors with key paths and "did you mean"

MAX_LISTED = 10  # problems listed in one message ("and N more" after them); did-you-mean only for those


def _check_key_counts(raw: dict[str, Any], source: str) -> None:
    """A section (or the top level) with more than MAX_KEYS keys is refused before validation."""
    for name, section in [("(top level)", raw), *raw.items()]:
        if isinstance(section, dict) and len(section) > MAX_KEYS:
            raise InputError(
                f"{source}: section {name!r} has {len(section)} keys, over the cap of {MAX_KEYS}; "
                "remove the unknown keys (docs/config.md lists the valid ones)"
            )


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = Config
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        model = fields[part].annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


def _format_error(err: Any, flags: dict[str, str] | None = None) -> str:
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1, cutoff=0.5)
            if close:
                hint = f"; did you mean '{'.'.join(str(p) for p in (*loc[:-1], close[0]))}'?"
            else:
                hint = f"; valid keys here: {', '.join(parent.model_fields)}"
        return f"unknown key '{path}'{hint}"
    value = err.get("input")
    shown = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else type(value).__name__
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "model_type" or not err["loc"]:
        return msg
    if flags and path in flags:  # set by a flag: name it as the user typed it
        return f"{flags[path]}: {msg} ({path})"
    return f"'{path}' = {shown}: {msg}"


def validate(raw: dict[str, Any], source: str = "config", flags: dict[str, str] | None = None) -> Config:
    """Validate a raw dict; raise :class:`InputError` listing every problem on one line."""
    if not isinstance(raw, dict):
        raise InputError(
            f"{source}: the config must be a JSON object with sections data, env, sac, training, evaluation"
        )
    _check_key_counts(raw, source)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        problems = "; ".join(_format_error(err, flags) for err in errors[:MAX_LISTED])
        more = f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise InputError(f"{source}: {problems}{more}") from e


# ---------------------------------------------------------------------------------------
# Loading, overrides, hashing


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b=value``; the value is JSON if it parses, else a string."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected key.path=value, e.g. --set sac.learning_rate=0.0001")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise InputError(f"--set {item!r}: empty key path")
    try:
        value = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError:
        value = text
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        parts, value = parse_override(item)
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(f"--set {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return raw


class LoadedConfig:
    """A validated config plus what the loading noticed."""

    def __init__(
        self,
        config: Config,
        path: str | None,
        warnings: list[str],
        unmapped: list[str],
        legacy: bool = False,
        given: frozenset[str] = frozenset(),
    ):
        self.config = config
        self.path = path
        self.warnings = warnings
        self.unmapped = unmapped
        self.legacy = legacy
        self.given = given  # dotted keys the file and the overrides spelled out


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (``sac.learning_rate``); lists stay values."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj} if prefix else {}


def given_keys(raw: Any) -> frozenset[str]:
    """Dotted paths of every leaf a raw config dict spells out."""
    return frozenset(flatten(raw))


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data_overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> LoadedConfig:
    """Read a config file (new or legacy format), apply overrides, validate strictly.

    ``flags``: dotted key → the flag that set it, as typed (``--timesteps 0``), for error messages.
    """
    source = str(path) if path is not None else str(default_config_path())
    raw = load_json(source, "config file", max_keys=MAX_KEYS, max_bytes=MAX_CONFIG_BYTES)
    warnings: list[str] = []
    unmapped: list[str] = []
    legacy = is_legacy(raw)
    if legacy:
        raw, unmapped = _from_legacy(raw, source, frozenset(SACConfig.model_fields))
        if unmapped:
            warnings.append(f"{source}: legacy keys not implemented by this harness (ignored): {', '.join(unmapped)}")
    if not isinstance(raw, dict):
        raise InputError(f"{source}: the config must be a JSON object")
    for key, value in (data_overrides or {}).items():
        if value is not None:
            raw.setdefault("data", {})
            if not isinstance(raw["data"], dict):
                break
            raw["data"][key] = value
    apply_overrides(raw, overrides or [])
    return LoadedConfig(validate(raw, source, flags), source, warnings, unmapped, legacy, given_keys(raw))


def config_dict(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


FEATURE_IDENTITY: list[Any] = []
"""Set by ``backend.features`` (a layer above): config -> identity of its non-built-in features (user module source
hashes, the ta-lib version), folded into the config hash so a changed feature function never matches a resume."""


def config_hash(config: Config) -> str:
    doc = config_dict(config)
    for hook in FEATURE_IDENTITY:
        identity = hook(config)
        if identity:
            doc = {**doc, "feature_identity": identity}
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
