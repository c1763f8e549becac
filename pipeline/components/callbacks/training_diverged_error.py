"""The error a training stage raises when its loss stops being finite."""

from __future__ import annotations


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint is kept.

    Args:
        message: what diverged, where, and which checkpoint is still good.
    """
