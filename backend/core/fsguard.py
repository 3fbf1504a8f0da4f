"""Writes and deletes stay inside their folder: a symbolic link is never followed out of it.

The harness writes and deletes only inside an output folder (a run, seed or sweep folder) and the
bar cache. The folder itself may be a link the user passed (it is resolved once); inside it, every
path the harness writes or deletes is walked component by component (``lstat``), and a symbolic link
whose target leaves the folder is refused with a :class:`FolderError` (exit 2) that names the link
and its target, before anything is written. A link inside the folder that stays inside is allowed.
Removing a link removes the link itself, never its target. Files are replaced by rename
(:func:`backend.core.jsonio.atomic_path`), which replaces a link itself rather than writing through it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from backend.core.errors import FolderError, HarnessError


def inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` (links followed) is ``root`` (links followed) or lies below it."""
    r, p = os.path.realpath(root), os.path.realpath(path)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def escaping_link(root: str | Path, path: str | Path) -> tuple[Path, Path] | None:
    """The first symlink from ``root`` down to ``path`` whose target leaves ``root``: (link, target), or None.

    ``path`` must lie below ``root`` by name (``..`` is resolved by name, not through links).
    """
    base, target = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    rel = os.path.relpath(target, base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return target, target
    cur = base
    for part in Path(rel).parts:
        if part == os.curdir:
            continue
        cur = cur / part
        if os.path.islink(cur):
            _refuse_loop(cur)
        if os.path.islink(cur) and not inside(base, cur):
            return cur, Path(os.path.realpath(cur))
    return None


def _refuse_loop(link: Path) -> None:
    """A link that resolves to itself (``w01 -> w01``, ELOOP) is refused (exit 2) naming it."""
    try:
        os.stat(link)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FolderError(
                f"{link} is a symbolic link loop (to {os.readlink(link)}); the harness cannot write through it. "
                "Remove the link (or replace it with a real folder) and run again"
            ) from None


def check_no_escape(
    root: str | Path, path: str | Path, what: str = "the output folder", error: type[HarnessError] = FolderError
) -> None:
    """Refuse (``error``, exit 2) a path below ``root`` that a symbolic link leads out of ``root``."""
    found = escaping_link(root, path)
    if found is None:
        return
    link, target = found
    if link == target:
        raise error(f"{path}: outside {what} {root}; the harness writes and deletes only inside it")
    raise error(
        f"{link} is a symbolic link to {target}, outside {what} {root}; the harness writes and deletes only "
        "inside it and never through a link that leaves it. Nothing was written there. Remove the link (or "
        "replace it with a real folder), or choose another folder"
    )


def make_dirs(root: str | Path, path: str | Path, what: str = "the output folder") -> Path:
    """``mkdir -p`` of ``path`` below ``root``, refusing a link that leaves ``root`` on the way."""
    check_no_escape(root, path, what)
    Path(path).mkdir(parents=True, exist_ok=True)
    check_no_escape(root, path, what)  # a link swapped in meanwhile
    return Path(path)


def remove(root: str | Path, path: str | Path, what: str = "the output folder") -> bool:
    """Remove ``path`` (a file, a folder tree, or a link — the link itself, never its target).

    The folders above ``path`` must not lead out of ``root``. ``shutil.rmtree`` removes links inside a
    tree as links. Returns whether something was removed.
    """
    p = Path(path)
    check_no_escape(root, p.parent, what)
    if p.is_symlink():
        p.unlink()
        return True
    if p.is_dir():
        shutil.rmtree(p)
        return True
    if p.exists():
        p.unlink()
        return True
    return False


def drop_escaping_links(root: str | Path, folder: str | Path) -> list[Path]:
    """Remove (as links) the entries of ``folder`` that are symlinks leaving ``root``; returns them.

    Used on a window folder about to be rewritten: what the harness writes there must never go
    through a link to somewhere else.
    """
    removed = []
    for child in Path(folder).iterdir():
        if child.is_symlink() and not inside(root, child):
            child.unlink()
            removed.append(child)
    return removed


def refuse_link(path: str | Path, what: str, error: type[HarnessError] = FolderError) -> None:
    """Refuse a file that must not be a symbolic link (a lock file), naming it and its target."""
    p = Path(path)
    if p.is_symlink():
        raise error(
            f"{p}: {what} is a symbolic link (to {os.readlink(p)}); the harness never writes or locks through a "
            "link. Remove the link and run again"
        )
