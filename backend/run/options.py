"""What a run is asked to do, split by who reads it: Window Setup and the run driver.

The flags of `wf run` (and those `wf sweep`, `wf tune` and `wf audit` share with it) are parsed by the command line
into a :class:`RunRequest` (:meth:`RunRequest.from_flags`): its :class:`SetupOptions` are what Window Setup reads
(the config and the flags that override it, the data, the windows); its :class:`DriverOptions` are what a run
driver reads (the run folder, what to do with an existing one, how the windows execute, what to print). A caller
that only sets up (``wf eval``, ``wf features``) builds a :class:`SetupOptions` alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from backend.core.errors import InputError


@dataclass
class SetupOptions:
    """What Window Setup reads (:func:`backend.run.window_setup.setup`); each field is the flag of the same name."""

    symbol: str | None = None
    symbols: str | None = None  # --symbols A,B,C: a universe (backend.run.universe)
    windows: str | None = None
    start: str | None = None
    end: str | None = None
    train_days: int | None = None
    test_days: int | None = None
    step_days: int | None = None
    mode: str = "rolling"
    embargo_bars: int | None = None
    config: str | None = None
    source: str | None = None
    data: str | None = None
    interval: str | None = None
    cache_dir: str | None = None
    benchmark: str | None = None
    dry_run: bool = False  # no windows needed: describe the data only
    stochastic: bool = False
    seed: int | None = None
    timesteps: int | None = None
    sets: list[str] = field(default_factory=list)

    def overrides(self) -> list[str]:
        out = list(self.sets)
        if self.symbols is not None:  # the flag replaces the file's symbol and symbols
            out += ["data.symbol=null", "data.symbols=" + json.dumps(parse_symbols(self.symbols))]
        elif self.symbol is not None:  # one symbol alone, even from a universe config
            out.append("data.symbols=[]")
        if self.seed is not None:
            out.append(f"training.seed={self.seed}")
        if self.timesteps is not None:
            out.append(f"training.total_timesteps={self.timesteps}")
        if self.stochastic:
            out.append("evaluation.deterministic=false")
        return out

    def flags(self) -> dict[str, str]:
        """Config keys set by flags, each with its flag as the user typed it (error messages name the flag)."""
        out = {item.partition("=")[0].strip(): f"--set {item}" for item in self.sets}
        for key, flag, value in (
            ("training.seed", "--seed", self.seed),
            ("training.total_timesteps", "--timesteps", self.timesteps),
            ("data.symbol", "--symbol", self.symbol),
            ("data.symbols", "--symbols", self.symbols),
            ("data.path", "--data", self.data),
            ("data.cache_dir", "--cache-dir", self.cache_dir),
            ("data.benchmark_symbol", "--benchmark", self.benchmark),
        ):
            if value is not None:
                out[key] = f"{flag} {value}"
        return out


@dataclass
class DriverOptions:
    """What a run driver reads (:class:`backend.run.driver.RunDriver`); each field is the flag of the same name."""

    output_dir: str | None = None
    resume: bool = False
    overwrite: bool = False
    no_report: bool = False
    quiet: bool = False
    prefix: str = ""  # stage-marker prefix (a sweep member's, a seed's or a symbol's name); not a flag
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None


@dataclass
class RunRequest:
    """The parsed flags of one run: what Window Setup reads and what the driver reads."""

    setup: SetupOptions
    driver: DriverOptions

    @classmethod
    def from_flags(cls, **flags: Any) -> RunRequest:
        """Split parsed flags (click's parameter names) between the two; a name neither knows is a TypeError."""
        names = {f.name for f in dataclasses.fields(SetupOptions)}
        setup = {k: v for k, v in flags.items() if k in names}
        driver = {k: v for k, v in flags.items() if k not in names}
        return cls(SetupOptions(**setup), DriverOptions(**driver))


def parse_symbols(text: str) -> list[str]:
    """``--symbols SPY,QQQ,IWM`` as a list (validated with the config: data.symbols)."""
    symbols = [x.strip() for x in text.split(",") if x.strip()]
    if not symbols:
        raise InputError(f"--symbols {text!r}: expected comma-separated tickers, e.g. --symbols SPY,QQQ,IWM")
    return symbols
