"""The layered layout (docs/architecture.md): each folder of ``backend/`` imports only folders below it."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1] / "backend"
LAYERS = [  # bottom first; a module may import its own folder and the folders listed before it
    "core",
    "config",
    "data",
    "features",
    "walkforward",
    "envs",
    "training",
    "evaluation",
    "run",
    "studies",
    "checks",
    "cli",
]
ENTRY_SHIMS = {  # public entry points that only forward to the command line
    "backend.scripts.run_walk_forward",
    "backend.training.walk_forward_eval",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the ``backend`` modules it imports (at any depth of the file, lazy imports included)."""
    modules = {_module_name(p): p for p in BACKEND.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backend"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges.add(full if full in modules else node.module)  # type: ignore[arg-type]
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("backend")}
        graph[name] = edges - {name}
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer_folder():
    loose = [m for m in import_graph() if m != "backend" and _layer(m) is None and m not in ENTRY_SHIMS]
    loose = [m for m in loose if m not in {"backend.scripts", "backend.training"}]
    assert loose == [], f"modules outside the layer folders: {loose}"


def test_imports_point_down_only():
    upward = []
    for module, edges in import_graph().items():
        if module in ENTRY_SHIMS:
            continue
        mine = _layer(module)
        for target in edges:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {target}")
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt])
            elif state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])
    # a package __init__ that re-exports its own modules is not a cycle of concerns
    real = [
        c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in itertools.pairwise(c))
    ]
    assert real == [], f"import cycles: {real}"


def test_the_graph_sees_lazy_imports():  # negative control: the checker finds a function-level import
    graph = import_graph()
    assert "backend.cli.app" in graph["backend.training.walk_forward_eval"]
