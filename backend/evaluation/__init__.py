"""Metrics, baselines and reports (pure NumPy where possible)."""
