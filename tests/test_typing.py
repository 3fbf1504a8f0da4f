"""Typed vocabulary: the Executor protocol, and the type checker over backend/ (mypy, as CI runs it)."""

from __future__ import annotations

import inspect
from concurrent.futures import Future
from pathlib import Path

from backend.run.executor_api import Executor
from backend.run.executors import InProcess, LocalPool, RayPool, make_executor

ROOT = Path(__file__).resolve().parents[1]


def test_every_executor_satisfies_the_protocol():
    ray_pool = object.__new__(RayPool)  # no ray needed: the protocol looks at the members only
    ray_pool.workers = 2
    assert isinstance(InProcess(), Executor)
    assert isinstance(ray_pool, Executor)
    pool = LocalPool(1)
    try:
        assert isinstance(pool, Executor)
    finally:
        pool.close()
    assert isinstance(make_executor("local", 1), Executor)


def test_tune_gate_satisfies_the_protocol():
    from backend.studies.tune.trial import _Gate

    gate = _Gate(InProcess(), driver=None)  # type: ignore[arg-type]
    assert isinstance(gate, Executor)


def test_protocol_rejects_an_object_without_submit():  # negative control
    class NoSubmit:
        workers = 1

        def interrupt(self) -> None: ...

        def close(self, cancel: bool = False) -> None: ...

    class Full(NoSubmit):
        def submit(self, task):
            return Future()

    assert not isinstance(NoSubmit(), Executor)
    assert isinstance(Full(), Executor)


def _changed_signatures(base: type, sub: type) -> list[str]:
    """Methods ``sub`` overrides with other parameters (names, kinds or defaults) than ``base``'s."""
    changed = []
    for name, member in vars(sub).items():
        inherited = getattr(base, name, None)
        if callable(member) and callable(inherited) and not name.startswith("__"):
            if inspect.signature(member).parameters != inspect.signature(inherited).parameters:
                changed.append(name)
    return changed


def test_run_driver_subclasses_override_hooks_with_the_same_signature():
    """SB3's template-method rule: a subclass overrides a hook with its signature, never another method's name."""
    from backend.run.driver import RunDriver
    from backend.studies.tune.trial import _TrialDriver

    assert _changed_signatures(RunDriver, _TrialDriver) == []

    class Shadowing(RunDriver):  # negative control: the old tune driver's _report(self) over _report(self, code)
        def _report(self) -> None:  # type: ignore[override]
            pass

    assert _changed_signatures(RunDriver, Shadowing) == ["_report"]


def test_mypy_is_clean_on_backend(tmp_path):
    """The type checker CI runs ([tool.mypy] in pyproject.toml: files = backend), with no module exempted."""
    import importlib.util
    import subprocess
    import sys

    assert importlib.util.find_spec("mypy") is not None, "mypy is missing: pip install -e '.[dev]'"
    assert "ignore_errors" not in (ROOT / "pyproject.toml").read_text(), "a module is exempted from mypy"
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    bad_file = tmp_path / "bad.py"
    bad_file.write_text("x: int = 'a'\n", encoding="utf-8")
    bad = subprocess.run(  # negative control: the same checker fails on a real type error
        [sys.executable, "-m", "mypy", "--no-error-summary", str(bad_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "[assignment]" in bad.stdout, bad.stdout + bad.stderr
