"""``env.feature_modules``: the user's own feature code, loaded in every process that computes features.

An entry is a Python file (relative paths are read from the config's folder, then the working directory) or an
importable module name. Its source is read once at Window Setup, hashed (the hash is part of each of its
features' identity: config hash, bundle compatibility, summary) and shipped with the bars
(``MarketArrays.feature_sources``), so a Ray worker without a shared disk runs the very same code: it executes the
shipped source, never a file of its own disk.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
from pathlib import Path

from backend.core.errors import InputError
from backend.features import builtin

_INSTALLED: dict[str, str] = {}  # module name -> sha256 of the source executed in this process
FEATURE_MODULE: dict[str, str] = {}  # feature name -> sha256 of the module source that registered it


def _module_name(entry: str, path: Path | None) -> str:
    stem = path.stem if path is not None else entry
    return "wf_user_features." + "".join(c if c.isalnum() else "_" for c in stem)


def _file_of(entry: str, base_dir: Path | None) -> Path | None:
    candidates = [Path(entry)] if Path(entry).is_absolute() else [(base_dir or Path.cwd()) / entry, Path(entry)]
    return next((p for p in candidates if p.is_file()), None)


def absolute_entries(entries: list[str], base_dir: Path | None = None) -> list[str]:
    """File entries as absolute paths (module names unchanged), so that config.resolved.json names the file that
    was loaded wherever it is read from (``wf eval --model-path`` without ``--config``)."""
    out = []
    for entry in entries:
        path = _file_of(entry, base_dir)
        out.append(str(path.resolve()) if path is not None else entry)
    return out


def read_sources(entries: list[str], base_dir: Path | None = None) -> tuple[tuple[str, str], ...]:
    """(module name, source) of each entry; InputError naming the entry and the fix."""
    out: list[tuple[str, str]] = []
    for entry in entries:
        candidates = [Path(entry)] if Path(entry).is_absolute() else [(base_dir or Path.cwd()) / entry, Path(entry)]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None and entry.endswith(".py"):
            raise InputError(
                f"env.feature_modules: file '{entry}' not found (looked in {', '.join(map(str, candidates))})"
            )
        if path is None:
            spec = importlib.util.find_spec(entry) if entry.replace(".", "").replace("_", "").isalnum() else None
            if spec is None or not spec.origin or not Path(spec.origin).is_file():
                raise InputError(
                    f"env.feature_modules: '{entry}' is neither a .py file nor an importable module; give a path "
                    "to the file (relative to the config) or a module on the Python path"
                )
            path = Path(spec.origin)
        out.append((_module_name(entry, path), path.read_text(encoding="utf-8")))
    return tuple(out)


def install(sources: tuple[tuple[str, str], ...]) -> None:
    """Execute each shipped source once per process (again when it changed); its features register."""
    for name, source in sources:
        digest = hashlib.sha256(source.encode()).hexdigest()
        if _INSTALLED.get(name) == digest:
            continue
        before = dict(builtin.FEATURES)
        module = types.ModuleType(name)
        module.__file__ = f"<env.feature_modules {name}>"
        sys.modules[name] = module
        try:
            exec(compile(source, module.__file__, "exec"), module.__dict__)
        except Exception as e:
            raise InputError(f"env.feature_modules: {name} fails to load: {type(e).__name__}: {e}") from e
        for feat, fn in builtin.FEATURES.items():
            if before.get(feat) is not fn:
                FEATURE_MODULE[feat] = digest
        _INSTALLED[name] = digest


def source_hash_of(feature: str) -> str | None:
    """SHA-256 of the module source that registered ``feature`` (None for the package's built-ins)."""
    return FEATURE_MODULE.get(feature)


def install_entries(entries: list[str], base_dir: Path | None = None) -> tuple[tuple[str, str], ...]:
    """Read and install ``env.feature_modules`` in this process; returns the sources to ship."""
    sources = read_sources(list(entries), base_dir)
    install(sources)
    return sources
