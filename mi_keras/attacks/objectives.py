"""The objective an attack maximises, chosen by `AttackLoss` (the functions: `mi_keras.objectives`)."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.enums import AttackLoss
from mi_keras.objectives import cross_entropy, dlr, kl_divergence, margin


def attack_objective(
    loss: AttackLoss, logits: tf.Tensor, y: tf.Tensor, clean_probabilities: tf.Tensor | None = None
) -> tf.Tensor:
    """Dispatches an `AttackLoss` to its per-sample objective."""
    if loss == AttackLoss.CE:
        return cross_entropy(logits, y)
    if loss == AttackLoss.MARGIN:
        return margin(logits, y)
    if loss == AttackLoss.DLR:
        return dlr(logits, y)
    if loss == AttackLoss.KL:
        if clean_probabilities is None:
            raise ValueError("The KL objective needs the clean probabilities.")
        return kl_divergence(logits, clean_probabilities)
    raise ValueError(f"Unsupported attack loss {loss!r}.")
