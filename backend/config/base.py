"""What every config section shares: the strict pydantic base, constrained number types, the lists of data
sources and default features (one source of truth each)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

DATA_SOURCES = ("sample", "file", "import", "yfinance", "synthetic")  # the one list (--source, data.source)
DEFAULT_FEATURES = (
    "ret_1",
    "ret_5",
    "ret_15",
    "range_hl",
    "body",
    "vol_20",
    "volume_z",
    "vwap_dev",
    "gap",
    "time_of_day",
)

PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
LooseDate = Annotated[date, Field(strict=False)]


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, validate_default=True, use_attribute_docstrings=True
    )
