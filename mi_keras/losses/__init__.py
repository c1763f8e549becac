"""Losses: adversarial base losses, MIAT's MI loss, stage-1 estimator objectives, selection."""

from mi_keras.losses.adversarial_losses import base_loss, mart_loss, trades_loss
from mi_keras.losses.estimator_objectives import estimator_objectives
from mi_keras.losses.miat_loss import miat_loss
from mi_keras.losses.selection import selection_masks

__all__ = [
    "base_loss",
    "estimator_objectives",
    "mart_loss",
    "miat_loss",
    "selection_masks",
    "trades_loss",
]
