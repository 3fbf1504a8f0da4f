"""The layered layout (docs/architecture.md): each folder of ``backend/`` imports only folders below it."""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
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


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``from ... import`` names: ``from ..run import driver`` in ``backend.cli.app`` ->
    ``backend.run`` (the package of a package's ``__init__`` is itself)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[: len(parts) - (node.level - 1)] if node.level - 1 <= len(parts) else []
    return ".".join([*base, *([node.module] if node.module else [])])


def _edges(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    edges: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            if target == "backend" or target.startswith("backend."):
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names if a.name.startswith("backend")}
    return edges - {module}


def import_graph() -> dict[str, set[str]]:
    """module -> the ``backend`` modules it imports (at any depth of the file, lazy imports included; relative
    imports resolved against the importing module's package)."""
    modules = {_module_name(p): p for p in BACKEND.rglob("*.py")}
    return {
        name: _edges(path.read_text(), name, path.name == "__init__.py", set(modules)) for name, path in modules.items()
    }


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer_folder():
    loose = [m for m in import_graph() if m != "backend" and _layer(m) is None and m not in ENTRY_SHIMS]
    loose = [m for m in loose if m != "backend.scripts"]  # the shim's package
    assert loose == [], f"modules outside the layer folders: {loose}"


def _upward(graph: dict[str, set[str]]) -> list[str]:
    upward = []
    for module, edges in graph.items():
        if module in ENTRY_SHIMS:
            continue
        mine = _layer(module)
        for target in edges:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {target}")
    return sorted(upward)


def test_imports_point_down_only():
    upward = _upward(import_graph())
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


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


def test_the_graph_resolves_relative_imports():  # negative control: a relative upward import is an upward edge
    modules = set(import_graph())
    source = "from ..run import driver\nfrom . import bundle\n\n\ndef f():\n    from ..cli.app import cli\n"
    edges = _edges(source, "backend.training.trainer", False, modules)
    assert edges == {"backend.run.driver", "backend.training.bundle", "backend.cli.app"}
    assert _upward({"backend.training.trainer": edges}) == [
        "backend.training.trainer -> backend.cli.app",
        "backend.training.trainer -> backend.run.driver",
    ]
    in_init = _edges("from .tune import command\nfrom .. import core\n", "backend.studies", True, modules)
    assert in_init == {"backend.studies.tune.command", "backend.core"}


# --- docs/architecture.md stays true -------------------------------------------------------------------------
ROOT = BACKEND.parent
ARCH_DOC = ROOT / "docs" / "architecture.md"


def _paths_named_in(doc: Path) -> set[str]:
    return set(re.findall(r"`(backend/[\w/]*\w(?:\.py)?/?)`", doc.read_text(encoding="utf-8")))


def test_modules_named_in_architecture_doc_exist():
    named = _paths_named_in(ARCH_DOC)
    assert len(named) > 30, f"docs/architecture.md names only {len(named)} backend paths: the parser broke"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == [], f"docs/architecture.md names paths that do not exist (update the page): {missing}"


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the markdown table under ``heading`` (header and rule left out)."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines][2:]


def test_architecture_doc_lists_every_layer_folder_and_command():
    from backend.cli.app import cli

    text = ARCH_DOC.read_text(encoding="utf-8")
    assert [f for f in LAYERS if f"`backend/{f}/`" not in text] == []
    rows = _table_rows(text, "## `wf` commands and their modules")
    missing = []
    for name, command in cli.commands.items():  # every command of `wf`, and the subcommands of its groups
        row = next((r[0] for r in rows if f"`wf {name}" in r[0]), None)
        subs = getattr(command, "commands", {})
        if row is None or any(sub not in row for sub in subs):
            missing.append(f"wf {name} {' '.join(subs)}".strip())
    assert len(cli.commands) >= 12 and missing == [], f"commands without a row in {ARCH_DOC.name}: {missing}"


def _stage_literal(node: ast.AST, names: set[str]) -> None:
    """Add the stage name(s) an expression spells: a string, an f-string's head, both arms of ``a if c else b``, a
    name of ``backend.core.stages`` (``stages.EXECUTOR``)."""
    from backend.core import stages

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        names.add(node.value)
    elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        names.add(str(node.values[0].value).rstrip(" ["))  # f"Training [{wid}]" -> Training
    elif isinstance(node, ast.IfExp):
        _stage_literal(node.body, names)
        _stage_literal(node.orelse, names)
    elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "stages":
        _stage_literal(ast.Constant(getattr(stages, node.attr, None)), names)


def _call_name(node: ast.AST) -> str | None:
    return getattr(node.func, "attr", getattr(node.func, "id", None)) if isinstance(node, ast.Call) else None


def _stage_relays(tree: ast.AST) -> dict[str, int]:
    """Function name -> position of its parameter ``stage``, for the functions that hand ``stage`` to ``emit``."""
    relays = {}
    for f in ast.walk(tree):
        params = [a.arg for a in f.args.args] if isinstance(f, ast.FunctionDef) else []
        calls = ast.walk(f) if "stage" in params else ()
        if any(
            _call_name(c) == "emit" and len(c.args) > 1 and getattr(c.args[1], "id", None) == "stage" for c in calls
        ):
            relays[f.name] = params.index("stage")
    return relays


def _stage_names(source: str) -> set[str]:
    """The stage names a module emits: constant (or f-string head) second arguments of ``emit``, first arguments
    of ``handle_errors``, the values of a ``STAGE_OF`` table, an error class's own ``stage`` (``stage = "X"`` or
    ``stages.X``, which ``handle_errors`` prints), and the arguments given to a module function that passes its
    parameter ``stage`` on to ``emit`` (``_judge("Sanity (edge)", ...)``)."""
    names: set[str] = set()
    tree = ast.parse(source)
    relays = _stage_relays(tree)
    for node in ast.walk(tree):
        name = _call_name(node)
        args = node.args if isinstance(node, ast.Call) else []
        if name == "emit" and len(args) > 1:
            _stage_literal(args[1], names)
        elif name == "handle_errors" and args:
            _stage_literal(args[0], names)
        elif name in relays and len(args) > relays[name]:
            _stage_literal(args[relays[name]], names)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "STAGE_OF" for t in node.targets):
            for value in getattr(node.value, "values", []):
                _stage_literal(value, names)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.Assign) and any(getattr(t, "id", "") == "stage" for t in item.targets):
                    _stage_literal(item.value, names)
    return names


def _emitted_by_module() -> dict[str, set[str]]:
    return {p.relative_to(ROOT).as_posix(): _stage_names(p.read_text(encoding="utf-8")) for p in BACKEND.rglob("*.py")}


def _stage_rows() -> list[list[str]]:
    return _table_rows(ARCH_DOC.read_text(encoding="utf-8"), "## Stage markers and their modules")


def test_architecture_doc_names_the_module_of_every_stage_marker():
    emitted = set().union(*_emitted_by_module().values())
    markers = [r[0] for r in _stage_rows()]
    missing = sorted(n for n in emitted if not any(n in m for m in markers))
    assert len(emitted) > 25 and missing == [], f"stage markers without a row in {ARCH_DOC.name}: {missing}"
    assert {"Executor", "Sanity (edge)", "Sanity (random walk)", "Artifacts"} <= emitted  # the extraction's reach


def _rows_without_their_emitter(rows: list[list[str]], by_module: dict[str, set[str]]) -> list[str]:
    """``marker (module)`` for each marker of a row that the row's first named module does not emit.

    A row names the emitting module first and the work behind it after (``Data``: `backend/cli/data.py`, not the
    work's `backend/data/catalog.py`). ``Training [wNN]`` and ``Trial N`` are emitted as f-strings: their heads,
    ``Training`` and ``Trial``, are what a module emits.
    """
    wrong = []
    for marker_cell, modules_cell, *_ in rows:
        named = re.findall(r"`(backend/[\w/]+\.py)`", modules_cell)
        first = named[0] if named else "no module named"
        for marker in (m.strip() for m in marker_cell.split(",")):
            head = re.sub(r" (\[wNN\]|N)$", "", marker)
            if head not in by_module.get(first, set()):
                wrong.append(f"{marker} ({first})")
    return wrong


def test_each_stage_row_names_a_module_that_emits_its_markers():
    rows = _stage_rows()
    assert len(rows) > 15, "the stage table's parser broke"
    wrong = _rows_without_their_emitter(rows, _emitted_by_module())
    assert wrong == [], f"{ARCH_DOC.name}: stage rows naming no module that emits the marker: {wrong}"


def test_stage_row_check_catches_a_row_naming_the_work_module_only():  # negative control
    by_module = _emitted_by_module()
    rows = [  # the rows as they were: the work module named first
        ["Data", "`backend/data/catalog.py`, command in `backend/cli/data.py`"],
        ["Compare, List", "`backend/studies/compare.py`, commands in `backend/cli/inspect.py`"],
        ["Trial N", "`backend/studies/tune/study.py`"],  # right: an f-string head
        ["Config", "`backend/cli/config.py` (the work: `backend/config/docs.py`)"],  # right
    ]
    assert _rows_without_their_emitter(rows, by_module) == [
        "Data (backend/data/catalog.py)",
        "Compare (backend/studies/compare.py)",
        "List (backend/studies/compare.py)",
    ]


def test_stage_names_are_found_in_emit_calls():  # negative control of the extraction
    source = 'emit(True, "Alpha", d)\nstages.emit(ok, f"Beta [{w}]", d)\nemit(ok, "Gamma" if x else "Delta", d)\n'
    assert _stage_names(source) == {"Alpha", "Beta", "Gamma", "Delta"}
    relayed = (
        "class E(Exception):\n    stage = stages.EXECUTOR\n"
        "def judge(stage, code):\n    stages.emit(code == 0, stage, 'x')\n"
        "def other(stage):\n    print(stage)\n"
        "judge('Eps', 0)\nother('Not a stage')\n"
    )
    assert _stage_names(relayed) == {"Executor", "Eps"}


def test_staleness_check_catches_a_missing_module(tmp_path):  # negative control
    doc = tmp_path / "architecture.md"
    doc.write_text("`backend/core/errors.py` and `backend/run/no_such_module.py`", encoding="utf-8")
    named = _paths_named_in(doc)
    assert named == {"backend/core/errors.py", "backend/run/no_such_module.py"}
    assert [p for p in named if not (ROOT / p).exists()] == ["backend/run/no_such_module.py"]


# --- shared vocabulary ------------------------------------------------------------------------------------------
def test_status_members_equal_their_strings_in_json():
    from backend.core.jsonio import dumps
    from backend.core.status import STAGE_OK, Status
    from backend.evaluation.documents import DocumentState

    assert Status.COMPLETED == "completed" and json.dumps({"s": Status.PARTIAL}) == '{"s": "partial"}'
    typed = {"status": DocumentState.REFUSED, "pbo": {"status": DocumentState.OK}, "stage": {"status": STAGE_OK}}
    plain = {"status": "refused", "pbo": {"status": "ok"}, "stage": {"status": "ok"}}
    assert dumps(typed) == dumps(plain) and json.dumps(typed) == json.dumps(plain)  # the JSON stays byte-identical
    assert [str(s) for s in DocumentState] == ["ok", "refused", "failed"] and f"{DocumentState.FAILED}" == "failed"
    assert f"{Status.INTERRUPTED}" == "interrupted"
    documented = set(re.findall(r"`(\w+)`", (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")))
    assert {s.value for s in Status} - {"skipped"} <= documented, "a Status member missing from docs/outputs.md"


def _modules(*folders: str) -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for f in folders for p in (ROOT / f).rglob("*.py"))


# the modules whose functions return exit codes (checks/audit.py returns counts: not listed)
EXIT_LITERAL_FILES = [
    *_modules("backend/cli", "backend/run", "backend/studies"),
    "backend/checks/sanity.py",
    "backend/checks/compounding.py",
]


def _names_an_exit_code(node: ast.AST | str | None) -> bool:
    """A name (variable, attribute, keyword) that holds an exit code: it contains ``code`` or ``exit``."""
    name = node if isinstance(node, str) or node is None else getattr(node, "id", getattr(node, "attr", None))
    return isinstance(name, str) and ("code" in name.lower() or "exit" in name.lower())


_ORDER = (ast.Lt, ast.Gt, ast.LtE, ast.GtE)  # a sign test, not a code
_FOREIGN = {"returncode", "exitcode"}  # a subprocess's / multiprocessing worker's code: another program's


def _is_int(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _literal_exit_codes(source: str) -> list[int]:
    """Line numbers of bare integer literals used as exit codes.

    ``return <int>``, ``sys.exit(<int>)`` (an int anywhere in its argument but an index); an int compared with
    (``==``, ``!=``, ``in``), assigned to or passed as a name containing ``code``/``exit`` (``m.exit_code != 2``,
    ``code = 4``, ``exit_code=5``); and an int value of a dict literal that is an exit-code table: assigned to such
    a name, or beside an ``EXIT_*`` value, or under a key naming an exit code (``{"Training": 4}``,
    ``{"exit_code": 3}``). Not flagged: a sign test (``code < 0``: a worker killed by a signal) and another
    program's code (``out.returncode != 0`` of git, ``proc.exitcode``), which the ``EXIT_*`` constants do not
    name; nor the other ints of dicts in a module that uses ``EXIT_*`` (``"schema_version": 1``, a config's
    ``"lookback": 1``).
    """
    bad = []
    for node in ast.walk(ast.parse(source)):
        values: list[ast.AST | None] = []
        if isinstance(node, ast.Return):
            values = [node.value]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "exit":
            inner = list(ast.walk(node.args[0])) if node.args else []  # sys.exit(TABLE.get(stage, 3)) too
            index = {id(n) for sub in inner if isinstance(sub, ast.Subscript) for n in ast.walk(sub.slice)}
            values = [n for n in inner if id(n) not in index]  # not sys.exit(main(sys.argv[1:]))
        elif isinstance(node, ast.Compare) and not all(isinstance(o, _ORDER) for o in node.ops):
            sides = [node.left, *node.comparators]
            if any(_names_an_exit_code(s) and getattr(s, "attr", "") not in _FOREIGN for s in sides):
                values = [i for s in sides for i in (s.elts if isinstance(s, ast.Tuple | ast.List | ast.Set) else [s])]
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else [t])]
            if any(_names_an_exit_code(t) for t in flat):
                value = node.value
                values = list(value.elts) if isinstance(value, ast.Tuple | ast.List) else [value]
                values += list(value.values) if isinstance(value, ast.Dict) else []
        elif isinstance(node, ast.keyword) and _names_an_exit_code(node.arg):
            values = [node.value]
        elif isinstance(node, ast.Dict):
            table = any(getattr(v, "id", "").startswith("EXIT_") for v in node.values)
            values = [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if table or (isinstance(k, ast.Constant) and isinstance(k.value, str) and _names_an_exit_code(k.value))
            ]
        if any(_is_int(v) for v in values):
            bad.append(getattr(node, "lineno", 0))
    return sorted(set(bad))


def test_exit_codes_only_via_exit_constants():
    assert len(EXIT_LITERAL_FILES) > 40 and "backend/run/driver.py" in EXIT_LITERAL_FILES  # the glob found them
    found = {f: _literal_exit_codes((ROOT / f).read_text(encoding="utf-8")) for f in EXIT_LITERAL_FILES}
    assert {f: v for f, v in found.items() if v} == {}, "use backend.core.errors.EXIT_* instead of literals"


def test_exit_code_literals_are_found():  # negative control on synthetic source
    source = (
        "def f(m):\n"  # 1
        "    return 4\n"  # 2
        "def g(m):\n"  # 3
        "    if m.exit_code != 2:\n"  # 4
        "        sys.exit(3)\n"  # 5
        "    code = 5\n"  # 6
        "    row.update(exit_code=6)\n"  # 7
        "    return EXIT_OK\n"  # 8: a constant, fine
        "_INTERNAL_EXIT = {'Evaluation': 5, 'Training': EXIT_TRAINING}\n"  # 9
        "workers = 2\n"  # 10: not an exit code
        "ok = exit_code in (0, EXIT_PARTIAL)\n"  # 11
        "_CODES = {'a': 3}\n"  # 12
        "row = {'exit_code': 3, 'schema_version': 1}\n"  # 13
        "cfg = {'lookback': 1, 'n': EXIT_OK}\n"  # 14: beside an EXIT_* value
        "if proc.exitcode < 0 or out.returncode != 0 or code < 0:\n"  # 15: a sign test, other programs' codes
        "    doc = {'schema_version': 1}\n"  # 16: not an exit-code table
        "sys.exit(_TABLE.get(stage, 3))\n"  # 17
        "sys.exit(main(sys.argv[1:]))\n"  # 18: an index, not a code
    )
    assert _literal_exit_codes(source) == [2, 4, 5, 6, 7, 9, 11, 12, 13, 14, 17]


SOURCE_PATHS = [  # plausible code and fixtures: none may be ignored
    "backend/evaluation/newpkg/__init__.py",
    "backend/evaluation/sweep_stats/__init__.py",
    "backend/evaluation/debugging.py",
    "backend/run/outputs/x.py",
    "backend/run/runs/x.py",
    "backend/data/build/x.py",
    "backend/envs/venv/x.py",
    "tests/fixtures/outputs/a.json",
    "tests/fixtures/runs/summary.json",
]
OUTPUT_PATHS = [  # run outputs, caches, venvs: all ignored
    "backend/evaluation/demo/summary.json",
    "backend/evaluation/debug/w01/model.zip",
    "backend/evaluation/sweep1/sweep.json",
    "runs/SPY-5m-20260101-000000/summary.json",
    "outputs/a.json",
    "benchmarks/latest.json",
    ".venv/bin/python",
    "venv/bin/python",
    "backend/run/__pycache__/driver.cpython-311.pyc",
    "backend.egg-info/PKG-INFO",
    ".mypy_cache/3.11/x.json",
    "build/lib/backend/__init__.py",
]


def _ignored(root: Path, paths: list[str]) -> list[str]:
    """The paths ``git check-ignore`` (no index: as if new) says ``root``'s .gitignore ignores."""
    p = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=root,
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode in (0, 1), p.stderr
    return p.stdout.split()


def _git_or_skip() -> None:
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")


def test_gitignore_hides_outputs_and_caches_but_no_source_path():
    """Run outputs, caches and venvs are ignored; a new subpackage or fixture folder of a like name is code."""
    _git_or_skip()
    assert _ignored(ROOT, SOURCE_PATHS) == [], "a source path is ignored: anchor the pattern or name the folder"
    assert _ignored(ROOT, OUTPUT_PATHS) == OUTPUT_PATHS


def test_gitignore_check_catches_unanchored_and_wildcard_patterns(tmp_path):  # negative control
    _git_or_skip()
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=60)
    old = "build/\nruns/\noutputs/\nbackend/evaluation/debug*/\nbackend/evaluation/sweep*/\n"
    (tmp_path / ".gitignore").write_text(old, encoding="utf-8")
    assert _ignored(tmp_path, SOURCE_PATHS) == [
        "backend/evaluation/sweep_stats/__init__.py",
        "backend/run/outputs/x.py",
        "backend/run/runs/x.py",
        "backend/data/build/x.py",
        "tests/fixtures/outputs/a.json",
        "tests/fixtures/runs/summary.json",
    ]


def test_dry_run_imports_no_heavy_or_optional_library():
    code = (
        "import sys\n"
        "from backend.cli.app import cli\n"
        "try:\n"
        "    cli(['run', '--symbol', 'SPY', '--source', 'sample', '--windows', 'tmp/mini_windows_multi.json',"
        " '--dry-run'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = ('torch', 'jax', 'optuna', 'ray', 'stable_baselines3', 'sbx', 'matplotlib', 'tensorboard')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "HEAVY []" in p.stdout, p.stdout


STATUS_LITERAL_FILES = _modules("backend")  # every module: a status is compared as a Status member


def _status_words() -> set[str]:
    """Every status word of the typed vocabularies: Status, the statistics documents' states, a stage record's
    ``ok``, ``pruned``, tune_summary.json's ``searched``, training_progress.json's words."""
    import typing

    from backend.core.status import PRUNED, STAGE_OK, Status
    from backend.evaluation.documents import DocumentState
    from backend.studies.tune.study import SEARCHED
    from backend.training.callbacks import Progress

    return {*Status, *DocumentState, STAGE_OK, PRUNED, SEARCHED, *typing.get_args(Progress)}


def _status_literal_comparisons(source: str) -> list[int]:
    """Line numbers of comparisons with a bare status string (``== "completed"``, ``in ("failed", ...)``,
    ``!= "ok"``)."""
    values = {str(v) for v in _status_words()}
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            if any(isinstance(i, ast.Constant) and i.value in values for i in items):
                bad.append(node.lineno)
    return bad


def test_statuses_are_compared_as_status_members():
    assert len(STATUS_LITERAL_FILES) > 100 and "backend/studies/tune/trial.py" in STATUS_LITERAL_FILES
    found = {f: _status_literal_comparisons((ROOT / f).read_text(encoding="utf-8")) for f in STATUS_LITERAL_FILES}
    assert {f: v for f, v in found.items() if v} == {}, "compare with backend.core.status.Status members"
    negative = (
        'if w["status"] == "completed":\n    pass\nok = s not in ("failed", "pending")\n'
        'two = poi.get("status") == "ok"\nif sel.get("status") not in ("refused", None):\n    pass\n'
        "if x == DocumentState.OK:\n    pass\n"
    )
    assert _status_literal_comparisons(negative) == [1, 3, 4, 5]  # negative control
