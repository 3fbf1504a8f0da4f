"""Helpers shared by CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from backend.cli import cli


def wf(*args: str):
    """Run `wf ARGS` in-process; returns click's Result (exit_code, output)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def strict_json(path: Path):
    return json.loads(Path(path).read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def no_temp_files(folder: Path) -> bool:
    return not [p for p in Path(folder).rglob("*") if p.name.startswith(".tmp-")]
