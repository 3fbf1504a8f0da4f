"""Error types with the exit code of the stage they belong to (see docs/errors.md).

User-facing errors subclass :class:`HarnessError`; the CLI prints their message on one
line (no traceback unless ``--debug``) and exits with ``exit_code``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_INPUT = 2
EXIT_DATA = 3
EXIT_TRAINING = 4
EXIT_EVALUATION = 5
EXIT_ARTIFACTS = 6
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base class: an error the user can act on."""

    exit_code = EXIT_INPUT


class InputError(HarnessError, ValueError):
    """Bad arguments, window file or config file (nothing was run)."""

    exit_code = EXIT_INPUT


class FolderError(InputError):
    """The output folder cannot take this run: another writer holds it, it holds a run, or --resume would lose work."""

    exit_code = EXIT_INPUT


class DataError(HarnessError, ValueError):
    """No data, invalid bars, or windows that do not fit the data."""

    exit_code = EXIT_DATA


class TrainingError(HarnessError, RuntimeError):
    """Training failed (including non-finite observations, rewards or losses)."""

    exit_code = EXIT_TRAINING


class EvaluationError(HarnessError, RuntimeError):
    """Evaluation / replay failed, including missing or mismatched model bundles."""

    exit_code = EXIT_EVALUATION


class ArtifactError(HarnessError, OSError):
    """An artifact could not be written."""

    exit_code = EXIT_ARTIFACTS
