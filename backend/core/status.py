"""The shared status vocabulary of windows, runs, seeds and trials (docs/outputs.md).

`Status` is a `StrEnum`: each member equals its string (``Status.COMPLETED == "completed"``), so JSON
documents, comparisons with values read back from disk and CSV columns stay exactly as before.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, TypeAlias


class Status(StrEnum):
    """Status of a window, a run (summary/manifest), a seed or a tune trial."""

    PENDING = "pending"  # a window not started yet
    RUNNING = "running"  # a run or trial in progress (manifest, study)
    TRAINING = "training"  # a window whose training is under way
    COMPLETED = "completed"  # finished with every artifact written
    PARTIAL = "partial"  # a run where some windows (or seeds) failed
    FAILED = "failed"  # every window failed, or an artifact could not be written
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM; `--resume` continues
    SKIPPED = "skipped"  # a sweep point or trial not run (already done, or filtered)


#: A `wf tune` trial stopped by the pruner: its summary's status and its windows not run. Not a `Status` member
#: (the tune package's own word, used by backend.studies.tune.trial); kept here, below the run layer, because a
#: pruned trial's folder is a run folder of ours all the same (backend.run.folder: `--overwrite` recognises it).
PRUNED: Final = "pruned"

SummaryStatus: TypeAlias = Status | Literal["pruned"]
"""A status summary.json carries, of the run or of a window: a `Status`, or `pruned` in a `wf tune` trial's folder."""

STAGE_OK: Final = "ok"
"""A stage record's status (summary.json's ``stages``) when the stage succeeded."""

StageStatus: TypeAlias = SummaryStatus | Literal["ok"]
"""A stage record's status: ``ok``, or how the stage (a window's, the report's) ended."""
