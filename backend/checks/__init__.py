"""Checks of the harness itself: the look-ahead audit and the sanity runs."""
