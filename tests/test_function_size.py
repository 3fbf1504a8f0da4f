"""The house rule on function size: no function in backend/ is longer than MAX_LINES.

A function's length is ``end_lineno - lineno + 1`` of its ``def`` (decorators excluded, docstring
included); methods and nested functions count on their own, named by their qualified name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
MAX_LINES = 60

# (path relative to the repository root, qualified name) -> why it may still be longer. Short on purpose:
# an entry that is no longer over the limit fails the test below, so the list only shrinks.
ALLOWED: dict[tuple[str, str], str] = {}


def long_functions(source: str, limit: int = MAX_LINES) -> dict[str, int]:
    """Qualified name -> length of every function (methods and nested ones too) longer than ``limit`` lines."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > limit:
                    found[name] = length
                visit(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def backend_long_functions() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for path in sorted(BACKEND.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name, length in long_functions(path.read_text(encoding="utf-8")).items():
            found[(rel, name)] = length
    return found


def test_no_function_in_backend_is_longer_than_the_limit():
    over = {key: n for key, n in backend_long_functions().items() if key not in ALLOWED}
    listing = ", ".join(f"{path}:{name} ({n} lines)" for (path, name), n in sorted(over.items()))
    assert not over, f"functions over {MAX_LINES} lines: {listing}; split them into named private helpers"


def test_every_allowed_function_is_still_over_the_limit():
    found = backend_long_functions()
    stale = [f"{path}:{name}" for path, name in ALLOWED if (path, name) not in found]
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): {', '.join(stale)}; remove them from ALLOWED"


def test_checker_flags_a_61_line_function():  # negative control
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    method = "".join(f"        x{i} = {i}\n" for i in range(60))
    source = f"def f():\n{body}\n\nclass C:\n    def m(self):\n{method}\n    def short(self):\n        return 1\n"
    assert long_functions(source) == {"f": 61, "C.m": 61}
    assert long_functions("def g():\n" + "".join(f"    y{i} = {i}\n" for i in range(59))) == {}  # 60 lines: fine


def test_checker_sees_nested_functions_and_excludes_decorators():
    inner = "".join(f"        z{i} = {i}\n" for i in range(60))
    source = f"@decorator\n@other\ndef outer():\n    def inner():\n{inner}    return inner\n"
    assert long_functions(source) == {"outer": 63, "outer.<locals>.inner": 61}
