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
    """The float masks ``natural_correct``, ``adversarial_correct``, ``robust`` and ``fooled``.

    ``robust`` is correct on x and on x_adv; ``fooled`` (correct on x AND wrong on x_adv) is
    the Eq. 6 selection of stage 2 (docs/method.md, section "Selection"). Stage 1, stage 2
    and the MI probe all take their groups from here.
    """
    natural_correct = correctness(clean_logits, labels, selection)
    adversarial_correct = correctness(adversarial_logits, labels, selection)
    return {
        "natural_correct": natural_correct,
        "adversarial_correct": adversarial_correct,
        "robust": natural_correct * adversarial_correct,
        "fooled": natural_correct * (1.0 - adversarial_correct),
    }
