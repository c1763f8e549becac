"""The model-selection score, added to the epoch logs for the callbacks that follow."""

from __future__ import annotations

import keras

SCORE_KEY = "val_selection_score"


class SelectionScore(keras.callbacks.Callback):
    """Adds ``val_selection_score = (val_clean_accuracy + val_adversarial_accuracy) / 2``.

    The score the official MIAT code selected its checkpoint with, here computed on the
    validation split carved from the training data (the code used the test set). Place it
    before the callbacks that read the score: Keras passes one logs dict along the list,
    so `BestEpochCheckpoint`, KerasTuner and `History` all see it.

    Example:
    ```python
    model.fit(train, validation_data=validation, callbacks=[SelectionScore(), ...])
    ```
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_clean_accuracy" in logs and "val_adversarial_accuracy" in logs:
            logs[SCORE_KEY] = (float(logs["val_clean_accuracy"]) + float(logs["val_adversarial_accuracy"])) / 2
