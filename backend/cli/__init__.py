"""The ``wf`` command line: parsing only, one module per command group (``wf`` = ``backend.cli:main``)."""

from backend.cli.app import cli, main, run_main

__all__ = ["cli", "main", "run_main"]
