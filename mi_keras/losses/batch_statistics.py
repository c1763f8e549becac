"""Batch-level statistics that stay exact across replicas (see `mi_keras.distribution`)."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.distribution import global_sum


def batch_cosine(u: tf.Tensor, v: tf.Tensor, epsilon: float = 0.0) -> tf.Tensor:
    """Cosine similarity of two batch-length vectors (``torch.cosine_similarity(u, v, dim=0)``).

    Zero when either vector is all zeros, with a zero (not NaN) gradient: the double
    ``tf.where`` keeps ``rsqrt`` away from 0. ``epsilon`` > 0 divides by
    ``sqrt((|u|^2 + epsilon^2) (|v|^2 + epsilon^2))`` instead of ``|u| |v|``: the gradient with
    respect to ``u``, ``sin(u, v) / |u|`` without it, then stays below ``1 / epsilon`` however
    small the vectors (a stabiliser; 0 is the paper's cosine).
    """
    dot = global_sum(tf.reduce_sum(u * v))
    squared = epsilon * epsilon
    norms_squared = (global_sum(tf.reduce_sum(u * u)) + squared) * (global_sum(tf.reduce_sum(v * v)) + squared)
    positive = norms_squared > 0
    safe = tf.where(positive, norms_squared, tf.ones_like(norms_squared))
    return tf.where(positive, dot * tf.math.rsqrt(safe), tf.zeros_like(dot))


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` where ``mask`` is 1, over the global batch; 0 for an empty mask."""
    return tf.math.divide_no_nan(global_sum(tf.reduce_sum(values * mask)), global_sum(tf.reduce_sum(mask)))


def masked_count(mask: tf.Tensor) -> tf.Tensor:
    """Number of selected samples in the global batch."""
    return global_sum(tf.reduce_sum(mask))
