"""Tiny training runs shared by the resume tests and their fresh-process script.

Every model has a source of per-step randomness: the small CNN's dropout (rate 0.5), PGD's
random start (unseeded attack: the model draws its seed) and shuffled, augmented data in
the BackupAndRestore run.
"""

from __future__ import annotations

import os
import pathlib
import signal

import keras
import numpy as np

from mi_keras.attacks import PGD
from mi_keras.data import load_dataset
from mi_keras.mi import MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel, MIEstimatorTrainer, small_cnn

SHAPE = (8, 8, 1)
BATCH = 16
KINDS = ("adversarial", "estimator_trainer", "mi_defense")
# BackupAndRestore run: epochs in all, and where the first attempt kills itself.
BACKUP_EPOCHS = 3
KILL_EPOCH, KILL_BATCH = 1, 1  # 0-based: during the second epoch, after its second batch


def fixed_batches() -> tuple[np.ndarray, np.ndarray]:
    """64 samples: 4 steps per epoch at batch 16, read in order."""
    rng = np.random.default_rng(0)
    return rng.random((64, *SHAPE), dtype=np.float32), rng.integers(0, 10, 64).astype(np.int32)


def _estimator() -> MIEstimator:
    return MIEstimator.for_classifier(SHAPE, 10, units=16)


def _fixed_classifier() -> keras.Model:
    # Random (not zero) logits from the start, so the estimators see informative outputs.
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def build(kind: str) -> keras.Model:
    """A compiled model of ``kind``; the same weights and seed every time."""
    keras.utils.set_random_seed(0)
    attack = PGD(0.1, steps=2)  # random start "normal", no seed of its own
    if kind == "adversarial":
        model = AdversarialModel(small_cnn(SHAPE, 10, padding="same"), attack)
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    elif kind == "estimator_trainer":
        model = MIEstimatorTrainer(_fixed_classifier(), _estimator(), _estimator(), attack)
        optimizer = keras.optimizers.Adam(1e-3)
    elif kind == "mi_defense":
        model = MIDefenseModel(small_cnn(SHAPE, 10, padding="same"), _estimator(), _estimator(), attack)
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-3)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    model.compile(optimizer=optimizer)
    return model


def fit_epochs(model: keras.Model, epochs: int) -> None:
    x, y = fixed_batches()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)


def training_state(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight and every optimizer variable (slots and step count), by position."""
    state = {f"weight_{index}": variable.numpy() for index, variable in enumerate(model.weights)}
    state.update({f"optimizer_{index}": variable.numpy() for index, variable in enumerate(model.optimizer.variables)})
    return state


def backup_run(work_dir: pathlib.Path, kill: bool):
    """MIAT on shuffled, augmented digits through the pipeline's `ResumableFit`.

    With ``kill`` the process SIGKILLs itself mid-epoch (`KILL_EPOCH`, `KILL_BATCH`), after
    the backup of the epochs before. Returns the final `training_state` and the `FitResult`.
    """
    from pipeline.components.resumable_fit import ResumableFit

    keras.utils.set_random_seed(0)
    train, _ = load_dataset("digits", batch_size=BATCH, augment=True, seed=0, take=64)
    model = build("mi_defense")
    callbacks = [_KillAt(KILL_EPOCH, KILL_BATCH)] if kill else []
    result = ResumableFit(work_dir, verbose=0).fit(model, train, BACKUP_EPOCHS, callbacks=callbacks)
    return training_state(model), result


class _KillAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch = epoch, batch
        self._current = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self._current, batch) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGKILL)
