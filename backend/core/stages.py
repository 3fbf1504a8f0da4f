"""Stage markers: one line per stage on stdout, always (also with --quiet)."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXECUTOR = "Executor"
"""The stage of an executor that could not start (Ray, the local worker pool): nothing was trained."""

OK_MARK = "✅"
FAIL_MARK = "❌"

_writer: Callable[[str, bool], None] | None = None
"""Where lines go while a progress bar is shown (:class:`backend.core.progress.RunProgress`); else print."""


def set_writer(writer: Callable[[str, bool], None] | None) -> Callable[[str, bool], None] | None:
    """Send stage lines and :func:`say` lines through ``writer(line, to_stderr)`` (None: print them).

    Returns the previous writer, to restore it.
    """
    global _writer
    previous, _writer = _writer, writer
    return previous


def say(line: str, err: bool = False) -> None:
    """Print one line (stderr with ``err``) without tearing a progress bar: warnings, notes."""
    if _writer is not None:
        _writer(line, err)
    else:
        print(line, file=sys.stderr if err else sys.stdout, flush=True)


def _can_encode(text: str) -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def marker(ok: bool) -> str:
    mark = OK_MARK if ok else FAIL_MARK
    if _can_encode(mark + "—−"):
        return f"[STAGE {mark}]"
    return "[STAGE OK]" if ok else "[STAGE FAIL]"


def stage_line(ok: bool, name: str, detail: str = "", prefix: str = "") -> str:
    line = f"{marker(ok)} {name}"
    if detail:
        line += f" — {detail}"
    if prefix:
        line = f"[{prefix}] {line}"
    if not _can_encode(line):
        line = line.replace("—", "-").replace("−", "-").encode("ascii", "replace").decode("ascii")
    return line


def emit(ok: bool, name: str, detail: str = "", prefix: str = "") -> None:
    say(stage_line(ok, name, detail, prefix))


def fmt_pct(x: float | None, signed: bool = True) -> str:
    if x is None or x != x:
        return "n/a"
    sign = "+" if signed and x > 0 else ("−" if x < 0 else "")
    return f"{sign}{abs(x) * 100:.2f}%"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.{digits}f}".replace("-", "−")
