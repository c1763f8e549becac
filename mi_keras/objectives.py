"""Per-sample objectives of float32 logits, each returning ``[batch]``.

The attacks maximise them (`mi_keras.attacks`) and the training losses minimise them
(`mi_keras.losses`); both packages import them from here, so neither depends on the other.
"""

from __future__ import annotations

import tensorflow as tf


def cross_entropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


def _true_and_best_other(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    one_hot = tf.one_hot(y, tf.shape(logits)[-1], dtype=logits.dtype)
    true_logit = tf.reduce_sum(one_hot * logits, axis=-1)
    # Subtracting a large constant at the true class keeps it out of the max.
    best_other = tf.reduce_max(logits - one_hot * 1e9, axis=-1)
    return true_logit, best_other


def margin(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Carlini-Wagner margin ``max_{j != y} z_j - z_y``: positive once the sample is fooled."""
    true_logit, best_other = _true_and_best_other(logits, y)
    return best_other - true_logit


def kl_divergence(logits: tf.Tensor, clean_probabilities: tf.Tensor) -> tf.Tensor:
    """``KL(p_clean || p_adv)`` per sample: the TRADES inner objective."""
    log_adv = tf.nn.log_softmax(logits, axis=-1)
    log_clean = tf.math.log(tf.maximum(clean_probabilities, 1e-12))
    return tf.reduce_sum(clean_probabilities * (log_clean - log_adv), axis=-1)


def dlr(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Untargeted difference-of-logits-ratio loss (Croce and Hein, 2020, Eq. 6)."""
    true_logit, best_other = _true_and_best_other(logits, y)
    ordered = tf.sort(logits, axis=-1, direction="DESCENDING")
    return -(true_logit - best_other) / (ordered[:, 0] - ordered[:, 2] + 1e-12)


def targeted_dlr(logits: tf.Tensor, y: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Targeted DLR loss (Croce and Hein, 2020, Eq. 7), maximised to reach class ``target``."""
    num_classes = tf.shape(logits)[-1]
    true_logit = tf.reduce_sum(tf.one_hot(y, num_classes, dtype=logits.dtype) * logits, -1)
    target_logit = tf.reduce_sum(tf.one_hot(target, num_classes, dtype=logits.dtype) * logits, -1)
    ordered = tf.sort(logits, axis=-1, direction="DESCENDING")
    scale = ordered[:, 0] - 0.5 * (ordered[:, 2] + ordered[:, 3]) + 1e-12
    return -(true_logit - target_logit) / scale
