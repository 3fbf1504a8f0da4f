"""The run folder: a lock per folder, resume by content, what --overwrite may clear, artifacts written atomically.

* **Lock.** One writer per run (or sweep) folder: ``filelock`` on ``.wf.lock`` (an OS lock that
  dies with its holder, so a dead holder's lock is simply taken over); the holder's pid, host
  and command are kept in ``.wf.lock.json`` so that a refused second writer can name it.
* **Resume by content.** A window is skipped only when its resolved span, the config hash, the
  data hash and its bundle's hashes all match what would run now. Finished windows that would
  have to be retrained because the config, the data or the window changed are refused (exit 2)
  unless ``--overwrite``; a corrupt summary.json is reported, never silently replaced.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from backend.core import fsguard
from backend.core.errors import EvaluationError, FolderError, InputError
from backend.core.jsonio import load_json, write_atomic, write_json
from backend.core.status import PRUNED, Status
from backend.training import bundle

LOCK_FILE = ".wf.lock"
LOCK_INFO = ".wf.lock.json"
TENSORBOARD = "tensorboard"
SPAN_KEYS = ("train_start", "train_end", "test_start", "test_end", "train_bars", "test_bars")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FolderLock:
    """Exclusive lock of a run or sweep folder for the life of one command."""

    def __init__(self, folder: Path, what: str = "run") -> None:
        self.folder, self.what = folder, what
        self._lock = FileLock(str(folder / LOCK_FILE), timeout=0)
        self._info = folder / LOCK_INFO

    def __enter__(self) -> FolderLock:
        fsguard.refuse_link(self.folder / LOCK_FILE, f"the lock file of this {self.what} folder")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise FolderError(
                f"{self.folder}: {self._holder()} is writing this folder; wait for it to finish or choose another "
                "--output-dir"
            ) from None
        except OSError as e:
            raise FolderError(
                f"{self.folder / LOCK_FILE}: cannot take the lock of this {self.what} folder ({e.strerror or e}); "
                "check the folder's permissions or choose another --output-dir"
            ) from e
        write_json(
            self._info,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "user": _user(),
                "since": now(),
                "command": " ".join(sys.argv[:6]),
            },
        )
        return self

    def _holder(self) -> str:
        try:
            info = load_json(self._info, "lock info")
            return f"another {self.what} (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"
        except InputError:
            return f"another {self.what}"

    def __exit__(self, *exc: object) -> None:
        self._info.unlink(missing_ok=True)
        self._lock.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "?"


def check_output_dir(path: str | None) -> Path:
    if path is None or not str(path).strip():
        raise InputError("--output-dir is empty; give a folder for the run")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {path}: is a file; choose a folder")
    create(out)  # now, so that a folder that cannot be made fails before Window Setup is declared ok
    if not os.access(out, os.W_OK):
        raise InputError(f"--output-dir {path}: not writable; choose another folder")
    return out


def create(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output-dir {out}: cannot create the folder ({e.strerror}); choose another path") from e


# What the harness writes into a run, seed or sweep folder (besides its window folders and temporary files);
# --overwrite removes these and nothing else.
HARNESS_FILES = frozenset(
    {
        "summary.json", "config.resolved.json", "windows.resolved.json", "command.txt", "environment.json",
        "report.html", "aggregate.png", "sweep.json", "sweep.csv", "study.json", LOCK_FILE, LOCK_INFO,
    }
)  # fmt: skip


def _is_harness_folder(out: Path) -> bool:
    """A folder this harness wrote, recognised by its own distinctive summary.json or sweep.json.

    A run summary has a ``config_hash``, a ``status`` of :data:`SUMMARY_STATUSES` and a ``windows`` list of
    objects with an ``id``; a multi-seed / universe summary has ``kind`` ``multi_seed`` / ``universe``, a
    ``status`` and a ``runs`` list; a sweep.json has a ``schema_version`` and a ``members`` list of objects.
    An unparseable or foreign file is not ours: --overwrite then refuses the folder (exit 2).
    """
    return _summary_is_ours(out / "summary.json") or _sweep_is_ours(out / "sweep.json")


def _read_doc(path: Path) -> Any:
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return load_json(path, "summary")
    except InputError:
        return None


SUMMARY_STATUSES = frozenset({*Status, PRUNED})  # a summary's status: a Status, or a pruned `wf tune` trial's


def _summary_is_ours(path: Path) -> bool:
    doc = _read_doc(path)
    if not isinstance(doc, dict) or doc.get("status") not in SUMMARY_STATUSES:
        return False
    if doc.get("kind") in ("multi_seed", "universe"):
        return isinstance(doc.get("runs"), list)
    windows = doc.get("windows")
    return (
        isinstance(doc.get("config_hash"), str)
        and isinstance(windows, list)
        and all(isinstance(w, dict) and "id" in w for w in windows)
    )


def _sweep_is_ours(path: Path) -> bool:
    doc = _read_doc(path)
    members = doc.get("members") if isinstance(doc, dict) else None
    return (
        isinstance(doc, dict)
        and "schema_version" in doc
        and isinstance(members, list)
        and all(isinstance(m, dict) for m in members)
    )


# What a window folder holds; only these (and temporary files) are removed from a window folder.
WINDOW_FILES = frozenset(
    {
        "model.zip", "obs_stats.npz", "vecnormalize.pkl", "metadata.json", "evaluation.json", "equity.csv",
        "trades.csv", "worker.pid", "training.log", "training_progress.json", "report.png",
    }
)  # fmt: skip
WINDOW_NAME = re.compile(r"^w\d+$")
TB_EVENTS = "events.out.tfevents."


def _is_real_dir(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink()


def _looks_like_window_dir(child: Path) -> bool:
    """A stale window folder of ours: named like a window (w01) and holding a bundle file of ours."""
    if not _is_real_dir(child) or not WINDOW_NAME.match(child.name):
        return False
    return any(c.name in WINDOW_FILES for c in child.iterdir())


def _window_ids(out: Path) -> set[str]:
    doc = _read_doc(out / "summary.json")
    windows = doc.get("windows") if isinstance(doc, dict) else None
    return {str(w.get("id")) for w in windows if isinstance(w, dict)} if isinstance(windows, list) else set()


def check_clearable(out: Path) -> list[Path]:
    """--overwrite may clear ``out``: empty, or a folder of ours; else FolderError naming what it holds.

    Called before the folder is locked too, so that a refused folder does not even get a lock file. A folder
    of ours holds our summary.json / sweep.json, or only run folders of ours (a sweep or multi-seed folder
    stopped before its own summary was written). Returns its entries (the lock files left out).
    """
    if not out.is_dir():
        return []
    entries = sorted(c for c in out.iterdir() if c.name not in (LOCK_FILE, LOCK_INFO))
    if not entries or _is_harness_folder(out):
        return entries
    if all(c.name.startswith(".tmp-") or (_is_real_dir(c) and _is_harness_folder(c)) for c in entries):
        return entries
    shown = ", ".join(c.name + ("/" if c.is_dir() else "") for c in entries[:8])
    more = f" and {len(entries) - 8} more" if len(entries) > 8 else ""
    raise FolderError(
        f"--overwrite {out}: not a run, seed or sweep folder of this harness (no summary.json or sweep.json this "
        f"harness wrote: missing, unreadable or foreign); it holds {shown}{more}. Nothing was deleted; choose an "
        "empty or new --output-dir, or remove these yourself"
    )


def clear(out: Path) -> None:
    """--overwrite: remove the previous run's own files, and only those (the lock files stay: we hold them).

    Removed: the top-level files the harness writes (:data:`HARNESS_FILES`), temporary files, in each window
    folder the files of :data:`WINDOW_FILES`, in the tensorboard folder the event files, and in each seed /
    symbol / member folder of ours the same recursively; a folder is removed only if it ends up empty. Anything
    else is kept and named in one note line. A symlink is removed as a link, never followed.
    """
    entries = check_clearable(out)
    if not entries:
        return
    kept: list[Path] = []
    _clear_run(out, kept)
    if kept:
        shown = ", ".join(str(p.relative_to(out)) for p in kept[:10])
        more = f" and {len(kept) - 10} more" if len(kept) > 10 else ""
        print(f"note: --overwrite kept entries the harness does not write: {shown}{more}", file=sys.stderr)


def _unlink(p: Path) -> None:
    if _is_real_dir(p):
        return
    p.unlink(missing_ok=True)


def _rmdir_if_empty(p: Path) -> None:
    if _is_real_dir(p) and not any(p.iterdir()):
        p.rmdir()


def _clear_run(folder: Path, kept: list[Path], top: bool = True) -> None:
    """``top``: the folder whose lock this command holds (its lock files stay); a sub-run's are stale, removed."""
    ids = _window_ids(folder)
    for child in sorted(folder.iterdir()):
        name = child.name
        if top and name in (LOCK_FILE, LOCK_INFO):
            continue
        if child.is_symlink() and (name == TENSORBOARD or name in ids or name in HARNESS_FILES):
            _unlink(child)  # one of our entries as a link: the link goes, its target is never touched
        elif name == TENSORBOARD and _is_real_dir(child):
            _clear_tensorboard(child, kept)
        elif _is_real_dir(child) and (name in ids or _looks_like_window_dir(child)):
            _clear_files(child, WINDOW_FILES, kept)
        elif _is_real_dir(child) and _is_harness_folder(child):
            _clear_run(child, kept, top=False)
            _rmdir_if_empty(child)
        elif (name in HARNESS_FILES or name.startswith(".tmp-")) and not _is_real_dir(child):
            _unlink(child)
        else:
            kept.append(child)


def _clear_files(folder: Path, names: frozenset[str], kept: list[Path]) -> None:
    for child in sorted(folder.iterdir()):
        if (child.name in names or child.name.startswith(".tmp-")) and not _is_real_dir(child):
            _unlink(child)
        else:
            kept.append(child)
    _rmdir_if_empty(folder)


def _clear_tensorboard(folder: Path, kept: list[Path]) -> None:
    for child in sorted(folder.iterdir()):
        if _is_real_dir(child):
            _clear_tensorboard(child, kept)
        elif child.name.startswith(TB_EVENTS) or child.name.startswith(".tmp-"):
            _unlink(child)
        else:
            kept.append(child)
    _rmdir_if_empty(folder)


def check_paths(out: Path, window_ids: list[str]) -> None:
    """Before anything is written: no window folder or TensorBoard folder leads out of ``out`` through a link.

    A symlink that leaves the run folder is refused (exit 2) naming it and its target; links that stay
    inside are fine. The files at the top of the folder are replaced by rename (a link there is replaced,
    never written through).
    """
    tb = out / TENSORBOARD
    for path in [tb, tb / "hparams", *(p for wid in window_ids for p in (out / wid, tb / wid))]:
        fsguard.check_no_escape(out, path, "the run folder")


def read_previous(out: Path) -> dict[str, Any] | None:
    path = out / "summary.json"
    if not path.exists():
        return None
    try:
        doc = load_json(path, "summary")
    except InputError as e:
        raise FolderError(f"{e}; the previous run's summary is unreadable — pass --overwrite to start over") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("windows"), list):
        raise FolderError(f"{path}: not a run summary; pass --overwrite to start over, or choose another --output-dir")
    return doc


@dataclass
class ResumePlan:
    skip: dict[str, dict[str, Any]]  # window id -> its finished summary entry
    reasons: dict[str, str]  # window id -> why it (re)trains


def plan_resume(
    previous: dict[str, Any], *, config_hash: str, data_hash: str, entries: Sequence[Mapping[str, Any]], out: Path
) -> ResumePlan:
    """Decide per window: skip (everything matches) or train (and why); refuse to lose finished work."""
    try:
        return _plan_resume(previous, config_hash, data_hash, entries, out)
    except FolderError:
        raise
    except (TypeError, AttributeError, KeyError, ValueError) as e:
        raise FolderError(
            f"{out / 'summary.json'}: not a summary this harness wrote ({type(e).__name__}: {e}); pass --overwrite to "
            "start over, or choose another --output-dir"
        ) from e


def _plan_resume(
    previous: dict[str, Any], config_hash: str, data_hash: str, entries: Sequence[Mapping[str, Any]], out: Path
) -> ResumePlan:
    old = {w.get("id"): w for w in previous.get("windows", []) if isinstance(w, dict)}
    done = {k: w for k, w in old.items() if w.get("status") == Status.COMPLETED}
    refuse: list[str] = []
    if done and previous.get("config_hash") != config_hash:
        refuse.append(f"the config changed (hash {previous.get('config_hash')} -> {config_hash})")
    if done and previous.get("data_hash") != data_hash:
        refuse.append(f"the data changed (hash {previous.get('data_hash')} -> {data_hash})")
    now_ids = {e["id"] for e in entries}
    gone = sorted(str(k) for k in done if k not in now_ids)
    if gone:
        refuse.append(f"finished window(s) {', '.join(gone)} are not in the windows any more")
    skip: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    for e in entries:
        before = old.get(e["id"])
        if before is None:
            reasons[e["id"]] = "new window"
        elif before.get("status") != Status.COMPLETED:
            reasons[e["id"]] = f"it was {before.get('status')} before"
        elif any(before.get(k) != e[k] for k in SPAN_KEYS):
            refuse.append(
                f"window {e['id']} moved ({before.get('train_start', '?')[:10]}..{before.get('test_end', '?')[:10]} -> "
                f"{e['train_start'][:10]}..{e['test_end'][:10]})"
            )
        else:
            problem = bundle_problem(out, e["id"], before)
            if problem:
                reasons[e["id"]] = problem
            else:
                skip[e["id"]] = before
    if refuse:
        raise FolderError(
            f"--resume {out}: {'; '.join(refuse)}, so finished results would be retrained or mislabelled. "
            "Pass --overwrite to replace the run, or choose another --output-dir"
        )
    return ResumePlan(skip, reasons)


def bundle_problem(out: Path, window_id: str, entry: dict[str, Any]) -> str | None:
    """Why a finished window's files cannot be trusted any more (None: they can)."""
    wdir = out / window_id
    record = entry.get("bundle") or {}
    if not isinstance(entry.get("evaluation"), dict) or not isinstance(record, dict):
        return "its summary entry is incomplete"
    try:
        meta = bundle.read_metadata(wdir)
        bundle.verify_files(wdir, meta, record.get("files"))
    except EvaluationError as e:
        return f"its bundle cannot be trusted ({e})"
    outputs = record.get("outputs") or {}
    for name in ("evaluation.json", "equity.csv", "trades.csv"):
        path = wdir / name
        if not path.exists():
            return f"{window_id}/{name} is missing"
        if name not in outputs or bundle.sha256_file(path) != outputs[name]:
            return f"{window_id}/{name} differs from what the run wrote (SHA-256)"
    return None


def write_artifacts(out: Path, artifacts: dict[str, bytes]) -> None:
    """Files a remote task returned, written by the driver alone (relative paths only, never through a link out)."""
    for rel, data in artifacts.items():
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts:
            raise InputError(f"a task returned a file outside the run folder: {rel!r}")
        write_atomic(out / rel, _bytes_writer(data), root=out)


def _bytes_writer(data: bytes) -> Callable[[Path], Any]:
    return lambda tmp: tmp.write_bytes(data)
