"""`python -m backend.cli ...` == `wf ...`."""

from backend.cli.app import main

main()
