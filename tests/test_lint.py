"""The linter CI runs: ruff (with C90, the complexity limit) over the code, as ``make lint`` does.

``.ci/run`` runs ``make test`` (pytest) only, so the lint must be a test to be run at all.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["backend", "tests", "benchmarks", "scripts"]  # the Makefile's `make lint`


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    assert importlib.util.find_spec("ruff") is not None, "ruff is missing: pip install -e '.[dev]'"
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ruff_is_clean():
    assert '"C90"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8"), "the complexity rule left ruff's select"
    p = _ruff(*PATHS)
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_flags_an_unused_import_a_complex_function_and_a_relative_import(tmp_path):  # negative control
    branches = "".join(f"    elif x == {i}:\n        return {i}\n" for i in range(2, 14))
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\n\nfrom ..run import driver\n\n\n"
        f"def tangled(x):\n    if x == 1:\n        return driver\n{branches}    return 0\n"
    )
    p = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad))  # the project's config
    assert p.returncode == 1, p.stdout + p.stderr
    assert "F401" in p.stdout and "C901" in p.stdout and "TID252" in p.stdout, p.stdout
