"""Gives each epoch of a resumed run the data order it had in the uninterrupted run."""

from __future__ import annotations

import keras
import tensorflow as tf


class DatasetEpochReplay(keras.callbacks.Callback):
    """Advances a reshuffling `tf.data.Dataset` past the epochs that a resumed run skips.

    A pipeline with ``shuffle(..., reshuffle_each_iteration=True)`` or seeded per-epoch
    augmentation (`mi_keras.data.load_dataset`) draws a new order at every iterator it
    creates. Trained on ``dataset.repeat()`` (one pass per epoch), epoch ``k`` reads the
    ``k``-th draw; a fresh process resumed at epoch ``k`` by `keras.callbacks.BackupAndRestore`
    would read the first draw again. At the first epoch of each ``fit`` this callback creates
    and drops one iterator per epoch already done, so the resumed epochs read the draws they
    read in the uninterrupted run.

    Example:
    ```python
    replay = DatasetEpochReplay(train)
    backup = keras.callbacks.BackupAndRestore("work/backup")
    model.fit(train.repeat(), steps_per_epoch=steps, epochs=10, callbacks=[replay, backup])
    ```

    Args:
        dataset: the training dataset given to ``fit`` (the same object).
    """

    def __init__(self, dataset: tf.data.Dataset):
        super().__init__()
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"`dataset` must be the tf.data.Dataset given to fit; got {type(dataset).__name__}.")
        self.dataset = dataset
        self._replayed = False

    def on_train_begin(self, logs=None):
        self._replayed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._replayed:
            return
        self._replayed = True
        for _ in range(epoch):  # `epoch`: the epochs BackupAndRestore says are done
            iter(self.dataset)
