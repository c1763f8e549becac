"""``model.fit`` that survives ``kill -9``, stops clearly on NaN and keeps the best epoch."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Sequence

import keras
import tensorflow as tf

from mi_keras.callbacks import health_verdict
from mi_keras.distributed_fit import DistributedFit
from mi_keras.distribution import is_multi_worker
from mi_keras.models.non_finite_loss_error import NonFiniteLossError
from mi_keras.models.step_guard import translated_step_errors
from pipeline.components.callbacks import (
    BestEpochCheckpoint,
    DatasetEpochReplay,
    DivergenceGuard,
    EpochHistory,
    SelectionScore,
    TrainingDivergedError,
)


@dataclasses.dataclass
class FitResult:
    """What a (possibly resumed) training run did.

    Attributes:
        history: one dict per epoch (1-based ``epoch`` key), over every attempt.
        epochs: epochs completed.
        resumed_from_epoch: epochs already done when this attempt started (0: fresh).
        best_epoch: 1-based epoch of the best validation score (None without selection).
        best_score: that score.
        best_model_path: the best classifier's ``.keras`` file (None without selection).
    """

    history: list[dict]
    epochs: int
    resumed_from_epoch: int
    best_epoch: int | None = None
    best_score: float | None = None
    best_model_path: pathlib.Path | None = None

    def summary(self) -> dict:
        """Epoch counts, the validation clean / PGD accuracies at the best and the last epoch,
        and ``health``: `mi_keras.callbacks.health_verdict` of the history (``healthy``: no finding)."""
        if self.best_epoch is None:
            raise ValueError("This run has no best epoch: it ran without validation data or finished no epoch.")
        best_row = next(row for row in self.history if row["epoch"] == self.best_epoch)
        health = health_verdict(self.history)
        return {
            "epochs": self.epochs,
            "resumed_from_epoch": self.resumed_from_epoch,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_val_clean_accuracy": best_row["val_clean_accuracy"],
            "best_val_adversarial_accuracy": best_row["val_adversarial_accuracy"],
            "last_val_clean_accuracy": self.history[-1]["val_clean_accuracy"],
            "last_val_adversarial_accuracy": self.history[-1]["val_adversarial_accuracy"],
            "healthy": health["healthy"],
            "health": health,
        }


class ResumableFit:
    """Runs ``model.fit`` with the callbacks that make a training stage restartable.

    In ``work_dir``: ``backup/`` (`keras.callbacks.BackupAndRestore`, one state per epoch,
    two copies so a kill during a write leaves the previous one), ``history.json`` and,
    with model selection, ``best/classifier.keras``. A rerun with the same ``work_dir``
    resumes after the last finished epoch and ends with the same epoch count. The resumed
    epochs are those of the uninterrupted run: the backup holds the weights and the
    optimizer state (step count included), the training models derive their random draws
    from (seed, step), and `DatasetEpochReplay` gives each epoch its data order. Every
    epoch's logs and the learning rate go to TensorBoard. Under a multi-worker strategy
    `mi_keras.distributed_fit.DistributedFit` drives the model's ``train_step`` instead of
    ``fit`` (which Keras 3 cannot run there), with the same callbacks.

    Example:
    ```python
    fit = ResumableFit("pipeline_root/train/.work/1a2b", tensorboard_dir="pipeline_root/tensorboard/miat")
    result = fit.fit(model, train, epochs=10, validation_data=validation, classifier=model.classifier)
    ```

    Args:
        work_dir: the resume folder (stable across attempts of the same configuration).
        tensorboard_dir: TensorBoard log folder, or None.
        verbose: Keras' ``fit`` verbosity (1: progress bars).
    """

    def __init__(self, work_dir: str | os.PathLike, tensorboard_dir: str | os.PathLike | None = None, verbose: int = 1):
        self.work_dir = pathlib.Path(work_dir)
        self.tensorboard_dir = pathlib.Path(tensorboard_dir) if tensorboard_dir is not None else None
        self.verbose = verbose

    def fit(
        self,
        model: keras.Model,
        train_data,
        epochs: int,
        validation_data=None,
        classifier: keras.Model | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        steps_per_epoch: int | None = None,
    ) -> FitResult:
        """Trains ``model`` to ``epochs`` epochs in total.

        Args:
            model: a compiled model.
            train_data: the training `tf.data.Dataset`.
            epochs: the total epoch count (epochs of earlier attempts included).
            validation_data: the validation dataset; with ``classifier`` it selects the best
                epoch by ``(val_clean_accuracy + val_adversarial_accuracy) / 2``.
            classifier: the classifier to checkpoint at the best epoch, or None.
            callbacks: extra callbacks, run after the selection score is known.
            steps_per_epoch: batches per epoch; needed only when ``train_data`` does not
                know its length (a filtered stream), and then checked while training.
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        backup_dir = self.work_dir / "backup"
        history = EpochHistory(self.work_dir / "history.json")
        best = None
        selection = []
        if classifier is not None and validation_data is not None:
            best = BestEpochCheckpoint(classifier, self.work_dir / "best")
            selection = [SelectionScore(), best]
        guard = DivergenceGuard(checkpoints=[*([best.model_path] if best else []), backup_dir])
        tensorboard = []
        if self.tensorboard_dir is not None:
            # Keras' TensorBoard callback also logs the optimizer's current learning rate.
            tensorboard.append(keras.callbacks.TensorBoard(log_dir=str(self.tensorboard_dir), write_graph=False))
        fit_callbacks = [
            DatasetEpochReplay(train_data),
            guard,
            *selection,
            *callbacks,
            history,
            *tensorboard,
            # Last: an epoch's backup is written only after everything else recorded it.
            keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True, delete_checkpoint=False),
        ]
        try:
            try:
                with translated_step_errors(model):  # DistributedFit drives train_step directly
                    self._run(model, train_data, epochs, validation_data, fit_callbacks, steps_per_epoch)
            except NonFiniteLossError as error:
                raise guard.diverged(float(error.value) if error.value else math.nan) from error
        except TrainingDivergedError as error:
            error.fit = _result(history, best)  # the finished epochs and the best one stay usable
            raise
        return _result(history, best)

    def _run(self, model, train_data, epochs, validation_data, fit_callbacks, steps_per_epoch) -> None:
        if is_multi_worker(model.distribute_strategy):  # Keras 3's fit cannot run there
            DistributedFit(model).fit(
                train_data, epochs, validation_data=validation_data, callbacks=fit_callbacks, verbose=self.verbose
            )
            return
        stream, steps = _endless(train_data, steps_per_epoch)
        model.fit(
            stream,
            steps_per_epoch=steps,
            validation_data=validation_data,
            epochs=epochs,
            verbose=self.verbose,
            shuffle=False,  # the training dataset reshuffles itself at every epoch
            callbacks=fit_callbacks,
        )


def _result(history: EpochHistory, best: BestEpochCheckpoint | None) -> FitResult:
    return FitResult(
        history=history.rows,
        epochs=len(history.rows),
        # No epoch began: an earlier attempt had already finished them all.
        resumed_from_epoch=len(history.rows) if history.resumed_from_epoch is None else history.resumed_from_epoch,
        best_epoch=best.epoch if best else None,
        best_score=best.score if best else None,
        best_model_path=best.model_path if best and best.epoch else None,
    )


def _endless(train_data: tf.data.Dataset, steps_per_epoch: int | None) -> tuple[tf.data.Dataset, int]:
    """``train_data`` repeated, with its batches per epoch.

    ``fit`` keeps one iterator of an endless dataset for the whole run, so epoch ``k`` reads
    the ``k``-th pass of ``train_data`` (its ``k``-th shuffle and augmentation draw), which
    is what `DatasetEpochReplay` restores after a resume. A finite dataset instead gets
    iterators at Keras' discretion (two per epoch in Keras 3.15).
    """
    known = int(train_data.cardinality())
    if known == tf.data.INFINITE_CARDINALITY:
        raise ValueError("`train_data` must be finite: one pass is one epoch (do not `repeat()` it).")
    if known >= 0:
        if steps_per_epoch not in (None, known):
            raise ValueError(f"`steps_per_epoch` is {steps_per_epoch} but `train_data` holds {known} batches.")
        return train_data.repeat(), known
    if steps_per_epoch is None:
        raise ValueError("`train_data` does not know its length (a filtered stream?): pass `steps_per_epoch`.")
    return train_data.apply(tf.data.experimental.assert_cardinality(steps_per_epoch)).repeat(), steps_per_epoch
