"""Foundations every layer uses: errors with exit codes, JSON I/O, intervals, stage markers, progress, calendars."""
