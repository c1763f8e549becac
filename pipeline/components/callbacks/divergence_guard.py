"""Stops training at the first non-finite loss, with a message that says what to load."""

from __future__ import annotations

import math
import pathlib

import keras
import numpy as np

from pipeline.components.callbacks.training_diverged_error import TrainingDivergedError


class DivergenceGuard(keras.callbacks.Callback):
    """Raises `TrainingDivergedError` after the first batch whose loss is NaN or infinite.

    `keras.callbacks.TerminateOnNaN` only sets ``stop_training``: ``fit`` then returns
    normally, the epoch-end callbacks run on poisoned weights and the caller cannot tell a
    diverged run from a finished one. Raising instead stops before any epoch-end callback,
    so `keras.callbacks.BackupAndRestore` and `BestEpochCheckpoint` keep the last good
    state, and the message names it. mi_keras's training models stop themselves, inside the
    step, with `NonFiniteLossError`; `ResumableFit` turns that into the same error through
    `diverged`, which knows the epoch and batch.

    Example:
    ```python
    guard = DivergenceGuard(checkpoints=["work/best.keras", "work/backup"])
    model.fit(train, epochs=10, callbacks=[guard, keras.callbacks.BackupAndRestore("work/backup")])
    ```

    Args:
        checkpoints: the paths that still hold good weights, for the message.
        monitor: the log key to check.
    """

    def __init__(self, checkpoints: list[str | pathlib.Path], monitor: str = "loss"):
        super().__init__()
        self.checkpoints = [str(path) for path in checkpoints]
        self.monitor = monitor
        self._epoch = 0
        self._batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._batch = batch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(np.asarray(value))
        if not math.isfinite(value):
            raise self.diverged(value, batch)

    def diverged(self, value: float, batch: int | None = None) -> TrainingDivergedError:
        """The error for a non-finite ``value`` at ``batch`` (0-based; default: the running one)."""
        batch = self._batch if batch is None else batch
        kept = [path for path in self.checkpoints if pathlib.Path(path).exists()]
        where = f"the last good checkpoint is kept in {', '.join(kept)}" if kept else "no checkpoint was written yet"
        return TrainingDivergedError(
            f"Training diverged: the {self.monitor} became {value} at epoch {self._epoch + 1}, batch {batch + 1}; "
            f"training stopped and {where}. Lower the learning rate or check the data, then rerun.",
            epoch=self._epoch + 1,
            batch=batch + 1,
            value=value,
        )
