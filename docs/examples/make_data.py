"""Write the worked example's bar files (docs/features.md) from the bundled SPY sample.

``spy_imb.csv``: SPY 5-minute bars of Dec 2018 - Feb 2019 with an extra column ``imb`` (a stand-in for a
vendor's order-flow imbalance, known at its bar's close). ``qqq.csv``: a second series on the same sessions
(a context symbol). Usage: python docs/examples/make_data.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np

from backend.data import sources


def main(out: Path) -> None:
    frame = sources.read_sample()
    frame = frame[(frame.index >= "2018-12-01") & (frame.index < "2019-03-01")]
    five = frame.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    five = five.dropna(subset=["close"])
    spread = (five["close"] - five["open"]) / (five["high"] - five["low"]).where(lambda s: s > 0, 1.0)
    five["imb"] = np.round(spread.to_numpy() * 0.5, 6)  # uses the bar's own OHLC only: known at its close
    out.mkdir(parents=True, exist_ok=True)
    five.to_csv(out / "spy_imb.csv", index_label="timestamp")
    rng = np.random.default_rng(7)
    drift = np.exp(np.cumsum(rng.normal(0, 2e-4, len(five))))
    qqq = five[["open", "high", "low", "close"]].mul(drift * 0.6, axis=0)
    qqq["volume"] = five["volume"] * 0.8
    qqq.to_csv(out / "qqq.csv", index_label="timestamp")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
