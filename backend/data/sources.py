"""Raw bar readers: bundled sample, CSV/Parquet files as people have them, synthetic bars.

Each returns a frame with a tz-aware DatetimeIndex (``data.timezone``) and lower-case
columns open, high, low, close, volume. yfinance lives in :mod:`backend.data.yahoo`.

Bar files (:func:`read_bar_file`) are read the way they come out of pandas, brokers and vendors:

* **the time** — a DatetimeIndex (Parquet); a column named timestamp / datetime / date / time /
  ts / dt (any case, spaces and underscores ignored: ``Date Time`` works); the unnamed first
  column ``DataFrame.to_csv()`` writes for the index (or a column ``index``); split ``Date`` +
  ``Time`` columns (``01/02/2019`` + ``09:30``, or ``20190102`` + ``930``); epoch seconds,
  milliseconds, microseconds or nanoseconds (told apart by magnitude; epochs are UTC); or
  compact ``YYYYMMDD[HHMM[SS]]`` numbers.
* **time zones** — timestamps with offsets or ``Z`` are exact instants, converted to
  ``data.timezone`` (offsets that change with DST are fine); naive timestamps are read as
  wall-clock time in ``data.timezone`` (the DST fall-back hour is inferred from the order of
  the rows; a time that does not exist in the zone is an error).
* **the prices** — open/high/low/close/volume in any case (``o/h/l/c/v``, ``last`` and
  ``tick volume`` also work). ``Adj Close`` is ignored with a note; other numeric columns are kept
  (``data.columns``, features ``column:NAME``) with a note in the load report; a file without volume (FX)
  loads with volume missing (counted as 0) and a note.

A file that cannot be used is one :class:`DataError` line naming the file, the columns found and
the fix (empty file, header only, no time column, unparseable times, missing prices).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from backend.core import calendars
from backend.core.errors import DataError, InputError

SAMPLE_PATH = Path(__file__).resolve().parent / "samples" / "SPY_1m_2017_2019.parquet"
SAMPLE_SYMBOL = "SPY"
OHLCV = ("open", "high", "low", "close", "volume")
# normalised column names (lower case; spaces, '_', '-', '.' removed) searched for the time, in order
TIME_KEYS = ("timestamp", "datetime", "dt", "ts", "date", "time", "t", "opentime", "bartime", "index")
PRICE_KEYS: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closeprice", "last"),
    "volume": ("volume", "vol", "v", "tickvolume", "tickvol", "realvolume"),
}
ADJ_CLOSE_KEYS = ("adjclose", "adjustedclose", "adjclosingprice")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_SEPARATORS = (",", ";", "\t", "|")


@dataclass
class RawBars:
    """A bar file as read: normalised frame, notes for the load report, and where the time came from."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    time_source: str = ""


@lru_cache(maxsize=2)
def _read_sample(path: str) -> pd.DataFrame:
    frame = pd.read_parquet(path, engine="pyarrow").set_index("timestamp")
    frame.index = frame.index.as_unit("ns")
    return frame


def read_sample() -> pd.DataFrame:
    """The bundled SPY 1-minute bars (read once per process)."""
    if not SAMPLE_PATH.exists():
        raise DataError(f"{SAMPLE_PATH}: bundled sample missing; reinstall the package or run scripts/build_sample.py")
    return _read_sample(str(SAMPLE_PATH))


EXTRA_PREFIX = "extra:"  # internal key of an extra numeric column while the columns are being found


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 (16 hex) of the bars' timestamps (UTC ns), OHLCV and kept extra columns as float64: the data hash."""
    h = hashlib.sha256(frame.index.as_unit("ns").asi8.tobytes())
    for col in OHLCV:
        h.update(np.ascontiguousarray(frame[col].to_numpy(dtype=np.float64)).tobytes())
    for col in sorted(str(c) for c in frame.columns if c not in OHLCV):  # data.columns kept (none: hash unchanged)
        h.update(col.encode())
        h.update(np.ascontiguousarray(frame[col].to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- column finding


def _key(name: Any) -> str:
    text = re.sub(r"[\s_\-.]", "", str(name).strip().lower())
    return "" if re.fullmatch(r"unnamed:\d+", text) else text


def _columns_found(frame: pd.DataFrame) -> str:
    names = [repr(str(c)) if str(c).strip() and _key(c) else "'' (unnamed)" for c in frame.columns]
    more = f" … (+{len(names) - 12} more)" if len(names) > 12 else ""
    return ", ".join(names[:12]) + more if names else "none"


def _first_bad(values: pd.Series, parsed: pd.Series | pd.Index) -> str:
    bad = np.flatnonzero(np.asarray(pd.isna(parsed)) & ~np.asarray(pd.isna(values)))
    if len(bad):
        return f"{values.iloc[bad[0]]!r} (row {bad[0] + 1})"
    missing = np.flatnonzero(np.asarray(pd.isna(values)))
    return f"an empty cell (row {missing[0] + 1})" if len(missing) else "?"


def _from_numbers(values: pd.Series, name: str) -> tuple[pd.DatetimeIndex, str]:
    """Epoch s/ms/us/ns (UTC) by magnitude, or compact YYYYMMDD[HHMM[SS]] integers."""
    v = values.to_numpy(dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"column {name!r} has empty or non-finite cells, e.g. {_first_bad(values, values)}")
    mag = float(np.median(np.abs(v)))
    if np.all(v == np.floor(v)):
        digits = len(str(int(mag)))
        fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(digits)
        if fmt:
            try:
                out = pd.to_datetime(pd.Series(v.astype(np.int64)).astype(str), format=fmt)
                return pd.DatetimeIndex(out), f"times in column {name!r} read as {fmt.replace('%', '')} numbers"
            except (ValueError, TypeError):
                pass
    for unit, label, lo, hi in (
        ("s", "seconds", 1e8, 1e11),
        ("ms", "milliseconds", 1e11, 1e14),
        ("us", "microseconds", 1e14, 1e17),
        ("ns", "nanoseconds", 1e17, 1e20),
    ):
        if lo <= mag < hi:
            arr = v.astype(np.int64) if np.all(v == np.floor(v)) else v
            out = pd.to_datetime(arr, unit=unit, utc=True)
            return pd.DatetimeIndex(out), f"times in column {name!r} read as epoch {label} (UTC)"
    raise ValueError(
        f"column {name!r} holds numbers like {values.iloc[0]!r} that are neither epoch seconds/milliseconds/"
        "microseconds/nanoseconds nor YYYYMMDD dates"
    )


def _from_strings(values: pd.Series, name: str) -> tuple[pd.DatetimeIndex, str]:
    text = values.astype("string").str.strip()
    first = text.dropna().iloc[0] if text.notna().any() else ""
    note = ""
    try:
        fmt = guess_datetime_format(str(first))
        if fmt and ("%m/%d" in fmt or "%d/%m" in fmt or "%d.%m" in fmt or "%m.%d" in fmt):
            note = f"times in column {name!r} read with format {fmt}; check that day and month are not swapped"
    except Exception:
        pass
    parsed: pd.Series | None = None
    for kwargs in ({}, {"format": "ISO8601"}):
        try:
            parsed = pd.to_datetime(text, **kwargs)
            break
        except (ValueError, TypeError, OverflowError) as e:
            if "mixed timezones" in str(e).lower() or "mixed time" in str(e).lower():
                has_offset = text.str.contains(_OFFSET, na=False)
                if not has_offset[text.notna()].all():
                    raise ValueError(
                        f"column {name!r} mixes timestamps with and without UTC offsets (e.g. "
                        f"{text[~has_offset].iloc[0]!r}); write every timestamp with its offset, or none"
                    ) from None
                try:
                    parsed = pd.to_datetime(text, utc=True, **kwargs)
                    break
                except (ValueError, TypeError, OverflowError):
                    continue
    if parsed is None:
        coerced = pd.to_datetime(text, errors="coerce", format="mixed")
        raise ValueError(
            f"column {name!r} does not parse as timestamps: first bad value {_first_bad(values, coerced)}; "
            "write ISO timestamps like 2019-01-02 09:30:00 (with an offset like -05:00, or naive in data.timezone)"
        )
    if parsed.isna().any():
        raise ValueError(f"column {name!r} has rows without a timestamp: {_first_bad(values, parsed)}")
    return pd.DatetimeIndex(parsed), note


def _parse_time(values: pd.Series, name: str) -> tuple[pd.DatetimeIndex, str]:
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.isna().any():
            raise ValueError(f"column {name!r} has rows without a timestamp: {_first_bad(values, values)}")
        return pd.DatetimeIndex(values), ""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise ValueError(f"column {name!r} holds booleans, not timestamps")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _from_numbers(values, name)
    return _from_strings(values, name)


def _split_date_time(frame: pd.DataFrame, dcol: Any, tcol: Any) -> tuple[pd.DatetimeIndex, str]:
    def as_text(col: pd.Series, width: int | None) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            return col.dt.strftime("%Y-%m-%d")
        if pd.api.types.is_numeric_dtype(col.dtype):
            ints = col.astype(np.int64).astype(str)
            if width is None:
                return ints
            ints = ints.str.zfill(4 if int(col.max()) <= 2359 else 6)
            return ints.str[:2] + ":" + ints.str[2:4] + ":" + ints.str[4:].str.ljust(2, "0")
        return col.astype("string").str.strip()

    date_text, time_text = as_text(frame[dcol], None), as_text(frame[tcol], 1)
    idx, note = _from_strings(date_text + " " + time_text, f"{dcol} + {tcol}")
    return idx, note


def _time_index(frame: pd.DataFrame, origin: str) -> tuple[pd.DatetimeIndex, pd.DataFrame, list[str], str]:
    """Find and parse the time; returns it, the frame without the time column(s), notes, and its source."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index, frame, [], "the index"
    if not isinstance(frame.index, pd.RangeIndex):  # an index that holds the times (Parquet, read_csv(index_col=))
        frame = frame.reset_index()
    keys = [_key(c) for c in frame.columns]
    by_key: dict[str, Any] = {}
    for col, k in zip(frame.columns, keys, strict=True):
        by_key.setdefault(k, col)
    candidates: list[tuple[Any, ...]] = []
    if "date" in by_key and "time" in by_key:
        candidates.append((by_key["date"], by_key["time"]))
    candidates += [(by_key[k],) for k in TIME_KEYS if k in by_key]
    candidates += [(c,) for c, k in zip(frame.columns, keys, strict=True) if k == ""]
    price_keys = {a for names in PRICE_KEYS.values() for a in names} | set(ADJ_CLOSE_KEYS)
    if keys and keys[0] not in price_keys and (frame.columns[0],) not in candidates:
        candidates.append((frame.columns[0],))
    if not candidates:
        raise DataError(
            f"{origin}: no timestamp column (columns found: {_columns_found(frame)}); name the time column "
            "'timestamp' (or datetime/date/time, or Date + Time), or keep the index column that to_csv() writes"
        )
    first_error: str | None = None
    for cand in candidates:
        try:
            if len(cand) == 2:
                idx, note = _split_date_time(frame, *cand)
                source = f"columns {str(cand[0])!r} + {str(cand[1])!r}"
            else:
                idx, note = _parse_time(frame[cand[0]], str(cand[0]) or "(unnamed)")
                source = f"column {str(cand[0])!r}" if _key(cand[0]) else "the unnamed first column (to_csv index)"
        except (ValueError, TypeError, OverflowError) as e:
            first_error = first_error or str(e).splitlines()[0]
            continue
        return idx, frame.drop(columns=list(cand)), [note] if note else [], source
    raise DataError(f"{origin}: {first_error} (columns found: {_columns_found(frame)})")


def _localise(idx: pd.DatetimeIndex, timezone: str, origin: str, found: str) -> tuple[pd.DatetimeIndex, str]:
    if idx.tz is not None:
        return idx.tz_convert(timezone), ""
    try:
        out = idx.tz_localize(timezone, ambiguous="infer", nonexistent="raise")
    except ValueError as e:
        msg = re.split(r"[.,] [Tt]ry using", str(e).splitlines()[0])[0]
        raise DataError(
            f"{origin}: naive timestamps cannot be placed in {timezone} (data.timezone): {msg} (columns found: "
            f"{found}); write the times with their UTC offset (e.g. 2019-03-10 03:30:00-04:00) or in UTC with "
            'data.timezone = "UTC"'
        ) from e
    note = "" if timezone == "UTC" else f"naive timestamps read as {timezone} wall-clock time (data.timezone)"
    return out, note


def _price_columns(frame: pd.DataFrame, keys: dict[Any, str], origin: str, found: str) -> dict[str, Any]:
    """open/high/low/close (and volume) -> the frame's column of that name or alias; the four prices required."""
    cols: dict[str, Any] = {}
    for name, aliases in PRICE_KEYS.items():
        col = next((c for a in aliases for c, k in keys.items() if k == a), None)
        if col is not None:
            cols[name] = col
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if missing:
        adj = next((c for c, k in keys.items() if k in ADJ_CLOSE_KEYS), None)
        hint = (
            f"; {str(adj)!r} is there: rename it to close only if open/high/low are adjusted the same way"
            if adj is not None and "close" in missing
            else ""
        )
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)} (columns found: {found}); "
            f"name the price columns open, high, low, close (any case) and volume{hint}"
        )
    return cols


def _numeric_prices(frame: pd.DataFrame, cols: dict[str, Any], origin: str, found: str) -> dict[str, pd.Series]:
    """Each price column as float64; a value that is there but not a number is a DataError naming the first."""
    out: dict[str, pd.Series] = {}
    for name, col in cols.items():
        raw = frame[col]
        num = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw.dtype) else raw
        bad = num.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
        if bad.any():
            raise DataError(
                f"{origin}: column {str(col)!r} holds non-numeric values, first {_first_bad(raw, num.where(~bad))} "
                f"(columns found: {found}); fix or drop those rows"
            )
        out[name] = num.astype(np.float64)
    return out


def _extra_numeric(frame: pd.DataFrame, others: list[Any], taken: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """The other columns that hold numbers, by their stripped name (not one of the price names)."""
    numeric = {}
    for c in others:
        num = (
            pd.to_numeric(frame[c], errors="coerce") if not pd.api.types.is_numeric_dtype(frame[c].dtype) else frame[c]
        )
        if num.notna().any() and str(c).strip() not in taken:
            numeric[str(c).strip()] = num.astype(np.float64)
    return numeric


def _prices(frame: pd.DataFrame, origin: str, found: str) -> tuple[dict[str, pd.Series], list[str]]:
    keys = {c: _key(c) for c in frame.columns}
    cols = _price_columns(frame, keys, origin, found)
    notes: list[str] = []
    out = _numeric_prices(frame, cols, origin, found)
    if "volume" not in cols:
        notes.append(
            "no volume column: volume is missing on every bar (counted as 0); volume features (volume_z, "
            "vwap_dev) carry no information"
        )
    extra = [c for c in frame.columns if c not in cols.values()]
    adj = [c for c in extra if keys[c] in ADJ_CLOSE_KEYS]
    if adj:
        notes.append(
            f"column {str(adj[0])!r} ignored: bars use open/high/low/close as given (supply adjusted OHLC for "
            "adjusted bars)"
        )
    others = [c for c in extra if c not in adj]
    numeric = _extra_numeric(frame, others, out)
    if numeric:
        names = list(numeric)
        notes.append(
            f"extra numeric column(s) {', '.join(names[:8])}{' …' if len(names) > 8 else ''}: used only when listed "
            "in data.columns (with a resampling rule) and env.features names them as column:NAME"
        )
    dropped = [str(c) for c in others if str(c).strip() not in numeric]
    if dropped:
        notes.append(f"column(s) ignored: {', '.join(dropped[:8])}{' …' if len(dropped) > 8 else ''}")
    out.update({f"{EXTRA_PREFIX}{k}": v for k, v in numeric.items()})
    return out, notes


def normalise_bars(frame: pd.DataFrame, origin: str, timezone: str) -> RawBars:
    """Find the time (column, index, split, epoch) and OHLCV columns; index in ``timezone``."""
    found = _columns_found(frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index())
    idx, rest, notes, source = _time_index(frame, origin)
    prices, price_notes = _prices(rest, origin, found)
    idx, tz_note = _localise(pd.DatetimeIndex(idx), timezone, origin, found)
    values = {c: prices[c].to_numpy() if c in prices else np.full(len(idx), np.nan) for c in OHLCV}
    values.update({k[len(EXTRA_PREFIX) :]: v.to_numpy() for k, v in prices.items() if k.startswith(EXTRA_PREFIX)})
    out = pd.DataFrame(values, index=idx.as_unit("ns"))
    out.index.name = "timestamp"
    return RawBars(out, [n for n in (*notes, tz_note, *price_notes) if n], source)


def normalise_columns(frame: pd.DataFrame, origin: str, timezone: str) -> pd.DataFrame:
    """:func:`normalise_bars` without the notes (provider frames)."""
    return normalise_bars(frame, origin, timezone).frame


def _sniff_separator(path: Path, compressed: bool) -> str:
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
            head = fh.readline()
    except (OSError, EOFError):
        return ","
    counts = {sep: head.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _read_table(p: Path, path: str) -> pd.DataFrame:
    name = p.name.lower()
    compressed = name.endswith(".gz")
    base = name[:-3] if compressed else name
    suffix = Path(base).suffix
    if suffix in (".parquet", ".pq"):
        kind = "Parquet"
    elif suffix in (".csv", ".txt", ".tsv") or (compressed and suffix == ""):
        kind = "CSV"
    else:
        raise InputError(f"--data {path}: unsupported file type '{p.suffix}'; use .csv (.csv.gz, .txt) or .parquet")
    try:
        if kind == "Parquet":
            return pd.read_parquet(p, engine="pyarrow")
        return pd.read_csv(
            p, sep=_sniff_separator(p, compressed), encoding="utf-8-sig", skipinitialspace=True, low_memory=False
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file holds no header and no rows (columns found: none); export the bars again with a "
            "header row timestamp,open,high,low,close,volume and one row per bar"
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); save it as UTF-8 CSV") from e
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"{path}: cannot read as {kind} ({type(e).__name__}: {msg}); check that the file is a complete "
            f"{kind} file (re-export or re-download it)"
        ) from e


def read_bar_file(path: str, timezone: str) -> RawBars:
    """Read a CSV/Parquet bar file as people have them (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"--data {path}: file not found")
    if p.is_dir():
        raise InputError(f"--data {path}: is a folder; pass a CSV or Parquet file")
    if p.stat().st_size == 0:
        raise DataError(
            f"{path}: the file is empty (0 bytes; columns found: none); export the bars again with a header row "
            "timestamp,open,high,low,close,volume and one row per bar"
        )
    frame = _read_table(p, path)
    if frame.empty:
        what = "header only, no rows" if len(frame.columns) else "no columns and no rows"
        raise DataError(
            f"{path}: {what} (columns found: {_columns_found(frame)}); the file holds no bars — export it again "
            "with one row per bar"
        )
    try:
        return normalise_bars(frame, path, timezone)
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as e:
        msg = str(e).splitlines()[0]
        raise DataError(f"{path}: {msg} (columns found: {_columns_found(frame)})") from e


def synthetic_bars(
    start: str,
    end: str,
    calendar: str,
    timezone: str,
    seed: int = 0,
    drift: float = 0.0,
    vol: float = 0.0008,
    edge: float = 0.0,
    session_cut: str | None = None,
) -> pd.DataFrame:
    """Deterministic 1-minute bars on the calendar's sessions named ``start``..``end``.

    With ``edge = 0`` a pure random walk. With ``edge > 0`` a planted, learnable edge: the
    next bar's log return has mean ``edge × vol × sign(this bar's return)`` (each bar opens
    at the previous close, so this bar's return is its ``body`` feature, known at its close).
    For tests and sanity checks only; runs on it are labelled synthetic.
    """
    table = calendars.session_table(
        calendar,
        pd.Timestamp(start, tz="UTC") - pd.Timedelta(days=1),
        pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=2),
        session_cut,
        timezone,
    )
    keep = (table.label >= np.datetime64(start, "D")) & (table.label <= np.datetime64(end, "D"))
    if not keep.any():
        raise DataError(f"synthetic source: no {calendar} sessions between {start} and {end}")
    stamps = [
        np.arange(o, c, 60_000_000_000, dtype=np.int64)
        for o, c in zip(table.open[keep], table.close[keep], strict=True)
    ]
    idx = pd.DatetimeIndex(np.concatenate(stamps).astype("datetime64[ns]"), tz="UTC")
    rng = np.random.default_rng(seed)
    n = len(idx)
    rets = drift + vol * rng.standard_normal(n)
    if edge:
        for t in range(1, n):  # sequential by construction: the edge depends on the last return
            rets[t] += edge * vol * (1.0 if rets[t - 1] > 0 else -1.0)
    close = 100.0 * np.exp(np.cumsum(rets))
    open_ = np.r_[100.0, close[:-1]]
    wiggle = np.abs(rng.standard_normal(n)) * vol * close * 0.5
    high = np.maximum(open_, close) + wiggle
    low = np.minimum(open_, close) - wiggle
    volume = rng.integers(1_000, 50_000, n).astype(np.float64)
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)
    frame.index = frame.index.tz_convert(timezone).as_unit("ns")
    frame.index.name = "timestamp"
    return frame
