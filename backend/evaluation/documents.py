"""The shapes of the selection documents (``selection`` in a sweep's summary, PBO of a tune's trials) as TypedDicts.

Built in :mod:`backend.evaluation.selection`. A TypedDict only types the keys: the JSON's key order is the order
the builders write them in, unchanged. ``total=False`` where a refused or failed document carries only some keys
(``status`` and ``reason`` are always there; ``schema_version`` too in a selection document).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class DocumentState(StrEnum):
    """The ``status`` of a statistics document (a selection, PBO, a test against a baseline, an IQM, P(A > B)).

    Each member equals its string in the JSON: ``ok`` (computed), ``refused`` (too little to compute it on; the
    ``reason`` says what), ``failed`` (an unexpected error; the ``reason`` is its type and message).
    """

    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


class Logits(TypedDict):
    """The distinct λ values of CSCV (rounded to 12 digits) and how many splits gave each."""

    values: list[float]
    counts: list[int]


class Degradation(TypedDict):
    """Out-of-sample against in-sample Sharpe of the in-sample best, over the splits (at most MAX_PAIRS_SHOWN)."""

    slope: float
    intercept: float
    n_pairs: int
    in_sample: list[float]
    out_of_sample: list[float]


class PboDocument(TypedDict, total=False):
    """:func:`~backend.evaluation.selection.pbo_document`: refused ones carry status, reason, trials (and n_trials,
    n_bars when the statistic itself refused)."""

    status: DocumentState
    reason: str | None
    trials: str
    trial_names: list[str]
    pbo: float
    n_partitions: int
    n_trials: int
    n_bars: int
    n_bars_dropped: int
    bars_per_block: int
    n_combinations: int
    logits: Logits
    probability_of_loss: float
    degradation: Degradation
    chosen_counts: dict[str, int]
    rank_counts: list[int]


class ConfigRow(TypedDict):
    """One config of a sweep: its seeds (members), the Sharpe of their seed-mean series, IQM, verdict."""

    name: str
    members: list[str]
    sharpe_per_bar: float
    iqm: dict[str, Any]
    superior_seeds: dict[str, int]
    verdict: str
    verdict_reasons: list[str]


class ConfigPart(TypedDict):
    """The configs' rows and the best config's verdict (part of a selection document)."""

    configs: list[ConfigRow]
    best_config: str
    verdict: str
    verdict_reasons: list[str]


class Alignment(TypedDict, total=False):
    """How the members' returns were aligned (bars_per_member and skipped: sweeps of one symbol only)."""

    n_bars: int
    dropped_bars: int
    bars_per_member: dict[str, int]
    skipped: dict[str, str]


class SelectionDocument(TypedDict, total=False):
    """:func:`~backend.evaluation.selection.selection_statistics` and its callers' additions.

    Refused: schema_version, status, seed, warnings, reason. Failed: schema_version, status, reason.
    ``alignment`` is added by the sweep's entry points; ``unit`` and ``units`` by a sweep of universes.
    """

    schema_version: int
    status: DocumentState
    reason: str | None
    seed: int
    n_bars: int
    members: list[dict[str, Any]]
    configs: list[ConfigRow]
    best_config: str
    verdict: str
    verdict_reasons: list[str]
    pbo: PboDocument
    data_snooping: dict[str, dict[str, Any]]
    probability_of_improvement: dict[str, Any]
    confidence: float
    n_boot: int
    warnings: list[str]
    alignment: Alignment
    unit: str
    units: list[str]
