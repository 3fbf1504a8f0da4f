"""The pickles inside a bundle's ``.pth`` members, scanned before torch is imported.

``torch.load(weights_only=True)`` already refuses a pickle that names anything but tensors and plain
containers, but only after torch (seconds) is imported. This scan reads each ``.pth`` member of model.zip
(bounded by :func:`backend.training.bundle.member_bound` before this runs), opens it as the zip that
``torch.save`` writes, and walks its ``data.pkl`` opcodes with :mod:`pickletools` (nothing is unpickled):
a global outside the short list that a saved state dict needs is refused at once, naming the member and
the global. A member that is not a torch zip archive is refused too. torch's own check still runs at load.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

from backend.core.errors import EvaluationError

MAX_PTH_ENTRIES = 64
STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"})


def allowed_global(module: str, name: str) -> bool:
    """The globals a state dict of tensors (SB3's policy, optimisers, variables) pickles."""
    if module == "collections":
        return name == "OrderedDict"
    if module == "torch._utils":
        return name.startswith("_rebuild_")
    if module == "torch":
        return name.endswith("Storage") or name in {"Size", "device"} or name.startswith(("float", "int", "bfloat"))
    return False


def _globals(blob: bytes) -> list[tuple[str, str]]:
    found, strings = [], []
    for op, arg, _ in pickletools.genops(blob):
        if op.name in STRING_OPS:
            strings.append(str(arg))
        elif op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            found.append((module, name))
        elif op.name == "STACK_GLOBAL":
            found.append((strings[-2], strings[-1]) if len(strings) >= 2 else ("?", "?"))
    return found


def scan_member(zip_path: Path, member: str, blob: bytes) -> None:
    where = f"{zip_path}: member {member!r}"
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as inner:
            if len(inner.infolist()) > MAX_PTH_ENTRIES:
                raise EvaluationError(f"{where}: over {MAX_PTH_ENTRIES} entries; refusing the bundle")
            pickles = [n for n in inner.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                raise EvaluationError(f"{where}: not a torch weights archive (no single data.pkl); refusing the bundle")
            data = inner.read(pickles[0])
        bad = [f"{m}.{n}" for m, n in _globals(data) if not allowed_global(m, n)]
    except (zipfile.BadZipFile, ValueError, IndexError) as e:
        raise EvaluationError(f"{where}: not a readable torch weights archive ({e}); refusing the bundle") from e
    if bad:
        raise EvaluationError(
            f"{where}: its pickle names {bad[0]}, which weights never need (code would run on load); "
            "refusing the bundle"
        )


def scan_model_zip(path: Path) -> None:
    """Every ``.pth`` member of model.zip (sizes already bounded by the caller)."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".pth"):
                scan_member(path, info.filename, z.read(info))
