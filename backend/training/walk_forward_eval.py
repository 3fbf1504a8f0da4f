"""`python -m backend.training.walk_forward_eval ...` — a thin shim over `wf eval` (its work: :mod:`backend.run.replay`,
which replays with :mod:`backend.evaluation.replay`)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from backend.cli.app import eval_command  # lazy: upward (entry shim); importing this module loads no CLI

    eval_command.main(args=argv, prog_name="python -m backend.training.walk_forward_eval")


if __name__ == "__main__":
    main()
