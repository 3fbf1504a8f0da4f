"""Thin entry script: `python backend/scripts/run_walk_forward.py ...` == `wf run ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.cli.app import run_main

if __name__ == "__main__":
    run_main()
