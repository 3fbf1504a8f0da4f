"""The on-disk bar cache: one Parquet file + manifest per symbol, interval and kind.

Layout (``data.cache_dir`` / ``--cache-dir``, default ``$WF_CACHE_DIR/bars`` or the user's cache dir)::

    TNA_5m.parquet            TNA_5m.manifest.json             fetched from yfinance
    ABC_1m.import.parquet     ABC_1m.import.manifest.json      imported with `wf data import`
    TNA_5m.lock                                                 one lock per symbol + interval

Safety rules:

* **Symbols** are checked wherever a cache path is built (:func:`check_symbol`): letters,
  digits and ``. _ - ^ = + &``, no path separators, no ``..``, not empty — so
  ``--symbol ../../evil`` is an InputError (exit 2) and nothing is written.
* **Writers are serialised** per symbol + interval with a ``filelock`` lock: a writer takes
  the lock, re-reads the entry, merges its bars in (new bars win on equal timestamps) and
  writes both files atomically before releasing it, so concurrent imports and fetches lose
  nothing. Readers take the same lock, so they never see a data file and manifest of two
  different writes.
* **Reads are verified**: the manifest's content hash (and row count) must match the bars read
  back; an unreadable, truncated or altered entry is a :class:`CorruptEntry` (a DataError,
  exit 3) that names the files and the fix (``wf data delete`` then fetch or import again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from backend.core import fsguard
from backend.core.errors import DataError, InputError
from backend.core.intervals import INTERVALS
from backend.core.jsonio import load_json, write_atomic, write_json
from backend.data.sources import content_hash

KINDS = ("yfinance", "import")
LOCK_TIMEOUT_S = 300.0
_SYMBOL = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9._^=+&-]{0,39}$")


class CorruptEntry(DataError):
    """A cache entry that cannot be read back as written."""


def check_symbol(symbol: Any, where: str = "--symbol") -> str:
    """The symbol in upper case, or an InputError: it becomes part of a file name."""
    text = symbol if isinstance(symbol, str) else ""
    if not _SYMBOL.match(text) or ".." in text:
        raise InputError(
            f"{where} {symbol!r}: not a valid symbol for the bar cache (letters, digits and . _ - ^ = + &, "
            "at most 40 characters; no path separators, no '..', not empty); use the ticker, e.g. TNA or EURUSD=X"
        )
    return text.upper()


@dataclass(frozen=True)
class Entry:
    """One cache entry: bars of one symbol at one interval from one kind of source."""

    folder: Path
    symbol: str
    interval: str
    kind: str = "yfinance"

    @property
    def stem(self) -> str:
        return f"{self.symbol}_{self.interval}" + ("" if self.kind == "yfinance" else f".{self.kind}")

    @property
    def data_path(self) -> Path:
        return self.folder / f"{self.stem}.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.folder / f"{self.stem}.manifest.json"

    @property
    def lock_path(self) -> Path:
        return self.folder / f"{self.symbol}_{self.interval}.lock"

    def exists(self) -> bool:
        return self.data_path.exists() and self.manifest_path.exists()

    def fix(self, manifest: dict[str, Any] | None = None) -> str:
        """What to do about a corrupt entry, as a command line."""
        delete = f"wf data delete {self.symbol} --interval {self.interval}"
        delete += f" --cache-dir {self.folder}" + (" --import" if self.kind == "import" else "")
        if self.kind == "import":
            files = [f.get("path") for f in (manifest or {}).get("files", []) if isinstance(f, dict)]
            again = f"wf data import {files[-1] if files else 'FILE'} --symbol {self.symbol} --interval {self.interval}"
        else:
            ranges = (manifest or {}).get("ranges") or [["START", "END"]]
            again = (
                f"wf data fetch {self.symbol} --interval {self.interval} --start {ranges[0][0]} --end {ranges[-1][1]}"
            )
        return f"delete the entry ({delete}, or remove {self.stem}.parquet and its manifest) and run {again}"


def entry(folder: str | Path, symbol: str, interval: str, kind: str = "yfinance", where: str = "--symbol") -> Entry:
    """A validated cache entry (symbol, interval and kind checked before any path is built)."""
    if interval not in INTERVALS:
        raise InputError(f"--interval {interval!r}: use one of {', '.join(INTERVALS)}")
    if kind not in KINDS:  # pragma: no cover - internal
        raise InputError(f"unknown cache kind {kind!r}")
    return Entry(Path(folder), check_symbol(symbol, where), interval, kind)


@contextmanager
def locked(e: Entry, timeout: float | None = None) -> Iterator[None]:
    """Hold the entry's lock (one per symbol + interval); a DataError if another process keeps it too long."""
    try:
        e.folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cache folder {e.folder}: cannot create it ({err.strerror}); pass --cache-dir") from err
    fsguard.refuse_link(e.lock_path, "the cache's lock file", InputError)  # exit 2 naming it, never followed
    lock = FileLock(str(e.lock_path), timeout=LOCK_TIMEOUT_S if timeout is None else timeout)
    try:
        lock.acquire()
    except Timeout:
        raise DataError(
            f"cache entry {e.stem} is locked by another process ({e.lock_path}) for more than "
            f"{lock.timeout:.0f} s; wait for the other wf command to finish and try again"
        ) from None
    except OSError as err:
        raise InputError(
            f"{e.lock_path}: cannot take the cache's lock ({err.strerror or err}); check the cache folder's "
            "permissions or pass another --cache-dir"
        ) from err
    try:
        yield
    finally:
        lock.release()


def _corrupt(e: Entry, reason: str, manifest: dict[str, Any] | None = None) -> CorruptEntry:
    return CorruptEntry(f"cache entry {e.data_path} is corrupt ({reason}); {e.fix(manifest)}")


def read(e: Entry) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Bars and manifest of an entry, verified against the manifest; (None, {}) if there is none.

    Call under :func:`locked` when a writer may be at work.
    """
    has_data, has_manifest = e.data_path.exists(), e.manifest_path.exists()
    if not has_data and not has_manifest:
        return None, {}
    if not has_manifest:
        raise _corrupt(e, "its manifest is missing")
    try:
        meta = load_json(e.manifest_path, "cache manifest")
    except InputError as err:
        raise _corrupt(e, f"manifest unreadable: {str(err).split(': ', 1)[-1]}") from err
    if not isinstance(meta, dict) or "content_hash" not in meta:
        raise _corrupt(e, "the manifest has no content_hash")
    if not has_data:
        raise _corrupt(e, "its Parquet file is missing", meta)
    try:
        frame = pd.read_parquet(e.data_path, engine="pyarrow")
        if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
            raise ValueError("no time index")
        frame.index = frame.index.as_unit("ns")
        found = content_hash(frame)
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else ""
        raise _corrupt(e, f"unreadable Parquet: {type(err).__name__}: {msg}", meta) from err
    if found != meta["content_hash"] or len(frame) != meta.get("rows", len(frame)):
        raise _corrupt(e, f"content hash {found} != {meta['content_hash']} in the manifest", meta)
    return frame, meta


def write(e: Entry, frame: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write bars then manifest (each atomically); the manifest gets rows, range and content hash. Hold the lock."""
    frame = frame.sort_index()
    manifest = {
        **manifest,
        "symbol": e.symbol,
        "interval": e.interval,
        "first_bar": str(frame.index[0]),
        "last_bar": str(frame.index[-1]),
        "rows": len(frame),
        "content_hash": content_hash(frame),
    }
    # renamed into place: an entry file that is a symlink is replaced as a link, its target never written
    write_atomic(e.data_path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", compression="zstd"), e.folder)
    write_json(e.manifest_path, manifest, e.folder)
    return manifest


def merge(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two bar frames; on equal timestamps the new bar wins."""
    if old is None or old.empty:
        out = new
    else:
        out = pd.concat([old.tz_convert(new.index.tz), new])
    return out[~out.index.duplicated(keep="last")].sort_index()


def merge_ranges(ranges: list[list[str]]) -> list[list[str]]:
    """Merge [first, last] date ranges that touch or overlap."""
    spans = sorted((date.fromisoformat(a), date.fromisoformat(b)) for a, b in ranges)
    merged: list[list[date]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [[a.isoformat(), b.isoformat()] for a, b in merged]


def find_imports(folder: str | Path, symbol: str) -> list[Entry]:
    """The import entries of ``symbol`` (any interval), finest first."""
    sym = check_symbol(symbol)
    found = [entry(folder, sym, iv, "import") for iv in INTERVALS]
    return [e for e in found if e.manifest_path.exists() or e.data_path.exists()]


def entries(folder: str | Path) -> list[Entry]:
    """Every entry in ``folder`` (by its manifest or data file)."""
    folder = Path(folder)
    out: dict[tuple[str, str, str], Entry] = {}
    if not folder.is_dir():
        return []
    for p in sorted([*folder.glob("*.manifest.json"), *folder.glob("*.parquet")]):
        stem = p.name.removesuffix(".manifest.json").removesuffix(".parquet")
        kind = "import" if stem.endswith(".import") else "yfinance"
        base = stem.removesuffix(".import")
        sym, _, interval = base.rpartition("_")
        if interval not in INTERVALS or not _SYMBOL.match(sym):
            continue
        out[(sym, interval, kind)] = Entry(folder, sym, interval, kind)
    return list(out.values())


def delete(e: Entry) -> list[Path]:
    """Remove an entry's files (under its lock; a symlink is removed as a link); returns what was removed."""
    removed = []
    with locked(e):
        for p in (e.data_path, e.manifest_path):
            if fsguard.remove(e.folder, p, "the cache folder"):
                removed.append(p)
    return removed
