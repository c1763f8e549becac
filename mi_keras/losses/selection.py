"""Eq. 6 of MIAT: the samples correct on x and fooled on x_adv, as float masks."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.enums import Selection


def predicted_labels(logits: tf.Tensor, selection: Selection) -> tf.Tensor:
    """Predicted classes; ``BATCH_SOFTMAX`` reproduces the official ``softmax(dim=0)`` bug."""
    if selection == Selection.BATCH_SOFTMAX:
        logits = tf.nn.softmax(logits, axis=0)
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def correctness(logits: tf.Tensor, labels: tf.Tensor, selection: Selection) -> tf.Tensor:
    """1.0 where the prediction equals the label, else 0.0."""
    return tf.cast(tf.equal(predicted_labels(logits, selection), labels), tf.float32)


def selection_masks(clean_logits, adversarial_logits, labels, selection: Selection) -> dict[str, tf.Tensor]:
    """The masks of miat-reference.md 3.3: ``natural_correct``, ``robust`` and ``fooled``.

    ``fooled`` (correct on x AND wrong on x_adv) is the Eq. 6 selection used by stage 2.
    """
    natural_correct = correctness(clean_logits, labels, selection)
    adversarial_correct = correctness(adversarial_logits, labels, selection)
    return {
        "natural_correct": natural_correct,
        "robust": natural_correct * adversarial_correct,
        "fooled": natural_correct * (1.0 - adversarial_correct),
    }
