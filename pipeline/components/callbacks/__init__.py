"""Keras callbacks of the training stages: selection score, best epoch, history, divergence, data order."""

from pipeline.components.callbacks.best_epoch_checkpoint import BestEpochCheckpoint
from pipeline.components.callbacks.dataset_epoch_replay import DatasetEpochReplay
from pipeline.components.callbacks.divergence_guard import DivergenceGuard
from pipeline.components.callbacks.epoch_history import EpochHistory
from pipeline.components.callbacks.selection_score import SelectionScore
from pipeline.components.callbacks.training_diverged_error import TrainingDivergedError

__all__ = [
    "BestEpochCheckpoint",
    "DatasetEpochReplay",
    "DivergenceGuard",
    "EpochHistory",
    "SelectionScore",
    "TrainingDivergedError",
]
