"""The error a training stage raises when its loss stops being finite."""

from __future__ import annotations

from typing import Any


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint is kept.

    Args:
        message: what diverged, where, and which checkpoint is still good.
        epoch: the 1-based epoch of the first non-finite loss.
        batch: its 1-based batch.
        value: the loss value (NaN or infinite).

    Attributes:
        fit: the run so far, a `pipeline.components.resumable_fit.FitResult` (the finished
            epochs' history and the best epoch's checkpoint), attached by `ResumableFit`;
            None when the error did not come through it.
    """

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None, value: float | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.value = value
        self.fit: Any = None

    def where(self) -> dict[str, Any]:
        """``{"epoch", "batch", "loss"}`` for a JSON record (the loss as a string: JSON has no NaN)."""
        return {"epoch": self.epoch, "batch": self.batch, "loss": str(self.value)}
