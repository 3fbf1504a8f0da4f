"""Walk-forward research harness for intraday SAC trading agents."""

__version__ = "0.1.0"
