"""The model a window's training starts from (``training.warm_start``): a light dataclass, no torch.

Built by the run driver (:meth:`backend.run.driver.RunDriver.warm_start`) from a verified bundle and passed whole to
:func:`backend.training.trainer.train_window`; ``backend.run.tasks`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WarmStart:
    """The model a window starts from: the window it came from and its model.zip (verified by the driver)."""

    window_id: str
    model: bytes
    data_end: str | None = None  # the latest bar the source model (and its own warm starts) trained on
