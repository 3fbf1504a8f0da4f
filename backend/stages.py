"""Stage markers: one line per stage on stdout, always (also with --quiet)."""

from __future__ import annotations

import sys

OK_MARK = "✅"
FAIL_MARK = "❌"


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
    print(stage_line(ok, name, detail, prefix), flush=True)


def fmt_pct(x: float | None, signed: bool = True) -> str:
    if x is None or x != x:
        return "n/a"
    sign = "+" if signed and x > 0 else ("−" if x < 0 else "")
    return f"{sign}{abs(x) * 100:.2f}%"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.{digits}f}".replace("-", "−")
