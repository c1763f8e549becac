"""A per-epoch history that survives a kill and a resume (Keras' History restarts empty)."""

from __future__ import annotations

import json
import os
import pathlib

import keras
import numpy as np


class EpochHistory(keras.callbacks.Callback):
    """Appends each epoch's logs to a JSON file, written atomically.

    Place it before `keras.callbacks.BackupAndRestore`: an epoch's row is written before its
    backup, so after a kill the file can only hold rows ahead of the backup, and those are
    dropped when training resumes at that epoch.

    Example:
    ```python
    history = EpochHistory("work/history.json")
    model.fit(train, epochs=10, callbacks=[history, keras.callbacks.BackupAndRestore("work/backup")])
    history.rows  # [{"epoch": 1, "loss": ...}, ...] over every attempt
    ```

    Args:
        path: the JSON file.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = pathlib.Path(path)
        self.rows: list[dict] = json.loads(self.path.read_text()) if self.path.exists() else []
        self.resumed_from_epoch: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.resumed_from_epoch is None:
            self.resumed_from_epoch = epoch
            self.rows = [row for row in self.rows if row["epoch"] <= epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{key: float(np.asarray(value)) for key, value in (logs or {}).items()}}
        self.rows = [*self.rows, row]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.rows, indent=1))
        os.replace(temporary, self.path)
