"""Strict JSON in, strict JSON out, and atomic file writes.

* Reading rejects duplicate keys and the non-standard literals NaN / Infinity, naming the file.
* Writing turns NaN / inf floats into ``null`` (JSON has no NaN) and never leaves a
  half-written file at the final path: data go to a temporary file in the same folder,
  are flushed and fsynced, and then renamed over the target.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backend.core import fsguard
from backend.core.errors import ArtifactError, InputError

TMP_PREFIX = ".tmp-"
MAX_JSON_BYTES = 64 << 20  # config, window, summary and metadata files are far smaller; refuse before reading more
MAX_CONFIG_BYTES = 4 << 20  # a config or window file (10,000 windows take ~1.5 MB); refused unread above this
MAX_KEYS = 1000  # a config or window file's object with more keys is refused (load_json(max_keys=...))
MAX_JSON_DEPTH = 200  # nesting deeper than this is refused before parsing (no RecursionError)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# temporary files are created 0600; finished files get the user's normal permissions (0666 & ~umask)
FILE_MODE = 0o666 & ~_read_umask()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"the literal {name} is not valid JSON; write null or a finite number")


def load_json(
    path: str | Path, what: str = "JSON file", max_keys: int | None = None, max_bytes: int | None = None
) -> Any:
    """Parse ``path`` strictly; any problem becomes an :class:`InputError` naming the file.

    ``max_keys``: an object with more keys is refused (checked as each object is parsed, before validation);
    ``max_bytes``: the file's size cap (default :data:`MAX_JSON_BYTES`), checked before reading.
    """
    path = Path(path)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if max_keys is not None and len(items) > max_keys:
            first = ", ".join(repr(k) for k, _ in items[:3])
            raise ValueError(
                f"{what} has an object with {len(items)} keys (first: {first}, ...), over the cap of {max_keys}; "
                "a config section has a few dozen keys at most — remove the extra keys"
            )
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}; keep one")
            out[key] = value
        return out

    text = read_text_bounded(path, what, max_bytes)
    check_depth(text, path, what)
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    except RecursionError as e:
        raise InputError(f"{path}: {what} is nested too deeply to parse; flatten it") from e
    except ValueError as e:
        raise InputError(f"{path}: {e}") from e


def read_text_bounded(path: str | Path, what: str, limit: int | None = None) -> str:
    """A regular file of at most ``limit`` bytes, decoded as UTF-8; every problem an InputError naming the file.

    The size is checked before reading (and the read itself is bounded, for files that grow or lie about their
    size); devices and FIFOs are refused without opening them; a decoding error names the byte offset.
    """
    path, limit = Path(path), MAX_JSON_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise InputError(f"{path}: {what} not found; check the path") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read {what}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: {what} is not a regular file (a device, FIFO or folder); give a file")
    if st.st_size > limit:
        raise InputError(f"{path}: {what} is {st.st_size} bytes, over the limit of {limit}; refusing to read it")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise InputError(f"{path}: cannot read {what}: {e.strerror}") from e
    if len(data) > limit:
        raise InputError(f"{path}: {what} is over the limit of {limit} bytes; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: {what} is not UTF-8 (byte 0x{data[e.start]:02x} at byte offset {e.start}); save it as UTF-8"
        ) from e


def check_depth(text: str, path: str | Path, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse nesting deeper than ``limit`` before parsing (brackets inside strings are skipped)."""
    if text.count("[") + text.count("{") <= limit:  # cannot nest deeper (the common case: no scan of the strings)
        return
    depth = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > limit:
                raise InputError(
                    f"{path}: {what} is nested deeper than {limit} levels (at byte offset {m.start()}); flatten it"
                )
        elif tok in "]}":
            depth -= 1


def sanitize(obj: Any) -> Any:
    """Recursively replace non-finite floats by None and NumPy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    # NumPy scalars and other numbers without importing NumPy here.
    if hasattr(obj, "item"):
        return sanitize(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def dumps(obj: Any) -> str:
    return json.dumps(sanitize(obj), indent=2, allow_nan=False) + "\n"


@contextlib.contextmanager
def atomic_path(path: str | Path, root: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and the final path is untouched.
    OSErrors become :class:`ArtifactError` (exit 6). The rename replaces ``path`` itself when it is a
    symbolic link (the link's target is never written). ``root``: the folder ``path`` must stay in — the
    folders on the way may not be links leaving it (FolderError, exit 2, naming the link), so the temporary
    file is created in a real folder inside ``root``.
    """
    path = Path(path)
    if root is not None:
        fsguard.check_no_escape(root, path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise ArtifactError(f"{path}: cannot write ({e.strerror or e}); check free space and permissions") from e
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, ArtifactError):
            raise
        raise ArtifactError(f"{path}: cannot write ({e.strerror or e}); check free space and permissions") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, writer: Callable[[Path], object], root: str | Path | None = None) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically (``root``: see :func:`atomic_path`)."""
    with atomic_path(path, root) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | Path, text: str, root: str | Path | None = None) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), root)


def write_json(path: str | Path, obj: Any, root: str | Path | None = None) -> Path:
    return write_text(path, dumps(obj), root)
