"""Keeps the classifier of the best epoch by validation score, across kills and resumes."""

from __future__ import annotations

import json
import math
import os
import pathlib

import keras

from pipeline.components.callbacks.selection_score import SCORE_KEY


class BestEpochCheckpoint(keras.callbacks.Callback):
    """Saves ``classifier`` whenever ``monitor`` beats every earlier epoch.

    Unlike `keras.callbacks.ModelCheckpoint`, the best score is stored beside the weights, so
    a resumed run does not overwrite a better model with the first epoch after the restart.
    The classifier is saved alone (a functional model that loads without mi_keras' training
    wrappers). Files are written to a temporary name and renamed.

    Example:
    ```python
    best = BestEpochCheckpoint(classifier, "work/best")
    model.fit(train, validation_data=validation, callbacks=[SelectionScore(), best])
    best.epoch, best.score  # 1-based epoch of the best model and its score
    ```

    Args:
        classifier: the model to save (the wrapped classifier, not the training wrapper).
        directory: holds ``classifier.keras`` and ``best.json``.
        monitor: the log key to maximise.
    """

    def __init__(self, classifier: keras.Model, directory: str | os.PathLike, monitor: str = SCORE_KEY):
        super().__init__()
        self.classifier = classifier
        self.directory = pathlib.Path(directory)
        self.monitor = monitor
        state_path = self.directory / "best.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {"epoch": None, "score": -math.inf}
        self.epoch: int | None = state["epoch"]
        self.score: float = state["score"]

    @property
    def model_path(self) -> pathlib.Path:
        return self.directory / "classifier.keras"

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.monitor not in logs:
            raise ValueError(
                f"BestEpochCheckpoint needs {self.monitor!r} in the epoch logs; got keys {sorted(logs or {})}."
            )
        score = float(logs[self.monitor])
        if not score > self.score:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / "classifier.tmp.keras"
        self.classifier.save(temporary)
        os.replace(temporary, self.model_path)
        self.epoch, self.score = epoch + 1, score
        state = self.directory / "best.tmp.json"
        state.write_text(json.dumps({"epoch": self.epoch, "score": self.score}))
        os.replace(state, self.directory / "best.json")
