"""Function-level imports guard heavy or optional libraries only (docs/architecture.md).

An import of a ``backend`` module inside a function is allowed when that module, or anything it imports at its top
level (transitively, within ``backend/``), imports a library of ``HEAVY`` — or when the line says why with a
``# lazy: <reason>`` comment (``wf --help`` stays free of numpy/pandas, wf eval's preflight loads no data code, ...).
Every other project import belongs at the top of its module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
HEAVY = {  # heavy or optional third-party libraries: importing them is what a function-level import may postpone
    "torch",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "sbx",
    "stable_baselines3",
    "sb3_contrib",
    "gymnasium",
    "optuna",
    "sqlalchemy",
    "ray",
    "matplotlib",
    "tensorboard",
    "talib",
    "yfinance",
    "arch",
    "scipy",
    "exchange_calendars",
}
LAZY_REASON = "# lazy:"

# path -> how many light function-level imports it may still hold, and why. Shrink-only: a count above the
# file's real one fails below, so an entry goes when its file is cleaned.
ALLOWED: dict[str, tuple[int, str]] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in BACKEND.rglob("*.py")}


def _targets(node: ast.Import | ast.ImportFrom, current: str) -> list[str]:
    """The modules an import statement loads (``from pkg import mod`` names the submodule when it is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = current.split(".") if MODULES[current].name == "__init__.py" else current.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _is_type_checking(test: ast.expr) -> bool:
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def _top_level_imports(tree: ast.Module, current: str) -> list[str]:
    """Modules imported when the module runs: its body, class bodies, if/try blocks; not functions, not
    ``if TYPE_CHECKING:``."""
    found: list[str] = []

    def walk(statements: list[ast.stmt]) -> None:
        for s in statements:
            if isinstance(s, ast.Import | ast.ImportFrom):
                found.extend(_targets(s, current))
            elif isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            elif isinstance(s, ast.If) and _is_type_checking(s.test):
                walk(s.orelse)
            else:
                for block in ("body", "orelse", "finalbody"):
                    walk([x for x in getattr(s, block, []) if isinstance(x, ast.stmt)])
                for handler in getattr(s, "handlers", []):
                    walk(handler.body)

    walk(tree.body)
    return found


def _with_packages(name: str) -> list[str]:
    """``a.b.c`` -> a, a.b, a.b.c: importing a module runs its packages' ``__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def heavy_imports(name: str) -> frozenset[str]:
    """The HEAVY libraries that importing ``name`` loads (its top level and its backend imports', transitively)."""
    heavy: set[str] = set()
    seen: set[str] = set()
    stack = [name]
    while stack:
        for module in _with_packages(stack.pop()):
            if module in seen:
                continue
            seen.add(module)
            if module not in MODULES:
                heavy |= {module.split(".")[0]} & HEAVY
                continue
            tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
            stack.extend(_top_level_imports(tree, module))
    return frozenset(heavy)


def light_function_imports(source: str, current: str) -> list[tuple[int, str]]:
    """(line, module) of every function-level import of a ``backend`` module that loads no HEAVY library and
    carries no ``# lazy:`` reason."""
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if any(LAZY_REASON in line for line in lines[node.lineno - 1 : node.end_lineno]):
                continue
            for target in _targets(node, current):
                if target.split(".")[0] == "backend" and not heavy_imports(target):
                    found.append((node.lineno, target))
    return sorted(set(found))


def _backend_light_imports() -> dict[str, list[tuple[int, str]]]:
    found = {}
    for name in sorted(MODULES):
        light = light_function_imports(MODULES[name].read_text(encoding="utf-8"), name)
        if light:
            found[MODULES[name].relative_to(ROOT).as_posix()] = light
    return found


def test_function_level_imports_guard_heavy_libraries_only():
    assert len(MODULES) > 100 and "backend.cli.app" in MODULES  # the glob found the package
    light = {
        f"{path}:{line}": target
        for path, found in _backend_light_imports().items()
        if len(found) > ALLOWED.get(path, (0, ""))[0]
        for line, target in found
    }
    assert light == {}, (
        "function-level imports of light backend modules: move them to the module top, or give the reason "
        f"on the line (`{LAZY_REASON} keeps wf --help free of pandas`):\n"
        + "\n".join(f"{k} {v}" for k, v in light.items())
    )


def test_every_allowed_count_is_still_exact():
    found = _backend_light_imports()
    stale = {path: (n, len(found.get(path, []))) for path, (n, _) in ALLOWED.items() if len(found.get(path, [])) != n}
    assert stale == {}, f"ALLOWED counts (listed, found) no longer match: {stale}; lower them or remove the entry"


def test_the_checker_flags_a_light_import_and_accepts_heavy_or_explained_ones():  # negative control
    source = (
        "def f():\n"
        "    from backend.core.jsonio import load_json\n"  # light: flagged
        "    from backend.training.trainer import train_window\n"  # gymnasium through backend.envs: allowed
        "    from backend.core.stages import fmt_num  # lazy: a reason\n"  # explained: allowed
        "    import numpy as np\n"  # not a backend module: not this test's business
        "class C:\n"
        "    def m(self):\n"
        "        from backend.core import (\n"  # a method's, multi-line: flagged
        "            status,\n"
        "        )\n"
        "from backend.core import errors\n"  # top level: fine
    )
    assert light_function_imports(source, "backend.x") == [(2, "backend.core.jsonio"), (8, "backend.core.status")]
    assert heavy_imports("backend.evaluation.replay") >= {"gymnasium"}  # transitively, through backend.envs
    assert heavy_imports("backend.training.algorithms") == frozenset()  # torch/JAX inside its functions only
    assert heavy_imports("backend.studies.tune.storage") == frozenset()  # optuna inside its functions only


def test_wf_help_loads_no_numpy_or_pandas():
    """`wf --help` (and every `wf` start) imports the command line only: the work modules load in the commands."""
    watched = ("numpy", "pandas", *sorted(HEAVY))
    code = (
        "import sys\nfrom backend.cli.app import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print('LOADED', sorted(m for m in {watched!r} if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "LOADED []" in p.stdout, p.stdout
