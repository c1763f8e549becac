"""Conversions between the two pixel encodings the pipeline stores and the one it yields."""

from __future__ import annotations

import tensorflow as tf


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Float pixels in 0..255 (e.g. after a resize) rounded back to uint8 for compact caching."""
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def to_unit_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 0..255 to float32 0..1; float images (already in [0, 1]) only change dtype."""
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    return tf.cast(image, tf.float32)
