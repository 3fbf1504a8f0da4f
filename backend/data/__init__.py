"""Bars in: sources, validation, sessions, resampling (no torch here)."""
